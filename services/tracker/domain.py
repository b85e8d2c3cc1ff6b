"""Tracker rules in plain Python: who may see a tracked handoff, which deadline
alerts are due, and the statistics over handoffs and their timelines."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from shared.auth import Actor

ALL_SEEING = ("coordinator", "city_command", "operator", "system")
COUNTY_ROLES = ("county_command", "agency_head")
# the kinds whose services let a county centre and an agency head see every handoff of
# their county (police_handoff and market_referral can_view); the command centre's
# records are seen only by their parties (services/command/{joint_action,assistance}.py)
COUNTY_WIDE_KINDS = ("criminal_referral", "market_referral")
# an assistance request reaches the requested centre only once it is requested (at
# once between neighbours, after the city centre's approval otherwise)
NOT_YET_REQUESTED = ("approval_pending", "refused", "withdrawn")


def units_of(data: dict) -> set[str]:
    """Every unit an event names as a party: owner, counterpart, and any ``*_unit`` or
    ``recipients`` in its details (procuratorate copy, forwarded police, ...)."""
    units = {data.get("owner_unit"), data.get("counterpart_unit")}
    details = data.get("details") or {}
    for key, value in details.items():
        if key.endswith("_unit") and isinstance(value, str):
            units.add(value)
        if key in ("competent_authority", "target_unit") and isinstance(value, str):
            units.add(value)
        if key == "recipients" and isinstance(value, list):
            units |= {r if isinstance(r, str) else r.get("unit") for r in value}
    if data.get("kind") == "assistance_request" and data.get("state") in NOT_YET_REQUESTED:
        units -= {data.get("counterpart_unit"), details.get("target_unit")}  # not yet a party
    return {u for u in units if u}


def can_view(actor: Actor, row: dict) -> bool:
    """The board shows what the issuing service would show on read-one: the same rule
    per kind, on the units the events named as parties."""
    if actor.role in ALL_SEEING:
        return True
    if row.get("kind") in COUNTY_WIDE_KINDS and actor.role in COUNTY_ROLES and (
            actor.county is None or actor.county == row["county"]):
        return True
    if row.get("kind") == "assistance_request" and actor.role != "county_command":
        return False
    return actor.unit in (row.get("units") or [])


def due_alerts(rows: list[dict], now: datetime, window: timedelta) -> list[tuple[dict, str]]:
    """(row, 'approaching'|'breached') for each open handoff whose binding deadline is
    within ``window`` or past. Deadlines that only open an option ('may') never alert."""
    out = []
    for row in rows:
        deadline = row.get("deadline")
        if not row["open"] or not deadline or deadline.get("obligation", "must") != "must":
            continue
        due = datetime.fromisoformat(deadline["due"])
        if due <= now:
            out.append((row, "breached"))
        elif due - now <= window:
            out.append((row, "approaching"))
    return out


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


AGENCY = {"criminal_referral": "police", "market_referral": "market_regulation",
          "joint_action": "command", "assistance_request": "command",
          "alert_task": "command",
          "supervision_inquiry": "procuratorate"}


def statistics_from(parts: dict, group_by: str) -> list[dict]:
    """Counts, filing/acceptance rates and hours per step, grouped by ``group_by``
    (month, county, domain, agency or kind), from the grouped rows the store sums:
    ``cases`` (group, state, open, n), ``steps`` (group, command, n, timed, hours) and
    ``overdue`` (group, n). Rows of one group may come in several parts (counters and
    live rows): they add up. For ``agency`` the store groups by kind."""
    def key_of(value) -> str:
        if group_by == "agency":
            return AGENCY.get(value) or "transport"
        return value or "-"

    groups: dict[str, dict] = defaultdict(lambda: {
        "count": 0, "open": 0, "overdue": 0, "by_state": defaultdict(int),
        "commands": defaultdict(int), "timed": defaultdict(int),
        "hours": defaultdict(float)})
    for value, state, is_open, n in parts["cases"]:
        if not n:
            continue
        g = groups[key_of(value)]
        g["count"] += n
        g["open"] += n if is_open else 0
        g["by_state"][state] += n
    for value, command, n, timed, hours in parts["steps"]:
        g = groups[key_of(value)]
        g["commands"][command] += n
        g["timed"][command] += timed or 0
        g["hours"][command] += hours or 0.0
    for value, n in parts["overdue"]:
        groups[key_of(value)]["overdue"] += n
    out = []
    for key, g in sorted(groups.items()):
        if not g["count"]:
            continue
        c = g["commands"]
        out.append({
            group_by: key, "count": g["count"], "open": g["open"], "overdue": g["overdue"],
            "by_state": {s: n for s, n in sorted(g["by_state"].items()) if n},
            "filing_rate": _rate(c["file"], c["file"] + c["not_file"]),
            "acceptance_rate": _rate(c["accept"], c["accept"] + c["return"]),
            "hours_per_step": {cmd: round(g["hours"][cmd] / t, 2)
                               for cmd, t in sorted(g["timed"].items()) if t},
        })
    return out

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


# ------------------------------------------------------------------ who acts next (待办)
# ``waiting`` is a text column of tokens, each followed by a space: ``r:<role>`` (any unit
# of that role that may see the handoff must act: the agency head of the county, the
# police the case was sent to, ...) and ``u:<unit>=<command>`` (that unit must act; the
# command when the kind knows it: a joint action's recipient acknowledges, then reports).
OBSERVERS = ("coordinator", "operator")
ALERT_TEAM_STEPS = {"dispatched": "acknowledge", "acknowledged": "arrive",
                    "on_site": "dispose"}   # act on nothing: their 待办 is what is overdue


def parse_waiting(text: str | None) -> tuple[set[str], dict[str, str]]:
    roles, units = set(), {}
    for token in (text or "").split():
        if token.startswith("r:"):
            roles.add(token[2:])
        elif token.startswith("u:"):
            unit, _, command = token[2:].partition("=")
            units[unit] = command
    return roles, units


def format_waiting(roles, units: dict[str, str]) -> str:
    tokens = [f"r:{r}" for r in sorted(roles)] + [f"u:{u}={c}" for u, c in sorted(units.items())]
    return (" " + " ".join(tokens) + " ") if tokens else ""


def _moving_roles(proc, state: str) -> set[str]:
    """Roles of the steps that move a handoff on from ``state`` (not those that keep it
    where it is, like attaching a document, nor the system's)."""
    return {role for t in proc.allowed(state) if t.to != "same" or t.outcomes
            for role in t.roles} - {"system"}


def waiting_after(data: dict, before: str | None) -> str:
    """Who must act on a handoff after the event ``data`` (the tracker keeps it per
    handoff; ``before``: what it was before this event)."""
    from shared.procedure import Procedure
    kind, state = data["kind"], data["state"]
    details = data.get("details") or {}
    try:
        proc = Procedure.load(kind)
    except (FileNotFoundError, KeyError, OSError):
        return ""
    if state not in proc.states or proc.is_final(state):
        return ""     # an event of a newer version of the procedure: nobody known
    if kind == "joint_action":
        _roles, units = parse_waiting(before)
        command = data["command"]
        if command == "dispatch":
            units = {u if isinstance(u, str) else u.get("unit"): "acknowledge"
                     for u in details.get("recipients") or []}
        elif command == "acknowledge" and details.get("recipient"):
            units[details["recipient"]] = "report_result"
        elif command == "report_result" and details.get("recipient"):
            units.pop(details["recipient"], None)
        return format_waiting((), units)
    if kind == "assistance_request":
        if state == "approval_pending":
            return format_waiting({"city_command"}, {})
        target = details.get("target_unit") or data.get("counterpart_unit")
        if not target:
            _roles, units = parse_waiting(before)
            target = next(iter(units), None)
        command = {"requested": "acknowledge", "acknowledged": "answer"}.get(state, "")
        return format_waiting((), {target: command} if target else {})
    if kind == "alert_task" and state in ALERT_TEAM_STEPS:
        # the handling team (a county's team or its port & shipping unit: the deadline's
        # role cannot say which) acknowledges, arrives, disposes
        unit = data.get("counterpart_unit")
        return format_waiting((), {unit: ALERT_TEAM_STEPS[state]} if unit else {})
    if kind == "market_referral":
        receiver_turn = state not in ("returned", "result_reported")
        unit = data.get("counterpart_unit") if receiver_turn else data.get("owner_unit")
        return format_waiting((), {unit: ""} if unit else {})
    deadline = data.get("deadline") or {}
    actor = deadline.get("actor_role")
    moving = _moving_roles(proc, state)
    return format_waiting({actor} if actor in moving else moving, {})


def todo_commands(row: dict, actor: Actor) -> list[str]:
    """The steps ``actor`` is expected to take on a handoff of its 待办."""
    from shared.procedure import Procedure
    _roles, units = parse_waiting(row.get("waiting"))
    if units.get(actor.unit):
        return [units[actor.unit]]
    try:
        proc = Procedure.load(row["kind"])
    except (FileNotFoundError, KeyError, OSError):
        return []
    return [t.command for t in proc.allowed(row["state"], actor.role)
            if t.to != "same" or t.outcomes]


def is_mine(row: dict, actor: Actor) -> bool:
    """Whether the handoff waits for ``actor`` (``can_view`` is checked besides)."""
    if actor.role in OBSERVERS:
        return bool(row.get("overdue"))
    roles, units = parse_waiting(row.get("waiting"))
    return actor.unit in units or actor.role in roles

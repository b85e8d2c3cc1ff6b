"""Centre assessment (监督考核), computed from the recorded steps of joint actions.
Plain Python: ``assess(actions, start, end, now)`` where each action is
``{"id": ..., "case_number": ..., "steps": [{"command", "at", "details"}, ...]}``.

Per recipient unit, over the actions *dispatched* in [start, end):

* ``actions``: how many it received;
* ack time: minutes from the dispatch step to its ``acknowledge`` step —
  ``median_ack_minutes`` (the statistical median: mean of the two middle values for an
  even count) and ``p90_ack_minutes`` (nearest rank: the ⌈0.9·n⌉-th smallest);
  ``unacknowledged`` counts actions it never acknowledged;
* on-time report rate: reports made by their due time, over the reports that counted —
  every report made, plus every missing report whose due time had passed at ``now``
  while the action was still open (an action the dispatcher closed earlier no longer
  expects it);
* ``cases_per_action``: cases opened (from its results) per action received.

Per county centre, the 线上+线下联动 loop (``alerts``: the alerts service's
``assessment`` rows over the tasks dispatched in the same period): ``alert_tasks``,
``alert_cases_opened``, median minutes from dispatch to the team's ack
(``median_alert_ack_minutes``), on site (``median_alert_arrive_minutes``) and the
centre's close (``median_alert_close_minutes``), and the same per domain
(``alert_by_domain``: road, transport, port). A centre with alert tasks and no joint
action is ranked too.

The ranking orders units by ``assessment.rank_by`` in contracts/command/centres.yaml
(default: on-time report rate, then median ack time, then median minutes to arrive on
site of alert tasks, then cases per action); a unit lacking a metric ranks after those
having it; equal keys share a rank.
"""
from __future__ import annotations

import math
import statistics
from datetime import datetime

from services.command import reference as ref


def _dt(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def _round(value):
    return None if value is None else round(value, 2)


ALERT_METRICS = {"tasks": "alert_tasks", "cases_opened": "alert_cases_opened",
                 "median_ack_minutes": "median_alert_ack_minutes",
                 "median_arrive_minutes": "median_alert_arrive_minutes",
                 "median_close_minutes": "median_alert_close_minutes"}
DEFAULT_RANK_BY = [{"metric": "on_time_report_rate", "order": "desc"},
                   {"metric": "median_ack_minutes", "order": "asc"},
                   {"metric": "median_alert_arrive_minutes", "order": "asc"},
                   {"metric": "cases_per_action", "order": "desc"}]


def _alert_part(row: dict | None) -> dict:
    row = row or {}
    out = {name: row.get(key) for key, name in ALERT_METRICS.items()}
    out["alert_tasks"] = out["alert_tasks"] or 0
    out["alert_cases_opened"] = out["alert_cases_opened"] or 0
    out["alert_by_domain"] = [
        {"domain": d["domain"], **{name: d.get(key) for key, name in ALERT_METRICS.items()}}
        for d in row.get("by_domain") or []]
    return out


def assess(actions: list[dict], start: datetime, end: datetime, now: datetime,
           reference: ref.Reference | None = None, alerts: list[dict] | None = None) -> dict:
    reference = reference or ref.reference()
    units: dict[str, dict] = {}

    def unit(unit_id: str) -> dict:
        if unit_id not in units:
            known = reference.unit(unit_id)
            units[unit_id] = {
                "unit": unit_id, "name": known.name if known else None,
                "type": known.type if known else None,
                "county": known.county if known else None,
                "actions": 0, "acknowledged": 0, "unacknowledged": 0, "_ack": [],
                "reports_counted": 0, "reports_on_time": 0, "reports_late": 0,
                "reports_missing": 0, "vehicles_checked": 0, "cases_opened": 0,
                "referrals_made": 0}
        return units[unit_id]

    counted_actions = 0
    for action in actions:
        steps = sorted(action["steps"], key=lambda s: _dt(s["at"]))
        dispatch = next((s for s in steps if s["command"] == "dispatch"), None)
        if dispatch is None:
            continue
        dispatched_at = _dt(dispatch["at"])
        if not start <= dispatched_at < end:
            continue
        counted_actions += 1
        report_due = _dt(dispatch["details"]["report_due"])
        closed = next((_dt(s["at"]) for s in steps if s["command"] in ("close",)), None)
        acks = {s["details"]["recipient"]: _dt(s["at"]) for s in steps
                if s["command"] == "acknowledge"}
        results = {s["details"]["recipient"]: s for s in steps
                   if s["command"] == "report_result"}
        for recipient in dispatch["details"]["recipients"]:
            u = unit(recipient)
            u["actions"] += 1
            if recipient in acks:
                u["acknowledged"] += 1
                u["_ack"].append((acks[recipient] - dispatched_at).total_seconds() / 60)
            else:
                u["unacknowledged"] += 1
            result = results.get(recipient)
            if result is not None:
                u["reports_counted"] += 1
                on_time = _dt(result["at"]) <= report_due
                u["reports_on_time" if on_time else "reports_late"] += 1
                for key in ("vehicles_checked", "cases_opened", "referrals_made"):
                    u[key] += result["details"].get(key) or 0
            elif report_due < now and (closed is None or closed > report_due):
                u["reports_counted"] += 1
                u["reports_missing"] += 1

    alert_rows = {r["unit"]: r for r in alerts or []}
    for unit_id in alert_rows:
        unit(unit_id)
    rows = []
    for u in units.values():
        acks = u.pop("_ack")
        rows.append({
            **u,
            "median_ack_minutes": _round(median(acks)),
            "p90_ack_minutes": _round(p90(acks)),
            "on_time_report_rate": (_round(u["reports_on_time"] / u["reports_counted"])
                                    if u["reports_counted"] else None),
            "cases_per_action": (_round(u["cases_opened"] / u["actions"])
                                 if u["actions"] else None),
            **_alert_part(alert_rows.get(u["unit"])),
        })
    rank_by = reference.rank_by or DEFAULT_RANK_BY

    def key(row):
        parts = []
        for rule in rank_by:
            value = row[rule["metric"]]
            missing = value is None
            value = 0 if missing else (value if rule["order"] == "asc" else -value)
            parts.append((missing, value))
        return tuple(parts)

    rows.sort(key=lambda r: (key(r), r["unit"]))
    previous, rank = None, 0
    for position, row in enumerate(rows, 1):
        if key(row) != previous:
            rank, previous = position, key(row)
        row["rank"] = rank
    return {"start": start.isoformat(), "end": end.isoformat(), "as_of": now.isoformat(),
            "actions": counted_actions, "alerts_counted": alerts is not None,
            "rank_by": rank_by, "units": rows,
            "ranking": [r["unit"] for r in rows]}

"""Alert task (预警处置指令) domain: plain Python, no nameko/SQLAlchemy/pika.

The task's state machine is ``contracts/standards/alert_task.yaml`` (run by
``shared.procedure``); the kinds of alert, their routing and periods are
``contracts/standards/alerts.yaml`` (``reference``). This module adds what a table
cannot say:

* an alert becomes a task for the county and team its kind routes it to, with clocks on
  its kind's and urgency's periods (``create``);
* a repeat of the same target and kind within the window joins the open task (``merge``:
  the count and the latest reading, not a step — a storm must not flood the timeline);
* who is a party: the handling team acknowledges, arrives and disposes; the county centre
  (or the city centre) closes; the county centre, the city centre, coordinators and the
  source see the task;
* a missed ack or arrival escalates to the county centre, and to the city centre when it
  is still missed ``escalation.city_after`` later (``due_escalations``), once per level;
* a result "case opened" names the case (the service opens a referral first).
"""
from __future__ import annotations

import statistics
import uuid
from datetime import datetime

from services.alerts import reference as ref
from shared.auth import SYSTEM, Actor, require_role
from shared.calendar import to_local
from shared.errors import InvalidInput, NotAllowed
from shared.procedure import Procedure
from shared.schemas.alerts import ALERT_TASK_COMMANDS
from shared.schemas.command import centres_document
from shared.schemas.common import load_payload
from shared.schemas.handoff import event_data

KIND = "alert_task"
NUMBER_PREFIX = "YJ"
OPEN_STATES = ("dispatched", "acknowledged", "on_site", "disposed")
ESCALATING = {"acknowledgement": ("dispatched",), "arrival": ("dispatched", "acknowledged")}
SWEPT_STATES = ("dispatched", "acknowledged")     # the states a miss can escalate in
ALL_SEEING = ("city_command", "coordinator", "operator", "system")
CITY_CENTRE = "wenzhou-command"


def procedure() -> Procedure:
    return Procedure.load(KIND)


def county_centre(county: str) -> str:
    return f"{county}-command"


# ------------------------------------------------------------------ visibility

def can_view(actor: Actor, rec: dict) -> bool:
    """The city centre and coordinators see every task (all three domains); a county
    centre its county's; the handling team its own; a city-level unit of the handler's
    role (e.g. 港航管理中心) every task of its domain; a source the alerts it sent."""
    if actor.role in ALL_SEEING:
        return True
    if actor.role == "county_command":
        return actor.unit == rec["owner_unit"]
    if actor.role == "alert_source":
        return actor.unit == rec["source"]["unit"]
    if actor.unit == rec["counterpart_unit"]:
        return True
    return actor.role == rec["handler_role"] and actor.county is None and \
        actor.unit.startswith("wenzhou-")


# ------------------------------------------------------------------ creation

def _number(now: datetime) -> str:
    return f"{NUMBER_PREFIX}-{to_local(now).year}-{uuid.uuid4().hex[:8].upper()}"


def _clocks(proc: Procedure, kind: str, urgency: str, now: datetime) -> dict:
    return {deadline: proc.clock(deadline, now, ref.period(kind, urgency, short))
            for short, deadline in ref.DEADLINES.items()}


def reading_of(data: dict) -> dict:
    """The alert's own fields (what the device or platform measured or reported)."""
    return {k: v for k, v in data.items() if k not in ("alert_id", "kind", "urgency")}


def create(command: str, actor: Actor, data: dict, now: datetime) -> tuple[dict, dict]:
    """A validated alert (``reference.validate_alert``) becomes a dispatched task."""
    proc = procedure()
    if command != "dispatch":
        raise InvalidInput(f"{command!r} creates no alert task", {"command": ["dispatch"]})
    require_role(actor, proc.creations[command].roles, "send alerts")
    reference = ref.reference()
    kind = reference.kinds[data["kind"]]
    routed = ref.route(data, reference)
    level = ref.urgency(data, reference)
    state, step = proc.advance(None, command, actor, {}, now)
    clocks = _clocks(proc, kind.id, level, now)
    target = {f: data.get(f) for f in kind.target}
    rec = {
        "id": str(uuid.uuid4()), "kind": KIND, "direction": "online_to_offline",
        "case_number": _number(now), "county": routed["county"],
        "owner_unit": county_centre(routed["county"]),
        "counterpart_unit": routed["handler_unit"], "handler_role": routed["handler_role"],
        "alert_kind": kind.id, "alert_title": kind.title, "domain": kind.domain,
        "urgency": level, "target": target, "target_key": ref.target_key(data, reference),
        "plate": data.get("plate"), "place": routed["place"], "reading": reading_of(data),
        "latest": reading_of(data), "repeats": 0, "last_seen_at": now.isoformat(),
        "source": {"unit": actor.unit, "alert_id": data["alert_id"]},
        "judgment_rules": list(kind.judgment_rules), "case_kinds": list(kind.case_kinds),
        "recommendations": ref.recommendations(data, reference),
        "escalations": [], "result": None, "case": None,
        "created_at": now.isoformat(), "created_by": actor.to_dict(),
    }
    rec.update(state, clocks=clocks, deadline=proc.next_deadline(clocks))
    periods = {short: ref.period(kind.id, level, short) for short in ref.DEADLINES}
    details = {"alert_id": data["alert_id"], "alert_kind": kind.id, "domain": kind.domain,
               "urgency": level, "target": target, "reading": reading_of(data),
               "place": routed["place"], "routing": routed["routing"],
               "handler_unit": routed["handler_unit"], "periods": periods,
               "source_unit": actor.unit, "recommendations": rec["recommendations"]}
    return rec, {**step, "details": details}


def merge(rec: dict, data: dict, now: datetime) -> dict:
    """A repeat of the task's target within the window: counted, latest reading kept."""
    return {**rec, "repeats": rec.get("repeats", 0) + 1, "latest": reading_of(data),
            "last_seen_at": now.isoformat()}


def joins(rec: dict, now: datetime) -> bool:
    """Whether a repeat now joins this task: open and last seen within the window."""
    if rec["state"] not in OPEN_STATES:
        return False
    last = datetime.fromisoformat(rec.get("last_seen_at") or rec["created_at"])
    return now - last <= ref.as_timedelta(ref.window())


# ------------------------------------------------------------------ steps

def are_neighbours(a: str, b: str) -> bool:
    """Counties sharing a border (contracts/command/centres.yaml, the command centres'
    neighbour graph)."""
    return b in (centres_document()["county_centres"][a].get("neighbours") or [])


def _check_party(actor: Actor, rec: dict, command: str) -> None:
    if command in ("close", "reassign"):
        if actor.role == "city_command" and actor.unit == CITY_CENTRE:
            return
        if actor.role == "county_command" and actor.unit == rec["owner_unit"]:
            return
        raise NotAllowed(f"only the centre of {rec['county']} or the city centre may "
                         f"{command} task {rec['case_number']}",
                         {"unit": [f"{rec['owner_unit']} or {CITY_CENTRE}"]})
    if actor.unit != rec["counterpart_unit"] or actor.role != rec["handler_role"]:
        raise NotAllowed(f"only the handling unit {rec['counterpart_unit']} may {command} "
                         f"task {rec['case_number']}",
                         {"unit": [f"{command} is done by {rec['counterpart_unit']} "
                                   f"({rec['handler_role']})"]})


def check(rec: dict, command: str, actor: Actor, payload) -> dict:
    """Order, role, payload and party of a step, before anything is done; the loaded
    payload. (The service calls it before opening a referral for a result.)"""
    proc = procedure()
    transition = proc.transition(rec["state"], command)
    require_role(actor, transition.roles, f"{command} ({transition.title})")
    data = load_payload(ALERT_TASK_COMMANDS, command, payload)
    _check_party(actor, rec, command)
    case = data.get("case") if command == "dispose" else None
    if case and case["kind"] not in rec["case_kinds"]:
        raise InvalidInput(f"an alert of kind {rec['alert_kind']} does not open a "
                           f"{case['kind']}", {"case": {"kind": [
                               f"one of: {', '.join(rec['case_kinds'])}"]}})
    return data


def act(rec: dict, command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    """Apply one step a person takes (acknowledge, arrive, dispose, close)."""
    if command == "escalate":
        raise NotAllowed("escalation is the service's own step", {"command": ["escalate"]})
    data = check(rec, command, actor, payload)
    state, step = procedure().advance(rec, command, actor, data, now)
    new = {**rec, **state}
    if command == "reassign":
        return _reassign(rec, new, step, actor, data, now)
    if command == "dispose":
        new["result"] = data["result"]
        new["case"] = data.get("case")
        if new["case"]:
            new["case"] = {k: v for k, v in new["case"].items() if k != "referral"}
        data = {**data, "domain": rec["domain"], "case": new["case"]}
    new[f"{command}_at"] = now.isoformat()
    return new, {**step, "details": data}


def _reassign(rec: dict, new: dict, step: dict, actor: Actor, data: dict,
              now: datetime) -> tuple[dict, dict]:
    """The target crossed a county boundary: the task goes to the other county's centre
    and team with fresh clocks. A county centre reassigns only to a neighbouring county
    (the neighbour graph); the city centre anywhere."""
    to = data["to_county"]
    if to == rec["county"]:
        raise InvalidInput("the task is already that county's", {"to_county": ["another county"]})
    if actor.role == "county_command" and not are_neighbours(rec["county"], to):
        raise NotAllowed(f"{to} does not border {rec['county']}: the city centre reassigns "
                         "across the city", {"to_county": ["a neighbouring county"]})
    role, unit = ref.reference().handler_unit(rec["domain"], to)
    clocks = _clocks(procedure(), rec["alert_kind"], rec["urgency"], now)
    new.update(county=to, owner_unit=county_centre(to), counterpart_unit=unit,
               handler_role=role, clocks=clocks, deadline=procedure().next_deadline(clocks),
               escalations=[], reassigned=[*rec.get("reassigned", []), {
                   "from_county": rec["county"], "to_county": to, "at": now.isoformat(),
                   "reason": data["reason"]}])
    details = {**data, "from_county": rec["county"], "handler_unit": unit,
               "domain": rec["domain"]}
    return new, {**step, "details": details}


def due_escalations(rec: dict, now: datetime) -> list[tuple[str, str, str, str]]:
    """(miss, level, to unit, due) for every escalation due on a task and not yet made."""
    if rec["state"] not in OPEN_STATES:
        return []
    done = {(e["miss"], e["level"]) for e in rec.get("escalations", [])}
    city_after = ref.as_timedelta(ref.reference().city_after)
    out = []
    for miss, states in ESCALATING.items():
        clock = rec["clocks"].get(miss)
        if rec["state"] not in states or not clock:
            continue
        due = datetime.fromisoformat(clock["due"])
        if now > due and (miss, "county") not in done:
            out.append((miss, "county", rec["owner_unit"], clock["due"]))
        if now > due + city_after and (miss, "city") not in done:
            out.append((miss, "city", CITY_CENTRE, clock["due"]))
    return out


def escalate(rec: dict, miss: str, level: str, to_unit: str, due: str,
             now: datetime) -> tuple[dict, dict]:
    state, step = procedure().advance(rec, "escalate", SYSTEM, {}, now)
    entry = {"miss": miss, "level": level, "escalated_to_unit": to_unit, "due": due,
             "at": now.isoformat()}
    # the missed clock keeps running after the city level too: the task stays overdue on
    # every board and 待办 until someone acts (``due_escalations`` makes each level once)
    new = {**rec, **state, "escalations": [*rec.get("escalations", []), entry]}
    details = {k: v for k, v in entry.items() if k != "at"}
    return new, {**step, "details": {**details, "domain": rec["domain"]}}


def event_payload(rec: dict, step: dict) -> dict:
    return event_data(KIND, rec, step)


# ------------------------------------------------------------------ statistics

def _minutes(rec: dict, key: str) -> float | None:
    if not rec.get(key):
        return None
    start = datetime.fromisoformat(rec["created_at"])
    return (datetime.fromisoformat(rec[key]) - start).total_seconds() / 60


STAGES = {"ack": "acknowledge", "arrive": "arrive", "dispose": "dispose", "close": "close"}


def created_within(records: list[dict], start: datetime | None,
                   end: datetime | None) -> list[dict]:
    """The tasks dispatched in [start, end) (either bound open when None)."""
    def inside(rec) -> bool:
        at = datetime.fromisoformat(rec["created_at"])
        return (start is None or at >= start) and (end is None or at < end)
    return [r for r in records if inside(r)]


def statistics_of(records: list[dict], alerts: dict[str, int], group_by: str) -> list[dict]:
    """The loop's yield per county or domain: alerts received, tasks, repeats merged,
    closed, cases opened, escalations, median minutes from dispatch to ack / on site /
    result / closed. ``alerts``: alerts received per task id (from the intake table)."""
    if group_by not in ("county", "domain", "alert_kind"):
        raise InvalidInput("unknown grouping", {"group_by": ["county, domain or alert_kind"]})
    groups: dict[str, dict] = {}
    for rec in records:
        g = groups.setdefault(rec[group_by], {group_by: rec[group_by], "alerts": 0,
                                              "tasks": 0, "closed": 0, "cases_opened": 0,
                                              "escalations": 0,
                                              **{f"_{k}": [] for k in STAGES}})
        g["alerts"] += alerts.get(rec["id"], 1 + rec.get("repeats", 0))
        g["tasks"] += 1
        g["closed"] += rec["state"] == "closed"
        g["cases_opened"] += rec.get("result") == "case_opened"
        g["escalations"] += len(rec.get("escalations", []))
        for name, command in STAGES.items():
            if (m := _minutes(rec, f"{command}_at")) is not None:
                g[f"_{name}"].append(m)
    out = []
    for key in sorted(groups):
        g = groups[key]
        for name in STAGES:
            values = g.pop(f"_{name}")
            g[f"median_{name}_minutes"] = round(statistics.median(values), 1) if values else None
        g["case_rate"] = round(g["cases_opened"] / g["tasks"], 4) if g["tasks"] else None
        out.append(g)
    return out


def assessment_of(records: list[dict], alerts: dict[str, int]) -> list[dict]:
    """What the centres' assessment (command service) takes from the loop, per county
    centre: its tasks' counts and median minutes to ack / on site / closed, overall and
    per domain (road, transport, port)."""
    by_county: dict[str, list[dict]] = {}
    for rec in records:
        by_county.setdefault(rec["county"], []).append(rec)
    out = []
    for county in sorted(by_county):
        [total] = statistics_of(by_county[county], alerts, "county")
        out.append({**total, "unit": county_centre(county),
                    "by_domain": statistics_of(by_county[county], alerts, "domain")})
    return out

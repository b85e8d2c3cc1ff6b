"""Joint action (联合行动) domain: plain Python, no nameko/SQLAlchemy/pika.

The action as a whole follows ``contracts/standards/joint_action.yaml`` (run by
``shared.procedure``); this module adds what the table cannot say:

* who may dispatch what: the city centre to any county centre (only inside the action's
  area) or agency, a county centre only inside its own county and only to the agencies and
  enforcement teams serving it — which agency takes orders from which centre is data
  (``dispatched_by`` in contracts/command/centres.yaml);
* the per-recipient state kept in the record (``recipients``): acknowledged, progress,
  result, deadlines and escalations — a recipient acts only for itself, acknowledges
  before it reports, reports once;
* the outcome of a step for the action (every recipient acknowledged -> under_way,
  every recipient reported -> closed);
* escalation of missed deadlines (``due_escalations`` / ``sweep``, a plain function of the
  records and the time) — once per recipient and kind of miss, recorded in the record;
* referrals named in a result, linked to the action.
"""
from __future__ import annotations

import copy
import uuid
from datetime import datetime

from services.command import reference as ref
from services.command.common import (
    jsonable,
    number,
    require_city_centre,
    require_own_centre,
    restart_clocks,
    validate,
)
from shared.auth import SYSTEM, Actor, require_role
from shared.errors import InvalidInput, InvalidTransition, NotAllowed
from shared.procedure import Procedure
from shared.schemas.command import JOINT_ACTION_COMMANDS
from shared.schemas.handoff import event_data

KIND = "joint_action"
NUMBER_PREFIX = "LD"
OPEN_STATES = ("dispatched", "under_way")
RECIPIENT_COMMANDS = ("acknowledge", "report_progress", "report_result")
PROCEDURE_KEYS = ("state", "step", "clocks", "deadline", "updated_at")  # what advance sets
# per-recipient status
DISPATCHED, ACKNOWLEDGED, REPORTED = "dispatched", "acknowledged", "reported"


def procedure() -> Procedure:
    return Procedure.load(KIND)


# ------------------------------------------------------------------ visibility

def can_view(actor: Actor, rec: dict) -> bool:
    """The city centre and coordinators see every action; anyone else the actions it
    dispatched or received."""
    if actor.role in ("city_command", "coordinator", "operator", "system"):
        return True
    return actor.unit == rec["owner_unit"] or actor.unit in rec["recipients"]


def _recipient_for(actor: Actor, rec: dict) -> dict:
    """The recipient entry the actor acts for: its own unit, with the unit's role (and
    county, for a county centre)."""
    r = rec["recipients"].get(actor.unit)
    if r is None:
        raise NotAllowed(f"{actor.unit!r} is not a recipient of action {rec['case_number']}",
                         {"unit": [f"recipients: {', '.join(rec['recipients'])}"]})
    if actor.role != r["role"]:
        raise NotAllowed(f"role {actor.role!r} may not act for {r['unit']}",
                         {"role": [f"{r['unit']} acts as {r['role']}"]})
    if r["county"] and actor.role == "county_command" and actor.county != r["county"]:
        raise NotAllowed(f"{actor.unit!r} acts only for {r['county']}",
                         {"county": [f"must be {r['county']}"]})
    return r


# ------------------------------------------------------------------ dispatch

def _check_dispatch(actor: Actor, data: dict, now: datetime) -> list[ref.Unit]:
    """Scope of the dispatcher; returns the recipient units (InvalidInput / NotAllowed
    naming the field otherwise)."""
    reference = ref.reference()
    if actor.role == "city_command":
        require_city_centre(actor, "dispatch a city-wide joint action")
        centre = reference.city
    else:
        centre = require_own_centre(actor)
        outside = [c for c in data["area"] if c != centre.county]
        if outside:
            raise NotAllowed("a county centre dispatches only inside its own area",
                             {"area": [f"{', '.join(outside)} is outside {centre.county}"]})
    if data["window_end"] <= now:
        raise InvalidInput("the action's time window is already over",
                           {"window_end": ["must be in the future"]})
    units, errors = [], {}
    for i, unit_id in enumerate(data["recipients"]):
        unit = reference.unit(unit_id)
        problem = None
        if unit is None:
            problem = f"unknown unit {unit_id!r} (see contracts/command/centres.yaml)"
        elif unit.type == "city_centre" or unit.id == actor.unit:
            problem = f"{unit_id} dispatches, it cannot receive its own action"
        elif not reference.may_dispatch(centre, unit):
            problem = (f"a county centre dispatches only to agencies and teams serving "
                       f"{actor.county}; {unit_id} is not one"
                       if centre.type == "county_centre" else
                       f"{unit_id} takes orders from its own county's centre, not the "
                       "city centre (contracts/command/centres.yaml dispatched_by)")
        elif unit.type == "county_centre" and unit.county not in data["area"]:
            problem = f"{unit_id} acts in {unit.county}, which is not in the action's area"
        if problem:
            errors[i] = [problem]
        else:
            units.append(unit)
    if errors:
        raise InvalidInput("invalid recipients", {"recipients": errors})
    return units


def create(command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    """Dispatch a joint action (the only way one comes into being)."""
    proc = procedure()
    if command not in proc.creations:
        raise InvalidInput(f"{command!r} does not create a joint action",
                           {"command": [f"one of: {', '.join(proc.creations)}"]})
    require_role(actor, proc.creations[command].roles, "dispatch a joint action")
    data = validate(JOINT_ACTION_COMMANDS, command, payload)
    units = _check_dispatch(actor, data, now)
    state, step = proc.advance(None, command, actor, data, now)
    state = restart_clocks(proc, state, KIND, {"acknowledgement": now,
                                               "result_report": data["window_end"]},
                           variant=data["priority"])
    ack_due = state["clocks"]["acknowledgement"]["due"]
    report_due = state["clocks"]["result_report"]["due"]
    area = data["area"]
    rec = {
        "id": str(uuid.uuid4()), "kind": KIND, "direction": "dispatch",
        "case_number": number(NUMBER_PREFIX, now),
        "county": actor.county if actor.role == "county_command" else (
            area[0] if len(area) == 1 else None),
        "owner_unit": actor.unit,
        "counterpart_unit": units[0].id if len(units) == 1 else None,
        "dispatcher": {"unit": actor.unit, "role": actor.role, "county": actor.county},
        **jsonable({k: data[k] for k in ("title", "domain", "area", "location",
                                         "window_start", "window_end", "priority",
                                         "instructions")}),
        "recipients": {u.id: {
            "unit": u.id, "name": u.name, "type": u.type, "role": u.role,
            "county": u.county, "agency": u.agency, "status": DISPATCHED,
            "ack_due": ack_due, "report_due": report_due, "acknowledged_at": None,
            "acknowledged_by": None, "ack_on_time": None, "progress": [], "result": None,
            "reported_at": None, "report_on_time": None, "escalations": {}}
            for u in units},
        "referrals": [], "escalations": [], "closed_reason": None,
        "created_at": now.isoformat(), "created_by": actor.to_dict(),
    }
    details = {**jsonable(data), "dispatcher": actor.unit, "ack_due": ack_due,
               "report_due": report_due}
    return {**rec, **state}, {**step, "details": details}


# ------------------------------------------------------------------ steps

def act(rec: dict, command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    """Apply one step to a joint action."""
    proc = procedure()
    transition = proc.transition(rec["state"], command)  # order first: clearest error
    require_role(actor, transition.roles, f"{command} ({transition.title})")
    data = validate(JOINT_ACTION_COMMANDS, command, payload)
    new = copy.deepcopy(rec)
    details = jsonable(data)
    outcome = None
    if command in RECIPIENT_COMMANDS:
        r = new["recipients"][_recipient_for(actor, rec)["unit"]]
        details["recipient"] = r["unit"]
        outcome = _recipient_step(new, r, command, actor, data, now)
    elif command == "close":
        if actor.unit != rec["owner_unit"]:
            raise NotAllowed("only the dispatching centre closes an action",
                             {"unit": [f"action {rec['case_number']} was dispatched by "
                                       f"{rec['owner_unit']}"]})
        details["unreported"] = [u for u, r in rec["recipients"].items()
                                 if r["status"] != REPORTED]
        new["closed_reason"] = data["reason"]
    elif command == "escalate":
        details.update(_escalation(new, data["recipient"], data["miss"], now))
    state, step = proc.advance(rec, command, actor, {**data, "outcome": outcome}, now)
    new.update({k: state[k] for k in PROCEDURE_KEYS})
    if "result_report" in set(transition.clocks_started({"outcome": outcome})):
        new = restart_clocks(proc, new, KIND, {
            "result_report": datetime.fromisoformat(rec["window_end"])})
    return new, {**step, "details": details}


def _recipient_step(new: dict, r: dict, command: str, actor: Actor, data: dict,
                    now: datetime) -> str | None:
    """Update one recipient's entry; return the outcome for the action."""
    recipients = new["recipients"].values()
    if r["status"] == REPORTED:
        raise InvalidTransition(f"{r['unit']} has already reported its result",
                                {"command": ["nothing more to do for this recipient"]})
    if command == "acknowledge":
        if r["status"] != DISPATCHED:
            raise InvalidTransition(f"{r['unit']} has already acknowledged",
                                    {"command": [f"acknowledged at {r['acknowledged_at']}"]})
        r.update(status=ACKNOWLEDGED, acknowledged_at=now.isoformat(),
                 acknowledged_by=actor.user_id,
                 ack_on_time=now <= datetime.fromisoformat(r["ack_due"]))
        done = all(x["status"] != DISPATCHED for x in recipients)
        return "all_acknowledged" if done else "pending_acknowledgements"
    if r["status"] == DISPATCHED:
        raise InvalidTransition(f"{r['unit']} must acknowledge the action first",
                                {"command": ["acknowledge before reporting"]})
    if command == "report_progress":
        r["progress"].append({**jsonable(data), "at": now.isoformat(),
                              "by": actor.user_id})
        return None
    # report_result
    r.update(status=REPORTED, reported_at=now.isoformat(),
             report_on_time=now <= datetime.fromisoformat(r["report_due"]),
             result={k: data[k] for k in ("vehicles_checked", "cases_opened",
                                          "referrals_made", "summary")})
    for link in data["referrals"]:
        new["referrals"].append({**link, "action_id": new["id"],
                                 "action_number": new["case_number"],
                                 "recipient": r["unit"], "reported_at": now.isoformat()})
    if all(x["status"] == REPORTED for x in recipients):
        return "all_reported"
    return "pending_acknowledgements" if new["state"] == "dispatched" else "pending_reports"


# ------------------------------------------------------------------ escalation

def due_escalations(rec: dict, now: datetime) -> list[tuple[str, str, str]]:
    """(recipient, miss, due) of every deadline missed and not yet escalated."""
    if rec["kind"] != KIND or rec["state"] not in OPEN_STATES:
        return []
    out = []
    for unit, r in rec["recipients"].items():
        if r["status"] == DISPATCHED and "acknowledgement" not in r["escalations"] \
                and now > datetime.fromisoformat(r["ack_due"]):
            out.append((unit, "acknowledgement", r["ack_due"]))
        if r["status"] != REPORTED and "result_report" not in r["escalations"] \
                and now > datetime.fromisoformat(r["report_due"]):
            out.append((unit, "result_report", r["report_due"]))
    return out


def sweep(records, now: datetime) -> list[tuple[str, str, str]]:
    """(action id, recipient, miss) of every escalation due across ``records``."""
    return [(rec["id"], unit, miss) for rec in records
            for unit, miss, _due in due_escalations(rec, now)]


def _escalation(new: dict, unit: str, miss: str, now: datetime) -> dict:
    r = new["recipients"].get(unit)
    if r is None:
        raise InvalidInput(f"{unit!r} is not a recipient",
                           {"recipient": [f"one of: {', '.join(new['recipients'])}"]})
    due = next((d for u, m, d in due_escalations(new, now) if (u, m) == (unit, miss)), None)
    if due is None:
        raise InvalidTransition(f"nothing to escalate for {unit} ({miss})",
                                {"miss": ["not missed, or already escalated"]})
    city = ref.reference().city.id
    entry = {"recipient": unit, "miss": miss, "due": due, "at": now.isoformat(),
             "escalated_to": city}
    r["escalations"][miss] = entry
    new["escalations"].append(entry)
    return {"due": due, "escalated_to": city}


def escalate(rec: dict, unit: str, miss: str, now: datetime) -> tuple[dict, dict]:
    """The escalation step, done by the system's sweep."""
    return act(rec, "escalate", SYSTEM, {"recipient": unit, "miss": miss}, now)


# ------------------------------------------------------------------ events

def event_payload(rec: dict, step: dict) -> dict:
    """The event data of a step (``shared.schemas.handoff.event_data``): the
    counterpart is the recipient the step is about, if any."""
    return event_data(KIND, rec, step, step["details"].get("recipient"))

"""Assistance request (协查请求) domain: plain Python, no nameko/SQLAlchemy/pika.

The procedure is ``contracts/standards/assistance_request.yaml``; this module adds who
is a party: a county centre asks for itself; the requested county's centre acknowledges
and answers; only the city centre approves or refuses a request between counties that
are not neighbours (contracts/command/centres.yaml); only the requester withdraws.
The service, not the caller, decides whether a request needs approval.
"""
from __future__ import annotations

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
from shared.auth import Actor, require_role
from shared.errors import InvalidInput, NotAllowed
from shared.procedure import Procedure
from shared.schemas.command import ASSISTANCE_COMMANDS
from shared.schemas.handoff import event_data

KIND = "assistance_request"
NUMBER_PREFIX = "XC"


def procedure() -> Procedure:
    return Procedure.load(KIND)


def can_view(actor: Actor, rec: dict) -> bool:
    """The city centre and coordinators see every request; the requester its own; the
    requested centre once the request has reached it."""
    if actor.role in ("city_command", "coordinator", "operator", "system"):
        return True
    if actor.role != "county_command":
        return False
    return actor.unit == rec["owner_unit"] or (
        actor.unit == rec["counterpart_unit"] and rec.get("requested_at") is not None)


def _check_party(actor: Actor, rec: dict, command: str) -> None:
    if command in ("approve", "refuse"):
        require_city_centre(actor, f"{command} an assistance request between counties "
                                   "that are not neighbours")
        return
    if command == "withdraw":
        party, county, who = rec["owner_unit"], rec["from_county"], "the requesting centre"
    else:
        party, county, who = rec["counterpart_unit"], rec["to_county"], "the requested centre"
    if actor.unit != party or actor.county != county:
        raise NotAllowed(f"only {who} may {command} request {rec['case_number']}",
                         {"unit": [f"{command} is done by {party} ({county})"]})


def create(command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    """A county centre asks another county's centre for assistance."""
    proc = procedure()
    if command not in proc.creations:
        raise InvalidInput(f"{command!r} does not create an assistance request",
                           {"command": [f"one of: {', '.join(proc.creations)}"]})
    require_role(actor, proc.creations[command].roles, "request assistance")
    data = validate(ASSISTANCE_COMMANDS, command, payload)
    centre = require_own_centre(actor)
    reference = ref.reference()
    if data["to_county"] == centre.county:
        raise InvalidInput("a centre does not ask itself for assistance",
                           {"to_county": [f"must be a county other than {centre.county}"]})
    target = reference.centre_of(data["to_county"])
    neighbour = reference.are_neighbours(centre.county, target.county)
    outcome = "neighbour" if neighbour else "needs_approval"
    state, step = proc.advance(None, command, actor, {**data, "outcome": outcome}, now)
    if neighbour:
        state = restart_clocks(proc, state, KIND, {"acknowledgement": now, "answer": now})
    rec = {
        "id": str(uuid.uuid4()), "kind": KIND, "direction": "county_to_county",
        "case_number": number(NUMBER_PREFIX, now), "county": centre.county,
        "owner_unit": centre.id, "counterpart_unit": target.id,
        "from_county": centre.county, "to_county": target.county, "neighbour": neighbour,
        **jsonable({k: data[k] for k in ("subject", "request", "domain", "plate",
                                         "related_case_number")}),
        "requested_at": now.isoformat() if neighbour else None,
        "decision": None, "acknowledged_at": None, "answer": None, "answered_at": None,
        "created_at": now.isoformat(), "created_by": actor.to_dict(),
    }
    details = {**jsonable(data), "from_county": centre.county, "target_unit": target.id,
               "neighbour": neighbour}
    return {**rec, **state}, {**step, "details": details}


def act(rec: dict, command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    """Apply one step to an assistance request."""
    proc = procedure()
    transition = proc.transition(rec["state"], command)  # order first: clearest error
    require_role(actor, transition.roles, f"{command} ({transition.title})")
    data = validate(ASSISTANCE_COMMANDS, command, payload)
    _check_party(actor, rec, command)
    state, step = proc.advance(rec, command, actor, data, now)
    new = {**rec, **state}
    if command == "approve":
        new["requested_at"] = now.isoformat()
        new["decision"] = {"approved": True, "by": actor.user_id, "at": now.isoformat(),
                           "opinion": data.get("opinion")}
        new = restart_clocks(proc, new, KIND, {"acknowledgement": now, "answer": now})
    elif command == "refuse":
        new["decision"] = {"approved": False, "by": actor.user_id, "at": now.isoformat(),
                           "reason": data["reason"]}
    elif command == "acknowledge":
        new["acknowledged_at"] = now.isoformat()
        # the answer is due 3 working days from the request reaching this centre
        new = restart_clocks(proc, new, KIND, {
            "answer": datetime.fromisoformat(rec["requested_at"])})
    elif command == "answer":
        new["answer"] = {"answer": data["answer"], "found": data.get("found"),
                         "by": actor.user_id}
        new["answered_at"] = now.isoformat()
    return new, {**step, "details": jsonable(data)}


def event_payload(rec: dict, step: dict) -> dict:
    """The event data of a step (``shared.schemas.handoff.event_data``)."""
    return event_data(KIND, rec, step)

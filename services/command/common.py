"""Helpers shared by the command service's two procedures (plain Python)."""
from __future__ import annotations

import uuid
from datetime import datetime

from services.command import reference as ref
from shared.auth import Actor
from shared.calendar import to_local
from shared.errors import NotAllowed
from shared.procedure import Procedure
from shared.schemas.common import load_payload


def validate(schemas: dict, command: str, payload) -> dict:
    """Load a command's payload with its schema (the shared loader: unknown command,
    non-object payload, NUL characters and bad fields are InvalidInput)."""
    return load_payload(schemas, command, payload)


def jsonable(value):
    """Datetimes as ISO strings, recursively (records and details are stored as JSON)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def number(prefix: str, now: datetime) -> str:
    """A readable, collision-free number: ``LD-2026-3F9A0C12`` (year in Asia/Shanghai)."""
    return f"{prefix}-{to_local(now).year}-{uuid.uuid4().hex[:8].upper()}"


def restart_clocks(proc: Procedure, rec: dict, kind: str, started: dict[str, datetime],
                   variant: str | None = None) -> dict:
    """(Re)start clocks with the periods in force (standards + COMMAND_PERIODS) from
    their own start times (``started``: deadline id -> start) and refresh ``deadline``."""
    clocks = dict(rec["clocks"])
    for deadline_id, start in started.items():
        clocks[deadline_id] = proc.clock(deadline_id, start,
                                         ref.period(kind, deadline_id, variant))
    return {**rec, "clocks": clocks, "deadline": proc.next_deadline(clocks)}


def require_city_centre(actor: Actor, action: str) -> None:
    """A city_command user acts for the city centre's unit, nobody else's."""
    city = ref.reference().city
    if actor.unit != city.id:
        raise NotAllowed(f"only the city centre may {action}",
                         {"unit": [f"{action} is done by {city.id} ({city.name})"]})


def require_own_centre(actor: Actor) -> ref.Unit:
    """A county_command user acts for its own county's centre only; return that centre."""
    reference = ref.reference()
    if actor.county not in reference.county_centres:
        raise NotAllowed("a county centre user must name the county", {
            "county": [f"one of: {', '.join(reference.county_centres)}"]})
    centre = reference.centre_of(actor.county)
    if actor.unit != centre.id:
        raise NotAllowed(f"{actor.unit!r} is not the command centre of {actor.county}",
                         {"unit": [f"the centre of {actor.county} is {centre.id}"]})
    return centre

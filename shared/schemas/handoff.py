"""The payload every handoff event carries, whatever the kind: identity, the state
change, the deadline clock, and the command's own details. One shape lets the tracker
and any agency read every handoff the same way."""
from __future__ import annotations

from marshmallow import fields, validate

from shared.schemas.common import Base


class DeadlineSchema(Base):
    id = fields.String(required=True)
    title = fields.String(required=True)
    due = fields.AwareDateTime(required=True, format="iso")
    period = fields.String(required=True)
    article = fields.String(load_default=None, allow_none=True)
    obligation = fields.String(load_default="must", validate=validate.OneOf(["must", "may"]))
    actor_role = fields.String(load_default=None, allow_none=True)


class SatisfiedSchema(Base):
    id = fields.String(required=True)
    due = fields.AwareDateTime(required=True, format="iso")
    on_time = fields.Boolean(required=True)


class HandoffEventSchema(Base):
    handoff_id = fields.String(required=True)
    kind = fields.String(required=True)
    case_number = fields.String(required=True)
    county = fields.String(load_default=None, allow_none=True)
    owner_unit = fields.String(required=True)
    counterpart_unit = fields.String(load_default=None, allow_none=True)
    command = fields.String(required=True)
    previous_state = fields.String(load_default=None, allow_none=True)
    state = fields.String(required=True)
    step = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    at = fields.AwareDateTime(required=True, format="iso")
    deadline = fields.Nested(DeadlineSchema, load_default=None, allow_none=True)
    satisfied = fields.List(fields.Nested(SatisfiedSchema), load_default=list)


class ClockChangeSchema(Base):
    deadline_id = fields.String(required=True)
    period = fields.String(required=True)
    started = fields.AwareDateTime(required=True, format="iso")
    previous_due = fields.AwareDateTime(required=True, format="iso")
    due = fields.AwareDateTime(required=True, format="iso")


class CalendarSourceSchema(Base):
    year = fields.Integer(required=True)
    source = fields.String(required=True)
    reference = fields.String(required=True)


class DeadlineRecomputedSchema(Base):
    """Details of ``<kind>.deadline_recomputed.v1``: running deadlines recomputed under
    the calendar in force (an official holiday notice replaced a provisional year);
    only a step that moves a deadline is recorded."""
    reason = fields.String(required=True)
    changes = fields.List(fields.Nested(ClockChangeSchema), required=True,
                          validate=validate.Length(min=1))
    calendar = fields.List(fields.Nested(CalendarSourceSchema), load_default=list)


RECOMPUTE_COMMAND = "recompute_deadlines"


def recompute_event(kind: str) -> str:
    """The event type of a kind's deadline recomputation step."""
    return f"{kind}.deadline_recomputed.v1"


def event_data(kind: str, rec: dict, step: dict, counterpart_unit: str | None = None) -> dict:
    """The event data of a step (``HandoffEventSchema``), the same for every procedure;
    ``counterpart_unit`` overrides the record's (a joint action's step names its
    recipient)."""
    return {
        "handoff_id": rec["id"], "kind": kind, "case_number": rec["case_number"],
        "county": rec["county"], "owner_unit": rec["owner_unit"],
        "counterpart_unit": counterpart_unit or rec.get("counterpart_unit"),
        "command": step["command"], "previous_state": step["from"], "state": step["to"],
        "step": step["step"], "at": step["at"], "deadline": rec.get("deadline"),
        "satisfied": step["satisfied"], "details": step["details"],
    }


def event_schema(name: str, details_schema: type) -> type[HandoffEventSchema]:
    """The payload schema of one event type: the common part plus its details."""
    return type(name, (HandoffEventSchema,), {
        "details": fields.Nested(details_schema, required=True)})


class DeadlineAlertSchema(Base):
    """A handoff's binding deadline is near (``deadline.approaching``) or past
    (``deadline.breached``); raised once per deadline and level by the tracker."""
    handoff_id = fields.String(required=True)
    kind = fields.String(required=True)
    case_number = fields.String(required=True)
    county = fields.String(load_default=None, allow_none=True)
    owner_unit = fields.String(required=True)
    counterpart_unit = fields.String(load_default=None, allow_none=True)
    state = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(["approaching", "breached"]))
    deadline = fields.Nested(DeadlineSchema, required=True)
    seconds_left = fields.Integer(required=True)

"""Payload schemas of the alert task (预警处置指令, contracts/standards/alert_task.yaml).

``ALERT_TASK_COMMANDS`` validate what a team or centre sends; ``ALERT_TASK_DETAILS``
describe the ``details`` of the event each step causes (the validated input plus what
the service adds: the alert, its routing and periods, the case a result opened). The
alert itself is checked against its kind in contracts/standards/alerts.yaml
(services/alerts/reference.py).
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.schemas.common import COUNTIES, Base

RESULTS = ("case_opened", "warning", "false_alarm", "not_found")
CASE_KINDS = ("administrative", "criminal_referral", "market_referral")
LEVELS = ("county", "city")
MISSES = ("acknowledgement", "arrival")

optional_text = lambda n=2000: fields.String(  # noqa: E731
    load_default=None, allow_none=True, validate=validate.Length(max=n))


class NoteSchema(Base):
    """Acknowledge (签收) or close (办结): an optional note."""
    note = optional_text(2000)


class ArriveSchema(Base):
    """On site (到场): an optional note and where the team is."""
    note = optional_text(2000)
    lat = fields.Float(load_default=None, allow_none=True, allow_nan=False)
    lon = fields.Float(load_default=None, allow_none=True, allow_nan=False)


class CaseSchema(Base):
    """The case a result opened: an administrative case by its number, or a criminal or
    market referral the service opens through police_handoff / market_referral with
    ``referral`` (that service's create payload) and links both ways."""
    kind = fields.String(required=True, validate=validate.OneOf(CASE_KINDS))
    case_number = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(min=1, max=60))
    referral = fields.Dict(load_default=None, allow_none=True)
    referral_id = fields.String(load_default=None, allow_none=True)
    """Set by the service: the referral it opened (input ignored)."""

    @validates_schema
    def _complete(self, data, **_kw):
        if data["kind"] == "administrative" and not data.get("case_number"):
            raise ValidationError({"case_number": ["an administrative case needs its number"]})
        if data["kind"] != "administrative" and not (data.get("referral")
                                                      or data.get("referral_id")):
            raise ValidationError({"referral": [
                f"the {data['kind']} to open (the create payload of that service)"]})


class DisposeSchema(Base):
    """The result of the disposal (处置结果)."""
    result = fields.String(required=True, validate=validate.OneOf(RESULTS))
    note = optional_text(4000)
    case = fields.Nested(CaseSchema, load_default=None, allow_none=True)

    @validates_schema
    def _case_when_opened(self, data, **_kw):
        if data.get("result") == "case_opened" and not data.get("case"):
            raise ValidationError({"case": ["result case_opened needs the case"]})
        if data.get("result") != "case_opened" and data.get("case"):
            raise ValidationError({"case": ["only a result case_opened has a case"]})


class ReassignSchema(Base):
    """The target crossed into another county (跨区改派): the county it is now in."""
    to_county = fields.String(required=True, validate=validate.OneOf(list(COUNTIES)))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ReassignDetails(ReassignSchema):
    from_county = fields.String(required=True)
    handler_unit = fields.String(required=True)
    domain = fields.String(load_default=None, allow_none=True)


class DispatchDetails(Base):
    """What the service records when an alert becomes a task."""
    alert_id = fields.String(required=True)
    alert_kind = fields.String(required=True)
    domain = fields.String(required=True)
    urgency = fields.String(required=True)
    target = fields.Dict(required=True)
    reading = fields.Dict(required=True)
    place = fields.Dict(load_default=None, allow_none=True)
    routing = fields.String(required=True)
    handler_unit = fields.String(required=True)
    periods = fields.Dict(required=True)
    source_unit = fields.String(required=True)
    recommendations = fields.List(fields.Dict(), load_default=list)
    """The judgment rules the alert's readings already meet (never automatic)."""


class EscalateDetails(Base):
    """A missed ack or arrival, escalated to the county centre, then the city centre."""
    miss = fields.String(required=True, validate=validate.OneOf(MISSES))
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    escalated_to_unit = fields.String(required=True)
    due = fields.AwareDateTime(required=True, format="iso")
    domain = fields.String(load_default=None, allow_none=True)


class DisposeDetails(DisposeSchema):
    domain = fields.String(load_default=None, allow_none=True)


ALERT_TASK_COMMANDS = {"acknowledge": NoteSchema, "arrive": ArriveSchema,
                       "dispose": DisposeSchema, "close": NoteSchema,
                       "reassign": ReassignSchema}
ALERT_TASK_DETAILS = {"dispatch": DispatchDetails, "acknowledge": NoteSchema,
                      "arrive": ArriveSchema, "dispose": DisposeDetails, "close": NoteSchema,
                      "escalate": EscalateDetails, "reassign": ReassignDetails}
__all__ = ["ALERT_TASK_COMMANDS", "ALERT_TASK_DETAILS", "COUNTIES"]

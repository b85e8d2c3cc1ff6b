"""Payload schemas of the command centres' procedures: joint actions (联合行动) and
assistance requests (协查请求) — see contracts/standards/joint_action.yaml and
assistance_request.yaml.

``*_COMMANDS`` validate what a caller sends; ``*_DETAILS`` describe the ``details`` of the
event each command causes: the validated input plus what the service adds (which
recipient acted, the due times it computed, ...). The enforcement domains come from the
reference data in contracts/command/centres.yaml.
"""
from __future__ import annotations

import copy
from datetime import timedelta
from functools import cache

import yaml
from marshmallow import ValidationError, fields, validate, validates_schema

from shared.schemas.common import COUNTIES, Base
from shared.standards import CONTRACTS_DIR

CENTRES_FILE = CONTRACTS_DIR / "command" / "centres.yaml"


@cache
def _centres_document() -> dict:
    with CENTRES_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def centres_document() -> dict:
    """contracts/command/centres.yaml, parsed (checked by services/command/reference.py)."""
    return copy.deepcopy(_centres_document())


DOMAINS = tuple(_centres_document()["domains"])
PRIORITIES = ("normal", "urgent")
ROUTES = ("police", "market_regulation")
MISSES = ("acknowledgement", "result_report")

required_text = lambda n=2000: fields.String(  # noqa: E731
    required=True, validate=validate.Length(min=1, max=n))
optional_text = lambda n=2000: fields.String(  # noqa: E731
    load_default=None, allow_none=True, validate=validate.Length(max=n))
count = lambda required=True: fields.Integer(  # noqa: E731
    strict=True, validate=validate.Range(min=0), **(
        {"required": True} if required else {"load_default": None, "allow_none": True}))
unit_id = lambda: fields.String(  # noqa: E731
    required=True, validate=validate.Length(min=1, max=100))
county = lambda: fields.String(validate=validate.OneOf(list(COUNTIES)))  # noqa: E731


# --------------------------------------------------------------------------- joint action

class DispatchSchema(Base):
    """Dispatch a joint action (下达联合行动指令)."""
    title = required_text(200)
    domain = fields.String(required=True, validate=validate.OneOf(DOMAINS))
    area = fields.List(county(), required=True, validate=validate.Length(min=1))
    location = optional_text(500)
    window_start = fields.AwareDateTime(required=True, format="iso")
    window_end = fields.AwareDateTime(required=True, format="iso")
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    instructions = required_text(4000)
    recipients = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                             required=True, validate=validate.Length(min=1, max=50))

    @validates_schema
    def _window(self, data, **_kw):
        start, end = data.get("window_start"), data.get("window_end")
        if start and end and end <= start:
            raise ValidationError("must be after window_start", field_name="window_end")
        for name in ("area", "recipients"):
            values = data.get(name) or []
            if len(set(values)) != len(values):
                raise ValidationError("lists a value twice", field_name=name)


class DispatchedDetails(DispatchSchema):
    """Details of joint_action.dispatched: the order plus the due times computed for it."""
    dispatcher = unit_id()
    ack_due = fields.AwareDateTime(required=True, format="iso")
    report_due = fields.AwareDateTime(required=True, format="iso")


class AcknowledgeActionSchema(Base):
    note = optional_text()


class ReportProgressSchema(Base):
    note = required_text(4000)
    vehicles_checked = count(required=False)
    cases_opened = count(required=False)


class ReferralLinkSchema(Base):
    """A case found in the action that goes on to a referral (行刑衔接 / 市场监管移送)."""
    route = fields.String(required=True, validate=validate.OneOf(ROUTES))
    case_number = required_text(60)
    summary = required_text(2000)


class ReportResultSchema(Base):
    vehicles_checked = count()
    cases_opened = count()
    referrals_made = count()
    summary = optional_text(4000)
    referrals = fields.List(fields.Nested(ReferralLinkSchema), load_default=list)

    @validates_schema
    def _referrals(self, data, **_kw):
        listed, made = len(data.get("referrals") or []), data.get("referrals_made")
        if made is not None and listed > made:
            raise ValidationError(f"lists {listed} referrals but referrals_made is {made}",
                                  field_name="referrals")
        numbers = [r["case_number"] for r in data.get("referrals") or []]
        if len(set(numbers)) != len(numbers):
            raise ValidationError("names a case number twice", field_name="referrals")


class CloseActionSchema(Base):
    reason = required_text()


class EscalateSchema(Base):
    """Input of the (system-only) escalation step: whose deadline was missed."""
    recipient = unit_id()
    miss = fields.String(required=True, validate=validate.OneOf(MISSES))


class _Recipient(Base):
    recipient = unit_id()


class AcknowledgedDetails(AcknowledgeActionSchema, _Recipient):
    pass


class ProgressDetails(ReportProgressSchema, _Recipient):
    pass


class ResultDetails(ReportResultSchema, _Recipient):
    pass


class ClosedDetails(CloseActionSchema):
    unreported = fields.List(fields.String(), load_default=list)


class EscalatedDetails(EscalateSchema):
    """Details of joint_action.escalated: a recipient missed a deadline; the city centre
    is told once per recipient and kind of miss."""
    due = fields.AwareDateTime(required=True, format="iso")
    escalated_to = unit_id()


JOINT_ACTION_COMMANDS: dict[str, type[Base]] = {
    "dispatch": DispatchSchema,
    "acknowledge": AcknowledgeActionSchema,
    "report_progress": ReportProgressSchema,
    "report_result": ReportResultSchema,
    "close": CloseActionSchema,
    "escalate": EscalateSchema,
}

JOINT_ACTION_DETAILS: dict[str, type[Base]] = {
    "dispatch": DispatchedDetails,
    "acknowledge": AcknowledgedDetails,
    "report_progress": ProgressDetails,
    "report_result": ResultDetails,
    "close": ClosedDetails,
    "escalate": EscalatedDetails,
}


# --------------------------------------------------------------------------- assistance

class RequestAssistanceSchema(Base):
    """Ask another county's centre for assistance (协查请求)."""
    to_county = fields.String(required=True, validate=validate.OneOf(list(COUNTIES)))
    subject = required_text(200)
    request = required_text(4000)
    domain = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(DOMAINS))
    plate = optional_text(20)
    related_case_number = optional_text(60)


class RequestedDetails(RequestAssistanceSchema):
    from_county = fields.String(required=True, validate=validate.OneOf(list(COUNTIES)))
    target_unit = unit_id()
    neighbour = fields.Boolean(required=True)


class ApproveAssistanceSchema(Base):
    opinion = optional_text()


class RefuseAssistanceSchema(Base):
    reason = required_text()


class AcknowledgeAssistanceSchema(Base):
    note = optional_text()


class AnswerAssistanceSchema(Base):
    answer = required_text(8000)
    found = fields.Boolean(load_default=None, allow_none=True)


class WithdrawAssistanceSchema(Base):
    reason = required_text()


ASSISTANCE_COMMANDS: dict[str, type[Base]] = {
    "request_assistance": RequestAssistanceSchema,
    "approve": ApproveAssistanceSchema,
    "refuse": RefuseAssistanceSchema,
    "acknowledge": AcknowledgeAssistanceSchema,
    "answer": AnswerAssistanceSchema,
    "withdraw": WithdrawAssistanceSchema,
}

ASSISTANCE_DETAILS: dict[str, type[Base]] = {
    **ASSISTANCE_COMMANDS, "request_assistance": RequestedDetails}


# --------------------------------------------------------------------------- assessment

MAX_ASSESSMENT_DAYS = 366


class AssessmentQuerySchema(Base):
    start = fields.AwareDateTime(required=True, format="iso")
    end = fields.AwareDateTime(required=True, format="iso")

    @validates_schema
    def _order(self, data, **_kw):
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            raise ValidationError("must be after start", field_name="end")
        # an assessment is of a month, a quarter or a year: its work is bounded by one
        # year's actions, however many years the database holds (issue 21)
        if data.get("start") and data.get("end") and \
                data["end"] - data["start"] > timedelta(days=MAX_ASSESSMENT_DAYS):
            raise ValidationError(f"a period of at most {MAX_ASSESSMENT_DAYS} days",
                                  field_name="end")

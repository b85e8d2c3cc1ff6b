"""Payload schemas of the 以罚代刑 supervision inquiry (services/supervision) and of the
penalty decisions it is opened from.

Each command's input schema is also the ``details`` of the event it causes (see
``shared.schemas.handoff``); the procedure is ``contracts/standards/supervision_inquiry.yaml``.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.schemas.common import Base, IsoDate, county_field

required_text = lambda n=2000: fields.String(  # noqa: E731
    required=True, validate=validate.Length(min=1, max=n))
optional_text = lambda n=2000: fields.String(  # noqa: E731
    load_default=None, allow_none=True, validate=validate.Length(max=n))


class DecisionPartySchema(Base):
    """A party of a penalty decision: a name, and an ID number or credit code when the
    case system has one (matched against the parties of criminal referrals)."""
    name = required_text(200)
    id_number = optional_text(40)


class PenaltyDecisionSchema(Base):
    """One administrative penalty decision (行政处罚决定) as the case system sends it;
    the columns of an import file are the same fields (contracts/supervision/README.md)."""
    case_number = fields.String(required=True, validate=[
        validate.Length(min=1, max=60),
        validate.Regexp(r"^\S(.*\S)?$", error="no leading or trailing blanks")])
    decided_on = IsoDate(required=True)
    county = county_field
    unit = required_text(100)
    parties = fields.List(fields.Nested(DecisionPartySchema), required=True,
                          validate=validate.Length(min=1, max=50))
    plate = optional_text(20)
    offence_code = optional_text(40)
    facts = fields.Dict(keys=fields.String(), load_default=dict)
    """The measured facts of the judgment standards (contracts/standards/judgment.yaml),
    e.g. {"rated_seats": 50, "passengers": 65}; checked against the facts declared there."""
    summary = optional_text(4000)
    penalty = required_text(500)
    fine_yuan = fields.Decimal(load_default=None, allow_none=True, as_string=True,
                               places=2, validate=validate.Range(min=0, max=10**9))


class OpenInquirySchema(Base):
    decision_id = required_text(60)
    """The penalty decision (its case number) the inquiry is about."""
    target_unit = optional_text(100)
    """The agency asked (default: the unit that decided the penalty)."""
    question = required_text(4000)
    case_number = fields.String(dump_only=True)
    """Set by the service from the decision."""
    rules = fields.List(fields.String(), dump_only=True)
    """Set by the service: the judgment rules the decision meets."""


ANSWERS = ("transfer", "explain")


class AnswerSchema(Base):
    outcome = fields.String(required=True, validate=validate.OneOf(ANSWERS))
    reasons = optional_text(4000)
    """Why the case was not transferred (required when ``outcome`` is ``explain``)."""

    @validates_schema
    def _reasons(self, data, **_kw):
        if data.get("outcome") == "explain" and not data.get("reasons"):
            raise ValidationError({"reasons": ["say why the case was not transferred"]})


class OpinionSchema(Base):
    opinion_number = required_text(100)
    """The number of the 检察意见书."""
    reasons = required_text(4000)
    issued_on = IsoDate(load_default=None, allow_none=True)


class AcceptReasonsSchema(Base):
    note = required_text(4000)


class RecordTransferSchema(Base):
    referral_id = optional_text(60)
    """The criminal referral opened for the transfer (police_handoff), if any."""
    transfer_letter_number = required_text(100)
    transferred_on = IsoDate(required=True)
    police_authority = required_text(100)
    """The police organ the case went to (a name, not a unit of this system)."""


class AccountabilitySchema(Base):
    authority = required_text(200)
    """The 监察机关 or superior agency the failure to transfer is referred to."""
    reasons = required_text(4000)


COMMAND_SCHEMAS: dict[str, type] = {
    "open_inquiry": OpenInquirySchema,
    "reply": AnswerSchema,
    "issue_opinion": OpinionSchema,
    "accept_reasons": AcceptReasonsSchema,
    "record_transfer": RecordTransferSchema,
    "refer_for_accountability": AccountabilitySchema,
}

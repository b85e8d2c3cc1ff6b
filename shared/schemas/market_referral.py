"""Payload schemas of the market-regulation referral (市场监管移送) commands and events.

Each command's input schema is also the ``details`` of the event it causes (see
``shared.schemas.handoff``). What depends on the standard — the referral kinds, the
evidence each kind must carry, which direction a kind may travel — is checked by
``services/market_referral/domain.py`` against ``contracts/standards/market_referral.yaml``.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.schemas.common import Base, DocumentSchema, PartySchema, county_field, yuan

DIRECTIONS = ("transport_to_market", "market_to_transport")
LINKABLE_KINDS = ("criminal_referral", "market_referral", "alert_task")
RETURN_REASONS = ("insufficient_evidence", "not_competent", "no_violation_apparent",
                  "duplicate", "other")
OUTCOMES = ("penalty", "no_violation", "transferred_on")
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

required_text = lambda n=2000: fields.String(  # noqa: E731
    required=True, validate=validate.Length(min=1, max=n))
optional_text = lambda n=2000: fields.String(  # noqa: E731
    load_default=None, allow_none=True, validate=validate.Length(max=n))


class ReferredPartySchema(PartySchema):
    """A party of a referral, identified by name and unified social credit code
    (统一社会信用代码, businesses) or resident ID number (居民身份证号码, persons)."""
    id_type = fields.String(required=True, validate=validate.OneOf(
        ["uscc", "resident_id"],
        error="identify the party by unified social credit code (uscc) or resident ID "
              "number (resident_id)"))


class LinkSchema(Base):
    """Another handoff about the same case, e.g. the criminal referral of its fraud."""
    kind = fields.String(required=True, validate=validate.OneOf(LINKABLE_KINDS))
    id = fields.String(required=True, validate=validate.Regexp(
        UUID_PATTERN, error="not a handoff id (UUID)"))


class SendSchema(Base):
    """``send`` (transport -> market regulation) and ``send_to_transport`` (the reverse).
    ``direction`` may be omitted: the command says it; if given it must agree."""
    direction = fields.String(load_default=None, allow_none=True,
                              validate=validate.OneOf(DIRECTIONS))
    referral_kind = required_text(60)
    case_number = required_text(60)
    county = county_field
    target_unit = required_text(100)
    summary = required_text(4000)
    findings = optional_text(8000)
    plate = optional_text(20)
    parties = fields.List(fields.Nested(ReferredPartySchema), required=True,
                          validate=validate.Length(min=1))
    documents = fields.List(fields.Nested(DocumentSchema), load_default=list)
    linked = fields.List(fields.Nested(LinkSchema), load_default=list)
    contact = optional_text(200)


class AcknowledgeSchema(Base):
    receiving_officer = required_text(100)
    receipt_number = optional_text(60)


class AcceptSchema(Base):
    acceptance_number = optional_text(60)
    opinion = optional_text()


class ReturnSchema(Base):
    reason_code = fields.String(required=True, validate=validate.OneOf(RETURN_REASONS))
    reason = required_text()
    missing_evidence = fields.List(fields.String(validate=validate.Length(min=1, max=60)),
                                   load_default=list)


class AmendSchema(Base):
    documents = fields.List(fields.Nested(DocumentSchema), load_default=list)
    summary = optional_text(4000)
    findings = optional_text(8000)
    parties = fields.List(fields.Nested(ReferredPartySchema), load_default=None,
                          allow_none=True, validate=validate.Length(min=1))
    linked = fields.List(fields.Nested(LinkSchema), load_default=list)
    note = optional_text()

    @validates_schema
    def _something_to_amend(self, data, **_kw):
        if not (data.get("documents") or data.get("summary") or data.get("findings")
                or data.get("parties") or data.get("linked")):
            raise ValidationError("nothing to amend: give documents, summary, findings, "
                                  "parties or linked", field_name="documents")


class ResendSchema(Base):
    documents = fields.List(fields.Nested(DocumentSchema), load_default=list)
    response = required_text()  # how the reasons of the return were met


class StartInvestigationSchema(Base):
    investigation_number = optional_text(60)
    investigators = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                                load_default=list)
    note = optional_text()


class ReportResultSchema(Base):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    summary = required_text(4000)
    decision_number = optional_text(60)
    fine_yuan = yuan(load_default=None, allow_none=True)
    transferred_to = optional_text(100)

    @validates_schema
    def _outcome_details(self, data, **_kw):
        if data.get("outcome") == "penalty" and not data.get("decision_number"):
            raise ValidationError("a penalty needs its decision number (处罚决定书文号)",
                                  field_name="decision_number")
        if data.get("outcome") == "transferred_on" and not data.get("transferred_to"):
            raise ValidationError("name the authority the case was transferred to",
                                  field_name="transferred_to")


class LinkCommandSchema(Base):
    linked = fields.List(fields.Nested(LinkSchema), required=True,
                         validate=validate.Length(min=1))


class CloseSchema(Base):
    note = optional_text()


COMMAND_SCHEMAS: dict[str, type[Base]] = {
    "send": SendSchema,
    "send_to_transport": SendSchema,
    "acknowledge": AcknowledgeSchema,
    "accept": AcceptSchema,
    "return": ReturnSchema,
    "amend": AmendSchema,
    "resend": ResendSchema,
    "start_investigation": StartInvestigationSchema,
    "report_result": ReportResultSchema,
    "link": LinkCommandSchema,
    "close": CloseSchema,
}

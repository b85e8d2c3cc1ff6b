"""Payload schemas of the criminal referral (行刑衔接) commands and events.

Each command's input schema is also the ``details`` of the event it causes; the
event payload adds the referral's identity, state change and deadline clock.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.schemas.common import Base, DocumentSchema, OfficerSchema, PartySchema, county_field

text = fields.String
required_text = lambda n=2000: fields.String(  # noqa: E731
    required=True, validate=validate.Length(min=1, max=n))
optional_text = lambda n=2000: fields.String(  # noqa: E731
    load_default=None, allow_none=True, validate=validate.Length(max=n))


class PriorPenaltySchema(Base):
    """A penalty imposed before the transfer; it stays in force (Decree art. 11)."""
    kind = fields.String(required=True, validate=validate.OneOf(
        ["warning", "fine", "suspension", "licence_revocation", "other"]))
    decision_number = required_text(100)
    fine_yuan = fields.Decimal(load_default=None, allow_none=True, as_string=True,
                               validate=validate.Range(min=0))


class DraftSchema(Base):
    case_number = required_text(60)
    county = county_field
    summary = required_text(4000)
    plate = optional_text(20)
    facts = fields.Dict(load_default=dict)
    parties = fields.List(fields.Nested(PartySchema), required=True,
                          validate=validate.Length(min=1))
    team = fields.List(fields.Nested(OfficerSchema), load_default=list)
    prior_penalties = fields.List(fields.Nested(PriorPenaltySchema), load_default=list)
    documents = fields.List(fields.Nested(DocumentSchema), load_default=list)


class ReverseOpenSchema(Base):
    police_case_number = required_text(60)
    county = county_field
    target_unit = required_text(100)
    summary = required_text(4000)
    reason = required_text()
    plate = optional_text(20)
    parties = fields.List(fields.Nested(PartySchema), required=True,
                          validate=validate.Length(min=1))


class AttachDocumentsSchema(Base):
    documents = fields.List(fields.Nested(DocumentSchema), required=True,
                            validate=validate.Length(min=1))


class RequestApprovalSchema(Base):
    transfer_report = required_text(8000)
    team = fields.List(fields.Nested(OfficerSchema), load_default=None, allow_none=True)


class ApproveSchema(Base):
    opinion = optional_text()


class RefuseSchema(Base):
    reason = required_text()


class TransferSchema(Base):
    police_unit = required_text(100)
    procuratorate_unit = required_text(100)
    documents = fields.List(fields.Nested(DocumentSchema), load_default=list)


class SignReceiptSchema(Base):
    receipt_number = required_text(60)
    receiving_officer = required_text(100)


class ExtendReviewSchema(Base):
    extension = fields.String(required=True, validate=validate.OneOf(["verification", "complex"]))
    reason = required_text()
    approved_by = optional_text(100)

    @validates_schema
    def _complex_needs_approval(self, data, **_kw):
        if data.get("extension") == "complex" and not data.get("approved_by"):
            raise ValidationError("a complex-case extension needs the approving police head",
                                  field_name="approved_by")


class ForwardSchema(Base):
    competent_authority = required_text(100)
    reason = required_text()
    written_notice_number = optional_text(60)


class FileSchema(Base):
    filing_number = required_text(60)
    notice_number = optional_text(60)


class NotFileSchema(Base):
    reasons = required_text()
    notice_number = optional_text(60)
    materials_returned = fields.Boolean(required=True, validate=validate.Equal(
        True, error="the materials must be returned with a decision not to file (art. 8)"))


class RequestReconsiderationSchema(Base):
    reason = required_text()


class DecideReconsiderationSchema(Base):
    outcome = fields.String(required=True, validate=validate.OneOf(["file", "uphold"]))
    reason = required_text()
    filing_number = optional_text(60)

    @validates_schema
    def _filing_number(self, data, **_kw):
        if data.get("outcome") == "file" and not data.get("filing_number"):
            raise ValidationError("filing the case needs its filing number",
                                  field_name="filing_number")


class RequestSupervisionSchema(Base):
    procuratorate_unit = optional_text(100)
    reason = required_text()


class DecideSupervisionSchema(Base):
    outcome = fields.String(required=True, validate=validate.OneOf(
        ["order_filing", "refusal_justified"]))
    opinion = required_text()


class HandOverEvidenceSchema(Base):
    items = fields.List(fields.String(validate=validate.Length(min=1, max=300)), required=True,
                        validate=validate.Length(min=1))
    handover_record_number = required_text(60)


class ReturnForPenaltySchema(Base):
    reason = required_text()
    suggested_measures = optional_text()


class AcceptReturnSchema(Base):
    note = optional_text()


class DecideAdministrativelySchema(Base):
    decision = fields.String(required=True, validate=validate.OneOf(
        ["penalty", "no_penalty", "prior_penalty_sufficient"]))
    decision_number = optional_text(60)
    fine_yuan = fields.Decimal(load_default=None, allow_none=True, as_string=True,
                               validate=validate.Range(min=0))
    reason = required_text()


class CloseSchema(Base):
    note = optional_text()


COMMAND_SCHEMAS: dict[str, type[Base]] = {
    "draft": DraftSchema,
    "open_reverse_transfer": ReverseOpenSchema,
    "attach_documents": AttachDocumentsSchema,
    "request_approval": RequestApprovalSchema,
    "approve": ApproveSchema,
    "refuse": RefuseSchema,
    "transfer": TransferSchema,
    "sign_receipt": SignReceiptSchema,
    "extend_review": ExtendReviewSchema,
    "forward": ForwardSchema,
    "file": FileSchema,
    "not_file": NotFileSchema,
    "request_reconsideration": RequestReconsiderationSchema,
    "decide_reconsideration": DecideReconsiderationSchema,
    "request_supervision": RequestSupervisionSchema,
    "decide_supervision": DecideSupervisionSchema,
    "hand_over_evidence": HandOverEvidenceSchema,
    "return_for_penalty": ReturnForPenaltySchema,
    "accept_return": AcceptReturnSchema,
    "decide_administratively": DecideAdministrativelySchema,
    "close": CloseSchema,
}

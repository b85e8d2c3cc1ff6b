"""Payload schemas of the criminal referral (行刑衔接) commands and events.

Each command's input schema is also the ``details`` of the event it causes; the
event payload adds the referral's identity, state change and deadline clock. A few
fields are set by the service, never by the caller (said in their docstrings); the
articles are those of ``contracts/standards/criminal_referral.yaml``.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.schemas.common import (
    Base,
    DocumentSchema,
    IsoDate,
    OfficerSchema,
    PartySchema,
    county_field,
)
from shared.schemas.common import yuan as common_yuan

text = fields.String
required_text = lambda n=2000: fields.String(  # noqa: E731
    required=True, validate=validate.Length(min=1, max=n))
optional_text = lambda n=2000: fields.String(  # noqa: E731
    load_default=None, allow_none=True, validate=validate.Length(max=n))
optional_date = lambda: IsoDate(load_default=None, allow_none=True)  # noqa: E731
yuan = lambda: common_yuan(load_default=None, allow_none=True)  # noqa: E731


def _required_by_outcome(data: dict, rules: dict[str, tuple[tuple[str, ...], str]]) -> None:
    """Every field the payload's outcome requires (field -> (outcomes, message)) is given;
    otherwise one ValidationError naming each empty field."""
    errors = {field: [message] for field, (outcomes, message) in rules.items()
              if data.get("outcome") in outcomes and not data.get(field)}
    if errors:
        raise ValidationError(errors)


class PriorPenaltySchema(Base):
    """A penalty imposed before the transfer (Decree art. 11): warnings, suspensions and
    licence measures stay in force; a fine is offset by the court against a criminal
    fine when it sentences (art. 11 para. 3), never by the agency."""
    kind = fields.String(required=True, validate=validate.OneOf(
        ["warning", "fine", "suspension", "licence_revocation", "other"]))
    decision_number = required_text(100)
    fine_yuan = yuan()
    decided_on = optional_date()
    paid_on = optional_date()


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
    suspected_offences = fields.List(fields.String(), dump_only=True)
    """Set by the service: the offences the judgment standards suggest (input ignored)."""


class RecordPriorPenaltySchema(Base):
    penalties = fields.List(fields.Nested(PriorPenaltySchema), required=True,
                            validate=validate.Length(min=1))


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


class ProcuratorateCopySchema(Base):
    """The copy of the transfer letter and the list of materials sent to the
    procuratorate at the same level (高检会〔2006〕2号 item 1)."""
    sent_on = IsoDate(required=True)
    reference = optional_text(200)


class TransferSchema(Base):
    police_unit = required_text(100)
    procuratorate_unit = required_text(100)
    procuratorate_copy = fields.Nested(ProcuratorateCopySchema, required=True)
    documents = fields.List(fields.Nested(DocumentSchema), load_default=list)


class SignReceiptSchema(Base):
    receipt_number = required_text(60)
    receiving_officer = required_text(100)


class ExtendReviewSchema(Base):
    """Retired: no confirmed rule extends the 3-day review of a transferred case
    (Decree art. 8; police rules art. 180). Kept to read events recorded before."""
    extension = fields.String(required=True, validate=validate.OneOf(["verification", "complex"]))
    reason = required_text()
    approved_by = optional_text(100)

    @validates_schema
    def _complex_needs_approval(self, data, **_kw):
        if data.get("extension") == "complex" and not data.get("approved_by"):
            raise ValidationError("a complex-case extension needs the approving police head",
                                  field_name="approved_by")


class RequestMaterialsSchema(Base):
    missing = required_text()
    notice_number = optional_text(60)


class CompleteMaterialsSchema(Base):
    note = required_text()
    documents = fields.List(fields.Nested(DocumentSchema), load_default=list)


class NotifyOutsideRemitSchema(Base):
    reason = required_text()
    competent_authority = optional_text(100)
    notice_number = optional_text(60)


class ReferElsewhereSchema(Base):
    authority = required_text(100)
    sent_on = IsoDate(required=True)
    reference = optional_text(100)


class ForwardSchema(Base):
    competent_authority = required_text(100)
    reason = required_text()
    written_notice_number = optional_text(60)


class FileSchema(Base):
    filing_number = required_text(60)
    notice_number = optional_text(60)
    offence = optional_text(100)


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
    ground = fields.String(dump_only=True, validate=validate.OneOf(
        ["not_filed", "reconsideration_upheld", "review_overdue"]))
    """Set by the service from the state it was asked in (input ignored)."""


class RequestExplanationSchema(Base):
    reason = required_text()
    notice_number = optional_text(60)


class WrittenReasonsSchema(Base):
    """Reasons given in writing with the notice's number: the police's explanation to the
    procuratorate (刑诉规则 560), the procuratorate's notice to the agency (561)."""
    reasons = required_text()
    notice_number = optional_text(60)


class IssueCorrectionSchema(Base):
    notice_number = required_text(60)
    reason = required_text()


class DecideSupervisionSchema(Base):
    outcome = fields.String(required=True, validate=validate.OneOf(
        ["order_filing", "refusal_justified"]))
    opinion = required_text()
    notice_number = optional_text(60)


class HandOverEvidenceSchema(Base):
    items = fields.List(fields.String(validate=validate.Length(min=1, max=300)), required=True,
                        validate=validate.Length(min=1))
    handover_record_number = required_text(60)


class EndInvestigationSchema(Base):
    """The end of the police investigation: transfer for prosecution (程序规定 289) or
    the case dropped (撤销案件, 186), with the decision's number and, when dropped, why."""
    outcome = fields.String(required=True, validate=validate.OneOf(["prosecution", "dropped"]))
    decision_number = required_text(60)
    offence = optional_text(100)
    reason = optional_text()
    administrative_penalty_due = fields.Boolean(load_default=None, allow_none=True)

    @validates_schema
    def _by_outcome(self, data, **_kw):
        _required_by_outcome(data, {
            "reason": (("dropped",), "a dropped case needs its reason"),
            "offence": (("prosecution",), "a transfer for prosecution names the offence")})


class DecideProsecutionSchema(Base):
    outcome = fields.String(required=True, validate=validate.OneOf(
        ["prosecute", "not_prosecute"]))
    decision_number = required_text(60)
    court_unit = optional_text(100)
    offence = optional_text(100)
    reason = optional_text()

    @validates_schema
    def _by_outcome(self, data, **_kw):
        _required_by_outcome(data, {
            "court_unit": (("prosecute",), "an indictment names the court it goes to"),
            "offence": (("prosecute",), "an indictment names the offence"),
            "reason": (("not_prosecute",), "a decision not to prosecute needs its reason")})


class RecordJudgmentSchema(Base):
    """A judgment in legal effect (生效判决): offence, sentence, date. The court offsets a
    fine paid before the transfer against the criminal fine (Decree art. 11 para. 3)."""
    outcome = fields.String(required=True, validate=validate.OneOf(
        ["convicted", "exempted", "acquitted"]))
    judgment_number = required_text(60)
    judgment_date = IsoDate(required=True)
    effective_on = IsoDate(required=True)
    offence = optional_text(100)
    sentence = optional_text(500)
    criminal_fine_yuan = yuan()
    fine_offset_yuan = yuan()

    @validates_schema
    def _by_outcome(self, data, **_kw):
        errors = {}
        if data.get("effective_on") and data.get("judgment_date") and \
                data["effective_on"] < data["judgment_date"]:
            errors["effective_on"] = ["takes effect on or after the judgment date"]
        try:
            _required_by_outcome(data, {
                "offence": (("convicted", "exempted"), "a conviction names the offence"),
                "sentence": (("convicted",), "a conviction states the sentence")})
        except ValidationError as exc:
            errors.update(exc.messages)
        if errors:
            raise ValidationError(errors)


class ReturnForPenaltySchema(Base):
    reason = required_text()
    suggested_measures = optional_text()
    decision_number = optional_text(60)
    procuratorial_opinion_number = optional_text(60)
    """检察意见书 number: required when the procuratorate returns a case it did not
    prosecute (刑事诉讼法 art. 177 para. 3)."""


class AcceptReturnSchema(Base):
    note = optional_text()


class WarningSchema(Base):
    code = fields.String(required=True)
    message = fields.String(required=True)
    article = fields.String(required=True)
    rules = fields.List(fields.String(), load_default=list)


class DecideAdministrativelySchema(Base):
    """The agency's own decision (Decree art. 10; after a return: art. 13, 行政处罚法 27).
    ``prior_penalty_sufficient``: a penalty imposed before the transfer stays in force
    and nothing more is due — no fine is "offset" here (the court does that, art. 11)."""
    decision = fields.String(required=True, validate=validate.OneOf(
        ["penalty", "no_penalty", "prior_penalty_sufficient"]))
    decision_number = optional_text(60)
    fine_yuan = yuan()
    reason = required_text()
    override_reason = optional_text()
    """Why a case that meets a judgment rule is dealt with administratively although the
    head refused its transfer: required then (以罚代刑 is forbidden, art. 11 para. 1)."""
    warning = fields.Nested(WarningSchema, dump_only=True, allow_none=True)
    """Set by the service (input ignored): the 以罚代刑 warning, when it applies."""


class CloseSchema(Base):
    note = optional_text()


COMMAND_SCHEMAS: dict[str, type[Base]] = {
    "draft": DraftSchema,
    "open_reverse_transfer": ReverseOpenSchema,
    "attach_documents": AttachDocumentsSchema,
    "record_prior_penalty": RecordPriorPenaltySchema,
    "request_approval": RequestApprovalSchema,
    "approve": ApproveSchema,
    "refuse": RefuseSchema,
    "transfer": TransferSchema,
    "sign_receipt": SignReceiptSchema,
    "request_materials": RequestMaterialsSchema,
    "complete_materials": CompleteMaterialsSchema,
    "forward": ForwardSchema,
    "notify_outside_remit": NotifyOutsideRemitSchema,
    "refer_elsewhere": ReferElsewhereSchema,
    "file": FileSchema,
    "not_file": NotFileSchema,
    "request_reconsideration": RequestReconsiderationSchema,
    "decide_reconsideration": DecideReconsiderationSchema,
    "request_supervision": RequestSupervisionSchema,
    "request_explanation": RequestExplanationSchema,
    "explain": WrittenReasonsSchema,
    "issue_correction": IssueCorrectionSchema,
    "decide_supervision": DecideSupervisionSchema,
    "notify_agency": WrittenReasonsSchema,
    "hand_over_evidence": HandOverEvidenceSchema,
    "end_investigation": EndInvestigationSchema,
    "decide_prosecution": DecideProsecutionSchema,
    "record_judgment": RecordJudgmentSchema,
    "return_for_penalty": ReturnForPenaltySchema,
    "accept_return": AcceptReturnSchema,
    "decide_administratively": DecideAdministrativelySchema,
    "close": CloseSchema,
}

# Event types no command emits any more, kept so that recorded history stays readable
# (the tracker's rebuild replays every event ever published): type -> details schema.
RETIRED_DETAILS: dict[str, type[Base]] = {
    "criminal_referral.review_extended.v1": ExtendReviewSchema,
}

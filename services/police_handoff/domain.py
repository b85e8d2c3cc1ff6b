"""Criminal referral (行刑衔接) domain: plain Python, no nameko/SQLAlchemy/pika.

The procedure itself is the table in ``contracts/standards/criminal_referral.yaml``
(run by ``shared.procedure``); this module adds what the table cannot say: payload
validation, the documents a transfer must carry (Decree art. 6) and its copy to the
procuratorate, the size of the case team (art. 5), who owns a referral and may see it,
the judgment standards' recommendation recorded with the case, the checks that depend on
a clock already being past due (刑诉规则 562, 564), and the 以罚代刑 warning (art. 11).
"""
from __future__ import annotations

import uuid
from datetime import datetime

from shared import casefile, units
from shared.auth import Actor, NotAllowed, require_role
from shared.errors import InvalidInput, InvalidTransition
from shared.procedure import Procedure
from shared.schemas.common import check_document_kinds, load_payload
from shared.schemas.criminal_referral import COMMAND_SCHEMAS
from shared.schemas.handoff import event_data
from shared.standards import FactError, judgment_rules

KIND = "criminal_referral"

# the unit of the record each role acts for (the role check itself is the table's)
PARTY_UNIT = {"police": "counterpart_unit", "procuratorate": "procuratorate_unit",
              "court": "court_unit"}


def procedure() -> Procedure:
    return Procedure.load(KIND)


def document_kinds() -> dict[str, dict]:
    return {d["id"]: d for d in procedure().doc["documents"]}


def validate(command: str, payload) -> dict:
    """Load a command's payload with its schema; InvalidInput names each bad field."""
    data = load_payload(COMMAND_SCHEMAS, command, payload)
    check_document_kinds(data.get("documents"), document_kinds())
    return data


def recommend(facts: dict) -> list[dict]:
    """The judgment standards' recommendations for a case's facts (never automatic)."""
    try:
        return [r.to_dict() for r in judgment_rules().evaluate(facts)]
    except FactError as exc:
        raise InvalidInput("invalid case facts", {"facts": exc.errors}) from None


def criminal_rules(rec: dict) -> list[str]:
    """The judgment rules recommending a criminal referral that this case meets."""
    return [r["rule_id"] for r in rec.get("recommendations", []) if r["route"] == "police"]


# ------------------------------------------------------------------ ownership and scope

def can_view(actor: Actor, rec: dict) -> bool:
    """Each agency sees only what it may (DESIGN.md security rules): the police, the
    procuratorate and the court a referral once it has been sent to them."""
    role = actor.role
    if role in ("coordinator", "city_command", "operator", "system"):
        return True
    if role in ("agency_head", "county_command"):
        return actor.county is None or actor.county == rec["county"]
    if role == "enforcement_unit":
        return actor.unit == rec["owner_unit"]
    if role == "police":
        return actor.unit in rec.get("police_units", [])
    if role in ("procuratorate", "court"):
        return actor.unit is not None and actor.unit == rec.get(PARTY_UNIT[role])
    return False


def can_view_files(actor: Actor, rec: dict) -> bool:
    """The case file follows the case: the handoff's read rule, except that among the
    police only the unit holding the case sees its files. A unit that forwarded the
    case (程序规定 179: not its jurisdiction) keeps the timeline of what it did, but
    the papers go with the case to the competent unit."""
    if actor.role == "police":
        return actor.unit is not None and actor.unit == rec.get("counterpart_unit") \
            and actor.unit in rec.get("police_units", [])
    return can_view(actor, rec)


def check_may_act(actor: Actor, rec: dict) -> None:
    """Beyond the role: the acting unit must be the one this referral is with."""
    role = actor.role
    if role == "enforcement_unit":
        ok = actor.unit == rec["owner_unit"]
    elif role == "agency_head":
        ok = actor.county is None or actor.county == rec["county"]
    else:
        ok = role in PARTY_UNIT and actor.unit == rec.get(PARTY_UNIT[role])
    if not ok:
        raise NotAllowed(f"{actor.unit!r} is not a party to referral {rec['id']}",
                         {"unit": [f"this referral is with {rec.get('counterpart_unit')!r} "
                                   f"and owned by {rec['owner_unit']!r}"]})


# ------------------------------------------------------------------ commands

def create(command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    """Draft a referral (agency) or open a reverse transfer (police). The county is the
    caller's own (its token's unit must serve it, Decree art. 5: the unit's own head
    approves); the enforcement unit a reverse transfer goes to must serve it too."""
    proc = procedure()
    if command not in proc.creations:
        raise InvalidInput(f"{command!r} does not create a {KIND}",
                           {"command": [f"one of: {', '.join(proc.creations)}"]})
    data = validate(command, payload)
    t = proc.creations[command]
    require_role(actor, t.roles, f"{t.command} ({t.title})")  # the role before the unit
    units.check_serves(actor, data["county"])
    if command == "open_reverse_transfer":
        units.check_named("target_unit", data["target_unit"],
                          ("enforcement", "partner", "port_shipping"),
                          county=data["county"])
    common = {"id": str(uuid.uuid4()), "kind": KIND, "county": data["county"],
              "procuratorate_unit": None, "court_unit": None, "plate": data.get("plate"),
              "summary": data["summary"], "parties": data["parties"], "documents": {},
              "created_at": now.isoformat(), "created_by": actor.to_dict()}
    if command == "draft":
        recommendations = recommend(data["facts"])
        data["suspected_offences"] = sorted({r["suspected_offence"] for r in recommendations
                                             if r["route"] == "police"})
        rec = {**common, "direction": "agency_to_police", "case_number": data["case_number"],
               "owner_unit": actor.unit, "counterpart_unit": None, "police_units": [],
               "facts": data["facts"], "recommendations": recommendations,
               "team": data["team"], "prior_penalties": data["prior_penalties"]}
        _add_documents(rec, data["documents"], now)
    else:
        rec = {**common, "direction": "police_to_agency",
               "case_number": data["police_case_number"], "owner_unit": data["target_unit"],
               "counterpart_unit": actor.unit, "police_units": [actor.unit], "facts": {},
               "recommendations": [], "team": [], "prior_penalties": [],
               "returned_by": {"role": "police", "unit": actor.unit,
                               "at": now.isoformat(), "reason": data["reason"]}}
    state, step = proc.advance(None, command, actor, data, now)
    return {**rec, **state}, {**step, "details": data}


# the units a step's payload names: field -> the kinds of unit it must be
NAMED_UNITS: dict[str, dict[str, tuple[str, ...]]] = {
    "transfer": {"police_unit": ("police",), "procuratorate_unit": ("procuratorate",)},
    "forward": {"competent_authority": ("police",)},
    "request_supervision": {"procuratorate_unit": ("procuratorate",)},
    "decide_prosecution": {"court_unit": ("court",)},
}


def check_named_units(command: str, data: dict, actor: Actor) -> None:
    """Every unit the payload names exists and is of the kind the step requires (a
    transfer to an unknown unit would wait forever, its deadline recorded as met)."""
    for field, kinds in NAMED_UNITS.get(command, {}).items():
        if data.get(field) is not None:
            units.check_named(field, data[field], kinds, not_unit=actor.unit)


def act(rec: dict, command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    """Apply one step of the procedure to a referral."""
    proc = procedure()
    transition = proc.transition(rec["state"], command)  # order first: clearest error
    data = validate(command, payload)
    new, step = proc.advance(rec, command, actor, data, now)
    check_may_act(actor, rec)
    check_named_units(command, data, actor)
    new = {**new, "documents": dict(rec["documents"]), "police_units": list(rec["police_units"])}
    _check_timing(proc, rec, command, data, now)
    handler = _STEPS.get(command)
    if handler:
        handler(new, rec, data, actor, now)
    if command == "transfer":
        _check_transfer_documents(new, transition.requires_documents)
        check_transfer_files(rec)
    return new, {**step, "details": data}


def _check_timing(proc: Procedure, rec: dict, command: str, data: dict, now: datetime) -> None:
    """Steps the law allows only once a period has run out, or only after another step."""
    state = rec["state"]
    if command == "request_supervision" and state == "receipted" and \
            not proc.overdue(rec, "review_decision", now):
        due = rec["clocks"]["review_decision"]["due"]
        raise InvalidTransition(
            "the police still have time to decide whether to file",
            {"command": [f"the 3-day review runs until {due} (Decree art. 8); afterwards the "
                         "agency may turn to the procuratorate (刑诉规则 562)"]})
    if command == "complete_materials" and "materials_completion" not in rec["clocks"]:
        raise InvalidTransition("the police have not asked for more materials",
                                {"command": ["request_materials comes first (程序规定 180 ¶2)"]})
    if command == "issue_correction":
        clock = "police_explanation" if state == "explanation_requested" else "ordered_filing"
        if not proc.overdue(rec, clock, now):
            raise InvalidTransition(
                "the police's period has not run out",
                {"command": [f"a correction follows a missed {clock} deadline "
                             f"(due {rec['clocks'].get(clock, {}).get('due')}; "
                             "刑诉规则 562, 564)"]})
    if command == "not_file" and state == "explanation_requested" and \
            rec.get("supervision_ground") != "review_overdue":
        raise InvalidTransition(
            "the police decided not to file already",
            {"command": ["explain the refusal, or file (程序规定 182 ¶1)"]})
    if command == "decide_supervision":
        if state == "supervision_requested" and data["outcome"] == "order_filing":
            raise InvalidTransition(
                "the police must be asked to explain before a notice to file",
                {"outcome": ["request_explanation first (刑事诉讼法 113; 刑诉规则 559-561)"]})
        if state == "explanation_requested" and not proc.overdue(rec, "police_explanation",
                                                                 now):
            raise InvalidTransition(
                "the police still have time to explain",
                {"command": ["decide on their explanation, or after their 7 days have run "
                             "out (刑诉规则 560, 562)"]})


def _check_transfer_documents(new: dict, required: bool) -> None:
    kinds = document_kinds()
    missing = [k for k in kinds if k not in new["documents"]]
    if required and missing:
        titles = [f"{k} ({kinds[k]['title']})" for k in missing]
        raise InvalidInput("the transfer lacks required documents (art. 6)",
                           {"documents": [f"missing: {', '.join(titles)}"]})


def check_transfer_files(rec: dict) -> None:
    """Decree art. 6 (1)-(3): the transfer letter, the investigation report and the
    items list travel as files (``required_for_transfer`` of the case file), not as
    titles. The file records are this referral's own (``attach_file`` writes them in
    this service, on this record, after the blob is stored), so the check reads the
    record being transferred: no other service is asked, nothing can cross it."""
    known = casefile.kinds(KIND)
    present = casefile.present_kinds(rec)
    missing = [k for k in casefile.required_for_transfer(KIND) if k not in present]
    if missing:
        raise InvalidInput(
            "the transfer lacks the case file's required files (Decree art. 6)",
            {"files": [f"missing: {k} ({known[k]['title']})" for k in missing]})


# ------------------------------------------------------------------ what each step records

def _attach_documents(new, rec, data, actor, now):
    _add_documents(new, data["documents"], now)


def _record_prior_penalty(new, rec, data, actor, now):
    new["prior_penalties"] = list(rec["prior_penalties"]) + [
        {**p, "recorded_at": now.isoformat()} for p in data["penalties"]]


def _request_approval(new, rec, data, actor, now):
    if data.get("team"):
        new["team"] = data["team"]
    minimum = procedure().doc.get("minimum_team_size", 2)
    if len(new["team"]) < minimum:
        raise InvalidInput("the case team is too small",
                           {"team": [f"at least {minimum} officers must check the case "
                                     "(art. 5)"]})
    new["transfer_report"] = data["transfer_report"]


def _transfer(new, rec, data, actor, now):
    _add_documents(new, data["documents"], now)
    copy = procedure().doc["procuratorate_copy"]
    new["counterpart_unit"] = data["police_unit"]
    new["police_units"] = [data["police_unit"]]
    new["procuratorate_unit"] = data["procuratorate_unit"]
    new["procuratorate_copy"] = {**data["procuratorate_copy"], "title": copy["title"],
                                 "basis": copy["article"], "to": data["procuratorate_unit"],
                                 "recorded_at": now.isoformat()}


def _complete_materials(new, rec, data, actor, now):
    _add_documents(new, data["documents"], now)


def _forward(new, rec, data, actor, now):
    new["counterpart_unit"] = data["competent_authority"]
    new["police_units"].append(data["competent_authority"])


def _filing(new, rec, data, actor, now):
    if data.get("filing_number"):
        new["filing_number"] = data["filing_number"]


def _request_supervision(new, rec, data, actor, now):
    data["ground"] = {"receipted": "review_overdue"}.get(rec["state"], rec["state"])
    new["supervision_ground"] = data["ground"]
    if data.get("procuratorate_unit"):
        new["procuratorate_unit"] = data["procuratorate_unit"]
    if not new.get("procuratorate_unit"):
        raise InvalidInput("which procuratorate?",
                           {"procuratorate_unit": ["required: no copy went to one"]})


def _end_investigation(new, rec, data, actor, now):
    new["investigation"] = {**data, "at": now.isoformat()}


def _decide_prosecution(new, rec, data, actor, now):
    new["prosecution"] = {**data, "at": now.isoformat()}
    if data["outcome"] == "prosecute":
        new["court_unit"] = data["court_unit"]


def _record_judgment(new, rec, data, actor, now):
    new["judgment"] = {**data, "at": now.isoformat()}


def _return_for_penalty(new, rec, data, actor, now):
    if actor.role == "procuratorate" and not data.get("procuratorial_opinion_number"):
        raise InvalidInput("a case not prosecuted goes back with a procuratorial opinion",
                           {"procuratorial_opinion_number": [
                               "the 检察意见书 number (刑事诉讼法 177 ¶3)"]})
    new["returned_by"] = {"role": actor.role, "unit": actor.unit, "at": now.isoformat(),
                          "reason": data["reason"]}


def _decide_administratively(new, rec, data, actor, now):
    """以罚代刑 (Decree art. 11 para. 1): a case that meets a judgment rule and whose
    transfer the head refused may be closed administratively only with a reason why it is
    not transferred, and the step carries a warning the procuratorate can see."""
    data["warning"] = None
    rules = criminal_rules(rec)
    if rec["state"] == "refused" and rules:
        if not data.get("override_reason"):
            raise InvalidInput(
                "this case meets the judgment standards for a criminal referral",
                {"override_reason": [
                    f"say why it is not transferred although it meets {', '.join(rules)}: "
                    "an administrative penalty may not replace a transfer (Decree art. 11 ¶1)"]})
        data["warning"] = {
            "code": "penalty_instead_of_transfer",
            "message": "以罚代刑风险：案件符合移送标准，负责人不批准移送后作行政处理",
            "article": "11 ¶1; 16 ¶2", "rules": rules}
        new["warnings"] = list(rec.get("warnings", [])) + [
            {**data["warning"], "at": now.isoformat(), "reason": data["override_reason"]}]
    new["administrative_decision"] = {**data, "at": now.isoformat()}


_STEPS = {
    "attach_documents": _attach_documents,
    "record_prior_penalty": _record_prior_penalty,
    "request_approval": _request_approval,
    "transfer": _transfer,
    "complete_materials": _complete_materials,
    "forward": _forward,
    "file": _filing,
    "decide_reconsideration": _filing,
    "request_supervision": _request_supervision,
    "end_investigation": _end_investigation,
    "decide_prosecution": _decide_prosecution,
    "record_judgment": _record_judgment,
    "return_for_penalty": _return_for_penalty,
    "decide_administratively": _decide_administratively,
}


def _add_documents(rec: dict, documents: list, now: datetime) -> None:
    for doc in documents:
        rec["documents"][doc["kind"]] = {**doc, "attached_at": now.isoformat()}


def event_payload(rec: dict, step: dict) -> dict:
    """The event data of a step (``shared.schemas.handoff.event_data``)."""
    return event_data(KIND, rec, step)

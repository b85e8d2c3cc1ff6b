"""The criminal referral procedure in plain Python: every path of LEGAL.md §1, its
deadlines, documents, roles and the judgment recommendation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.police_handoff import domain
from shared.errors import InvalidInput, InvalidTransition, NotAllowed
from shared.events import event_schemas, validate_payload
from shared.procedure import Procedure
from tests.helpers import (
    COORDINATOR,
    DOCUMENTS,
    HEAD,
    INVALID_ID,
    MARKET,
    OTHER_HEAD,
    OTHER_UNIT,
    POLICE,
    POLICE_2,
    PROCURATORATE,
    TRANSFER,
    UNIT,
    draft_payload,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 Beijing


class Case:
    """Drives one referral through the domain, checking every event payload."""

    def __init__(self, payload=None, now=T0):
        self.now = now
        self.rec, step = domain.create("draft", UNIT, payload or draft_payload(), now)
        self.steps = [step]
        validate_payload(step["event"], domain.event_payload(self.rec, step))

    def do(self, actor, command, payload=None, after=timedelta(hours=1)):
        self.now += after
        self.rec, step = domain.act(self.rec, command, actor, payload or {}, self.now)
        validate_payload(step["event"], domain.event_payload(self.rec, step))
        self.steps.append(step)
        return self.rec

    def to_receipted(self):
        self.do(UNIT, "request_approval", {"transfer_report": "专案组核实报告"})
        self.do(HEAD, "approve", {"opinion": "同意移送"})
        self.do(UNIT, "transfer", TRANSFER)
        return self.do(POLICE, "sign_receipt", {"receipt_number": "R-1",
                                                "receiving_officer": "王警官"})


def test_full_lawful_path_with_deadlines():
    case = Case()
    assert case.rec["recommendations"][0]["rule_id"] == "passenger_overcapacity"
    rec = case.do(UNIT, "request_approval", {"transfer_report": "报告"})
    assert rec["deadline"]["id"] == "head_decision" and rec["deadline"]["article"] == "5"
    # Monday 10:00 + 3 days -> Thursday 23:59:59 Beijing
    assert rec["deadline"]["due"] == "2026-03-05T15:59:59+00:00"
    rec = case.do(HEAD, "approve")
    assert rec["state"] == "approved"
    assert case.steps[-1]["satisfied"] == [
        {"id": "head_decision", "due": "2026-03-05T15:59:59+00:00", "on_time": True}]
    assert rec["deadline"]["id"] == "transfer"
    assert rec["deadline"]["due"] == (case.now + timedelta(hours=24)).isoformat()
    rec = case.do(UNIT, "transfer", TRANSFER)
    assert rec["state"] == "transferred" and rec["procuratorate_unit"] == PROCURATORATE.unit
    assert set(rec["documents"]) == {d["kind"] for d in DOCUMENTS}
    rec = case.do(POLICE, "sign_receipt", {"receipt_number": "R-1", "receiving_officer": "王"})
    assert rec["deadline"]["id"] == "review_decision"   # forward clock is not the tracked one
    assert set(rec["clocks"]) == {"review_decision", "forward"}
    rec = case.do(POLICE, "file", {"filing_number": "温公立〔2026〕8号"})
    assert rec["state"] == "filed" and rec["deadline"]["id"] == "handover"
    rec = case.do(UNIT, "hand_over_evidence", {"items": ["客车一辆"],
                                               "handover_record_number": "H-1"})
    rec = case.do(UNIT, "close", {"note": "交接完毕"})
    assert rec["state"] == "closed" and rec["deadline"] is None
    assert [s["step"] for s in case.steps] == list(range(1, 9))


def test_late_step_is_recorded_as_late():
    case = Case()
    case.do(UNIT, "request_approval", {"transfer_report": "报告"})
    case.do(HEAD, "approve", after=timedelta(days=5))
    assert case.steps[-1]["satisfied"][0]["on_time"] is False


def test_spring_festival_moves_head_decision():
    start = datetime(2026, 2, 12, 2, 0, tzinfo=timezone.utc)  # Thursday before 春节
    case = Case(now=start)
    rec = case.do(UNIT, "request_approval", {"transfer_report": "报告"}, after=timedelta(0))
    # 3 days -> Sunday 2026-02-15, inside the holiday (15th-23rd) -> Tuesday 24th
    assert rec["deadline"]["due"] == "2026-02-24T15:59:59+00:00"


def test_refusal_needs_a_reason_and_is_closed_administratively():
    case = Case()
    case.do(UNIT, "request_approval", {"transfer_report": "报告"})
    with pytest.raises(InvalidInput) as err:
        case.do(HEAD, "refuse", {})
    assert "reason" in err.value.errors
    assert case.do(HEAD, "refuse", {"reason": "证据不足"})["state"] == "refused"
    rec = case.do(UNIT, "decide_administratively",
                  {"decision": "penalty", "fine_yuan": "2000", "reason": "依法处罚"})
    assert rec["state"] == "closed"


def test_forwarding_changes_which_police_may_act():
    case = Case()
    case.to_receipted()
    case.do(POLICE, "forward", {"competent_authority": POLICE_2.unit, "reason": "不属本局管辖"})
    assert case.steps[-1]["satisfied"][0]["id"] == "forward"
    with pytest.raises(NotAllowed):
        case.do(POLICE, "sign_receipt", {"receipt_number": "R-2", "receiving_officer": "x"})
    rec = case.do(POLICE_2, "sign_receipt", {"receipt_number": "R-2", "receiving_officer": "赵"})
    assert rec["state"] == "receipted" and rec["police_units"] == [POLICE.unit, POLICE_2.unit]
    assert domain.can_view(POLICE, rec) and domain.can_view(POLICE_2, rec)


def test_not_filed_reconsideration_then_supervision_then_filing():
    case = Case()
    case.to_receipted()
    with pytest.raises(InvalidInput) as err:
        case.do(POLICE, "not_file", {"reasons": "情节显著轻微", "materials_returned": False})
    assert "materials_returned" in err.value.errors
    rec = case.do(POLICE, "not_file", {"reasons": "情节显著轻微", "materials_returned": True})
    assert rec["deadline"]["id"] == "reconsideration_request"
    assert rec["deadline"]["obligation"] == "may"
    rec = case.do(UNIT, "request_reconsideration", {"reason": "超员比例已达26%"})
    assert rec["deadline"]["id"] == "reconsideration_decision"
    with pytest.raises(InvalidInput) as err:
        case.do(POLICE, "decide_reconsideration", {"outcome": "file", "reason": "x"})
    assert "filing_number" in err.value.errors
    rec = case.do(POLICE, "decide_reconsideration", {"outcome": "uphold", "reason": "维持"})
    assert rec["state"] == "reconsideration_upheld"
    rec = case.do(UNIT, "request_supervision", {"reason": "请求立案监督"})
    assert rec["state"] == "supervision_requested"
    assert domain.can_view(PROCURATORATE, rec)
    with pytest.raises(NotAllowed):
        case.do(POLICE, "decide_supervision", {"outcome": "order_filing", "opinion": "x"})
    rec = case.do(PROCURATORATE, "decide_supervision",
                  {"outcome": "order_filing", "opinion": "应当立案"})
    assert rec["state"] == "filing_ordered"
    assert case.do(POLICE, "file", {"filing_number": "F-9"})["state"] == "filed"


def test_review_extension_needs_reason_and_moves_the_deadline():
    case = Case()
    rec = case.to_receipted()
    base_due = rec["deadline"]["due"]
    with pytest.raises(InvalidInput) as err:
        case.do(POLICE, "extend_review", {"extension": "complex", "reason": "案情复杂"})
    assert "approved_by" in err.value.errors
    rec = case.do(POLICE, "extend_review", {"extension": "complex", "reason": "案情复杂",
                                            "approved_by": "县公安局局长"})
    assert rec["state"] == "receipted" and rec["deadline"]["due"] > base_due
    assert rec["deadline"]["period"] == "30d"


def test_reverse_transfer_opened_by_police():
    rec, step = domain.create("open_reverse_transfer", POLICE, {
        "police_case_number": "温公(鹿)2026-77", "county": "lucheng",
        "target_unit": UNIT.unit, "summary": "非法营运，不构成犯罪", "reason": "应予行政处罚",
        "parties": [{"name": "李四", "id_type": "resident_id", "id_number": "11010519491231002X"}],
    }, T0)
    assert rec["state"] == "returned_for_penalty" and rec["direction"] == "police_to_agency"
    assert step["event"] == "criminal_referral.reverse_opened.v1"
    rec, _ = domain.act(rec, "accept_return", UNIT, {}, T0)
    rec, _ = domain.act(rec, "decide_administratively", UNIT,
                        {"decision": "penalty", "reason": "非法营运罚款", "fine_yuan": "30000"}, T0)
    assert rec["state"] == "closed"


def test_police_return_a_filed_case_for_penalty():
    case = Case()
    case.to_receipted()
    rec = case.do(POLICE, "return_for_penalty", {"reason": "不需要追究刑事责任"})
    assert rec["state"] == "returned_for_penalty"
    assert case.do(UNIT, "accept_return")["state"] == "penalty_proceedings"


@pytest.mark.parametrize("actor,command,payload,error,field", [
    (POLICE, "request_approval", {"transfer_report": "x"}, NotAllowed, "role"),
    (OTHER_UNIT, "request_approval", {"transfer_report": "x"}, NotAllowed, "unit"),
    (UNIT, "approve", {}, InvalidTransition, "command"),
    (UNIT, "fly", {}, InvalidInput, "command"),
    (UNIT, "request_approval", {}, InvalidInput, "transfer_report"),
    (UNIT, "request_approval", {"transfer_report": "x", "team": [{"name": "a",
                                                                 "badge_number": "1"}]},
     InvalidInput, "team"),
])
def test_bad_steps_name_the_rule_or_field(actor, command, payload, error, field):
    case = Case()
    with pytest.raises(error) as err:
        case.do(actor, command, payload)
    assert field in err.value.errors


def test_transfer_without_all_documents_names_the_missing_ones():
    case = Case()
    case.do(UNIT, "request_approval", {"transfer_report": "报告"})
    case.do(HEAD, "approve")
    with pytest.raises(InvalidInput) as err:
        case.do(UNIT, "transfer", {**TRANSFER, "documents": DOCUMENTS[:3]})
    message = err.value.errors["documents"][0]
    assert "inspection_reports" in message and "other_materials" in message
    assert "transfer_letter" not in message


def test_other_county_head_may_not_approve():
    case = Case()
    case.do(UNIT, "request_approval", {"transfer_report": "报告"})
    with pytest.raises(NotAllowed):
        case.do(OTHER_HEAD, "approve")


def test_invalid_id_number_is_a_field_error():
    bad = draft_payload()
    bad["parties"][0]["id_number"] = INVALID_ID
    with pytest.raises(InvalidInput) as err:
        domain.create("draft", UNIT, bad, T0)
    assert "id_number" in err.value.errors["parties"][0]
    bad["parties"][0]["id_number"] = "VALID"
    bad["parties"][0]["id_type"] = "uscc"
    with pytest.raises(InvalidInput) as err:
        domain.create("draft", UNIT, bad, T0)
    assert "统一社会信用代码" in str(err.value.errors["parties"][0]["id_number"])


def test_bad_facts_are_field_errors():
    with pytest.raises(InvalidInput) as err:
        domain.create("draft", UNIT, draft_payload(facts={"passengers": "many"}), T0)
    assert "passengers" in err.value.errors["facts"]


def test_visibility_by_agency():
    case = Case()
    assert domain.can_view(UNIT, case.rec) and domain.can_view(COORDINATOR, case.rec)
    assert not domain.can_view(POLICE, case.rec)         # not transferred yet
    assert not domain.can_view(PROCURATORATE, case.rec)
    assert not domain.can_view(MARKET, case.rec)
    assert not domain.can_view(OTHER_UNIT, case.rec)
    rec = case.to_receipted()
    assert domain.can_view(POLICE, rec) and domain.can_view(PROCURATORATE, rec)
    assert not domain.can_view(POLICE_2, rec)


def test_standard_is_consistent():
    proc = Procedure.load("criminal_referral")
    reachable = {proc.doc["initial_state"], proc.doc["reverse_initial_state"]}
    for t in proc.transitions.values():
        reachable |= {t.to} if t.to and t.to != "same" else set(t.outcomes.values())
    assert reachable == set(proc.states)
    assert all(t.event in event_schemas() for t in proc.commands.values())
    finals = [s for s in proc.states if proc.is_final(s)]
    assert finals == ["closed"]
    for state in proc.states:   # every non-final state has a way forward
        assert proc.is_final(state) or proc.allowed(state), state
    assert len(proc.doc["documents"]) == 5


def test_prior_fine_is_stored_as_plain_json():
    payload = draft_payload(prior_penalties=[{"kind": "fine", "decision_number": "D-1",
                                              "fine_yuan": "2000.50"}])
    rec, step = domain.create("draft", UNIT, payload, T0)
    import json
    json.dumps(rec)   # the record goes into a JSON column as it is
    assert rec["prior_penalties"][0]["fine_yuan"] == "2000.50"
    assert domain.event_payload(rec, step)["details"]["prior_penalties"][0]["fine_yuan"] \
        == "2000.50"


def test_unknown_creation_command_is_a_field_error():
    with pytest.raises(InvalidInput) as err:
        domain.create("teleport", UNIT, draft_payload(), T0)
    assert "command" in err.value.errors


def test_procedure_table_has_one_row_per_entry_and_outcomes_may_stay():
    from shared.procedure import Procedure
    doc = {"kind": "probe", "states": {"a": {}, "b": {}, "z": {"final": True}},
           "transitions": [
               {"command": "go", "from": ["a"], "to": "b", "roles": ["police"], "event": "p.go.v1"},
               {"command": "go", "from": ["b"], "to": "z", "roles": ["police"], "event": "p.go.v1"},
               {"command": "try", "from": ["a"], "outcomes": {"ok": "z", "again": "same"},
                "roles": ["police"], "event": "p.try.v1"}]}
    proc = Procedure(doc)
    assert [r["command"] for r in proc.table()] == ["go", "go", "try"]
    rec = {"state": "a", "step": 1, "clocks": {}}
    new, _ = proc.advance(rec, "try", POLICE, {"outcome": "again"}, T0)
    assert new["state"] == "a"

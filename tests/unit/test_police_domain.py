"""The criminal referral procedure in plain Python: every path of LEGAL.md §1, its
deadlines, documents, roles and the judgment recommendation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.police_handoff import domain
from shared import casefile
from shared.auth import Actor
from shared.errors import InvalidInput, InvalidTransition, NotAllowed
from shared.events import event_schemas, validate_payload
from shared.procedure import Procedure, periods_env
from tests.helpers import (
    COORDINATOR,
    COURT,
    DOCUMENTS,
    HEAD,
    INVALID_ID,
    MARKET,
    OTHER_HEAD,
    OTHER_UNIT,
    POLICE,
    POLICE_2,
    PROCURATORATE,
    REQUIRED_FILES,
    TRANSFER,
    UNIT,
    draft_payload,
    file_record,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 Beijing


class Case:
    """Drives one referral through the domain, checking every event payload."""

    def __init__(self, payload=None, now=T0, files=True):
        self.now = now
        self.rec, step = domain.create("draft", UNIT, payload or draft_payload(), now)
        self.steps = [step]
        validate_payload(step["event"], domain.event_payload(self.rec, step))
        for kind in REQUIRED_FILES if files else ():   # the papers a transfer needs
            self.rec, step = casefile.attach(domain.KIND, self.rec, UNIT, file_record(kind),
                                             now)
            validate_payload(step["event"], domain.event_payload(self.rec, step))
            self.steps.append(step)

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
    assert case.steps[0]["details"]["suspected_offences"] == ["危险驾驶罪"]
    rec = case.do(UNIT, "request_approval", {"transfer_report": "报告"})
    assert rec["deadline"]["id"] == "head_decision" and rec["deadline"]["article"] == "5 ¶2"
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
    assert set(rec["clocks"]) == {"review_decision", "forward", "materials_notice"}
    rec = case.do(POLICE, "file", {"filing_number": "温公立〔2026〕8号", "offence": "危险驾驶罪"})
    assert rec["state"] == "filed" and rec["deadline"]["id"] == "handover"
    rec = case.do(UNIT, "hand_over_evidence", {"items": ["客车一辆"],
                                               "handover_record_number": "H-1"})
    assert rec["state"] == "evidence_handed_over"          # the case goes on: outcomes follow
    rec = case.do(POLICE, "end_investigation", {"outcome": "prosecution", "offence": "危险驾驶罪",
                                                "decision_number": "起诉意见书 2026-8"})
    assert rec["state"] == "prosecution_review" and domain.can_view(PROCURATORATE, rec)
    assert not domain.can_view(COURT, rec)
    rec = case.do(PROCURATORATE, "decide_prosecution", {
        "outcome": "prosecute", "decision_number": "起诉书 2026-8", "court_unit": COURT.unit,
        "offence": "危险驾驶罪"})
    assert rec["state"] == "prosecuted" and rec["court_unit"] == COURT.unit
    assert domain.can_view(COURT, rec)
    rec = case.do(COURT, "record_judgment", {
        "outcome": "convicted", "judgment_number": "(2026)浙0302刑初88号",
        "judgment_date": "2026-06-01", "effective_on": "2026-06-12", "offence": "危险驾驶罪",
        "sentence": "拘役二个月，并处罚金四千元", "criminal_fine_yuan": "4000"})
    assert rec["state"] == "convicted" and rec["deadline"] is None
    assert Procedure.load("criminal_referral").is_final("convicted")
    assert rec["judgment"]["effective_on"] == "2026-06-12"
    assert [s["step"] for s in case.steps] == list(range(1, 14))   # 3 files, 10 steps


def test_transfer_records_the_copy_to_the_procuratorate_with_its_date():
    """高检会〔2006〕2号 item 1 (not Decree art. 6): the copy is a document of its own."""
    case = Case()
    case.do(UNIT, "request_approval", {"transfer_report": "报告"})
    case.do(HEAD, "approve")
    without = {k: v for k, v in TRANSFER.items() if k != "procuratorate_copy"}
    with pytest.raises(InvalidInput) as err:
        case.do(UNIT, "transfer", without)
    assert "procuratorate_copy" in err.value.errors
    with pytest.raises(InvalidInput) as err:
        case.do(UNIT, "transfer", {**TRANSFER, "procuratorate_copy": {"sent_on": "yesterday"}})
    assert "sent_on" in err.value.errors["procuratorate_copy"]
    rec = case.do(UNIT, "transfer", TRANSFER)
    copy = rec["procuratorate_copy"]
    assert copy["sent_on"] == "2026-03-02" and copy["to"] == PROCURATORATE.unit
    assert "高检会〔2006〕2号" in copy["basis"]
    transfer = Procedure.load("criminal_referral").commands["transfer"]
    assert "高检会〔2006〕2号" in transfer.article


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
    case = Case(draft_payload(facts={"vehicle_category": "passenger_bus",
                                     "service_type": "passenger_transport",
                                     "rated_seats": 50, "passengers": 63}))
    assert case.rec["recommendations"] == []          # 26% over: not a crime (S13)
    case.do(UNIT, "request_approval", {"transfer_report": "报告"})
    with pytest.raises(InvalidInput) as err:
        case.do(HEAD, "refuse", {})
    assert "reason" in err.value.errors
    assert case.do(HEAD, "refuse", {"reason": "未达立案追诉标准"})["state"] == "refused"
    rec = case.do(UNIT, "decide_administratively",
                  {"decision": "penalty", "fine_yuan": "2000", "reason": "依法处罚"})
    assert rec["state"] == "closed" and "warnings" not in rec
    assert case.steps[-1]["details"]["warning"] is None


def test_closing_a_case_that_meets_a_rule_after_a_refusal_needs_a_reason():
    """以罚代刑 (Decree art. 11 ¶1; art. 16 ¶2): the head refused the transfer of a case
    that meets a judgment rule; closing it administratively warns and needs a reason."""
    case = Case()
    case.do(UNIT, "request_approval", {"transfer_report": "报告"})
    case.do(HEAD, "refuse", {"reason": "负责人认为情节较轻"})
    penalty = {"decision": "penalty", "fine_yuan": "2000", "reason": "依法处罚"}
    with pytest.raises(InvalidInput) as err:
        case.do(UNIT, "decide_administratively", penalty)
    assert "passenger_overcapacity" in err.value.errors["override_reason"][0]
    assert "11 ¶1" in err.value.errors["override_reason"][0]
    rec = case.do(UNIT, "decide_administratively",
                  {**penalty, "override_reason": "经核实实载人数含两名婴儿，不足十五人",
                   "warning": {"code": "forged", "message": "x", "article": "x"}})
    warning = case.steps[-1]["details"]["warning"]
    assert warning["code"] == "penalty_instead_of_transfer"     # the caller's is ignored
    assert warning["rules"] == ["passenger_overcapacity"] and "11 ¶1" in warning["article"]
    assert rec["warnings"][0]["reason"].startswith("经核实")
    assert not domain.can_view(PROCURATORATE, rec)   # never sent: its review is part 4


def test_decide_administratively_rests_on_art_10_and_offsets_nothing():
    """Art. 10 (not 11) after a police refusal; the fine offset is the court's (11 ¶3)."""
    proc = Procedure.load("criminal_referral")
    assert proc.transition("not_filed", "decide_administratively").article == "10"
    assert proc.transition("supervision_concluded", "decide_administratively").article == "10"
    for t in proc.commands.values():
        assert "折抵" not in t.title or t.command in ("record_judgment", "record_prior_penalty")


def test_fine_paid_before_the_transfer_is_shown_to_police_procuratorate_and_court():
    """Decree art. 11 ¶2-3; 行政处罚法 35: recorded before the transfer, offset by the court."""
    case = Case()
    case.do(UNIT, "record_prior_penalty", {"penalties": [{
        "kind": "fine", "decision_number": "温交执罚〔2026〕3号", "fine_yuan": "2000",
        "decided_on": "2026-03-01", "paid_on": "2026-03-02"}]})
    rec = case.to_receipted()
    assert domain.can_view(POLICE, rec) and domain.can_view(PROCURATORATE, rec)
    assert rec["prior_penalties"][0]["paid_on"] == "2026-03-02"
    with pytest.raises(InvalidTransition):        # only what was imposed before the transfer
        case.do(UNIT, "record_prior_penalty", {"penalties": [{
            "kind": "fine", "decision_number": "D-9", "fine_yuan": "1"}]})
    case.do(POLICE, "file", {"filing_number": "F-1"})
    case.do(POLICE, "end_investigation", {"outcome": "prosecution", "offence": "危险驾驶罪",
                                          "decision_number": "Q-1"})
    rec = case.do(PROCURATORATE, "decide_prosecution", {
        "outcome": "prosecute", "decision_number": "G-1", "court_unit": COURT.unit,
        "offence": "危险驾驶罪"})
    assert domain.can_view(COURT, rec) and rec["prior_penalties"][0]["fine_yuan"] == "2000"
    rec = case.do(COURT, "record_judgment", {
        "outcome": "convicted", "judgment_number": "J-1", "judgment_date": "2026-06-01",
        "effective_on": "2026-06-12", "offence": "危险驾驶罪", "sentence": "拘役一个月",
        "criminal_fine_yuan": "5000", "fine_offset_yuan": "2000"})
    assert rec["judgment"]["fine_offset_yuan"] == "2000"


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


def test_review_is_a_flat_3_days_without_extension():
    """Decree art. 8; 程序规定 180 ¶1: no confirmed rule extends it (178 has no periods)."""
    case = Case()
    rec = case.to_receipted()
    assert rec["deadline"]["period"] == "3d" and rec["deadline"]["article"].startswith("8")
    with pytest.raises(InvalidInput) as err:
        case.do(POLICE, "extend_review", {"extension": "complex", "reason": "案情复杂",
                                          "approved_by": "县公安局局长"})
    assert "unknown command" in str(err.value)
    assert "extensions" not in Procedure.load("criminal_referral").deadlines["review_decision"]
    # events recorded before stay readable (a tracker rebuild replays them)
    assert "criminal_referral.review_extended.v1" in event_schemas()


def test_incomplete_materials_24_hours_to_notify_3_days_to_complete():
    """程序规定 180 ¶2: the police tell the agency within 24 h of accepting the case; the
    agency completes them within 3 days; the 3-day review keeps running."""
    case = Case()
    rec = case.to_receipted()
    review_due = rec["clocks"]["review_decision"]["due"]
    with pytest.raises(InvalidTransition):
        case.do(UNIT, "complete_materials", {"note": "补充"})
    rec = case.do(POLICE, "request_materials", {"missing": "车辆核载检验报告原件"},
                  after=timedelta(hours=5))
    notice = case.steps[-1]["satisfied"]
    assert [(n["id"], n["on_time"]) for n in notice] == [("materials_notice", True)]
    assert "materials_notice" not in rec["clocks"]
    assert rec["clocks"]["materials_completion"]["period"] == "3d"
    assert rec["clocks"]["materials_completion"]["actor_role"] == "enforcement_unit"
    assert rec["clocks"]["review_decision"]["due"] == review_due
    rec = case.do(UNIT, "complete_materials", {"note": "已补正检验报告原件",
                                               "documents": [DOCUMENTS[3]]})
    assert case.steps[-1]["satisfied"][0]["id"] == "materials_completion"
    assert set(rec["clocks"]) == {"review_decision", "forward"}
    assert rec["deadline"]["id"] == "review_decision"


def test_a_case_outside_any_police_remit():
    """程序规定 180 ¶3: written notice to send it to the competent authority, with reasons."""
    case = Case()
    case.to_receipted()
    rec = case.do(POLICE, "notify_outside_remit", {"reason": "属于监察机关管辖",
                                                   "competent_authority": "鹿城区监察委员会"})
    assert rec["state"] == "outside_police_remit"
    assert case.steps[-1]["satisfied"][0]["id"] == "review_decision"
    rec = case.do(UNIT, "refer_elsewhere", {"authority": "鹿城区监察委员会",
                                            "sent_on": "2026-03-04"})
    assert rec["state"] == "closed"


def supervision_case(ground="not_filed"):
    """A referral the police refused to file, at the agency's supervision request."""
    case = Case()
    case.to_receipted()
    case.do(POLICE, "not_file", {"reasons": "情节显著轻微", "materials_returned": True})
    case.do(UNIT, "request_supervision", {"reason": "请求立案监督"})
    return case


def test_second_window_after_reconsideration_is_art_9_para_2():
    """Art. 9 ¶2: after an upheld refusal the agency that still disagrees shall suggest
    supervision within 3 days of receiving the decision — its own clock, met by the
    request (not the first window of ¶1)."""
    case = Case()
    case.to_receipted()
    with pytest.raises(InvalidInput) as err:
        case.do(POLICE, "not_file", {"reasons": "情节显著轻微", "materials_returned": False})
    assert "materials_returned" in err.value.errors
    rec = case.do(POLICE, "not_file", {"reasons": "情节显著轻微", "materials_returned": True})
    assert rec["deadline"]["id"] == "reconsideration_request"
    assert rec["deadline"]["obligation"] == "may" and rec["deadline"]["article"] == "9 ¶1"
    rec = case.do(UNIT, "request_reconsideration", {"reason": "超员已达15人"})
    assert rec["deadline"]["id"] == "reconsideration_decision"
    with pytest.raises(InvalidInput) as err:
        case.do(POLICE, "decide_reconsideration", {"outcome": "file", "reason": "x"})
    assert "filing_number" in err.value.errors
    rec = case.do(POLICE, "decide_reconsideration", {"outcome": "uphold", "reason": "维持"})
    assert rec["state"] == "reconsideration_upheld"
    clock = rec["clocks"]["supervision_suggestion"]
    assert (clock["period"], clock["article"], clock["actor_role"]) == (
        "3d", "9 ¶2", "enforcement_unit")
    rec = case.do(UNIT, "request_supervision", {"reason": "对复议决定仍有异议"})
    assert [s["id"] for s in case.steps[-1]["satisfied"]] == ["supervision_suggestion"]
    assert case.steps[-1]["details"]["ground"] == "reconsideration_upheld"
    assert rec["state"] == "supervision_requested" and domain.can_view(PROCURATORATE, rec)


def test_filing_supervision_explanation_then_notice_to_file():
    """Decree art. 9 ¶3; 刑事诉讼法 113; 刑诉规则 559-563; 程序规定 182: the procuratorate
    asks the police to explain (7 days), finds the reasons do not hold and notifies them
    to file (15 days)."""
    case = supervision_case()
    with pytest.raises(InvalidTransition) as err:      # no notice to file before asking
        case.do(PROCURATORATE, "decide_supervision", {"outcome": "order_filing",
                                                      "opinion": "应当立案"})
    assert "request_explanation" in err.value.errors["outcome"][0]
    with pytest.raises(NotAllowed):
        case.do(POLICE, "request_explanation", {"reason": "x"})
    rec = case.do(PROCURATORATE, "request_explanation", {"reason": "请说明不立案理由"})
    assert rec["state"] == "explanation_requested"
    assert (rec["deadline"]["id"], rec["deadline"]["period"]) == ("police_explanation", "7d")
    assert "刑事诉讼法 113" in rec["deadline"]["article"] and "9 ¶3" in rec["deadline"]["article"]
    with pytest.raises(InvalidTransition):            # the police still have their 7 days
        case.do(PROCURATORATE, "decide_supervision", {"outcome": "order_filing",
                                                      "opinion": "x"})
    with pytest.raises(InvalidTransition):            # they refused already: explain or file
        case.do(POLICE, "not_file", {"reasons": "x", "materials_returned": True})
    rec = case.do(POLICE, "explain", {"reasons": "超员人数计算有误"}, after=timedelta(days=2))
    explained = case.steps[-1]["satisfied"]
    assert [(e["id"], e["on_time"]) for e in explained] == [("police_explanation", True)]
    rec = case.do(PROCURATORATE, "decide_supervision", {"outcome": "order_filing",
                                                        "opinion": "不立案理由不能成立",
                                                        "notice_number": "通知立案书 1"})
    assert rec["state"] == "filing_ordered"
    assert (rec["deadline"]["id"], rec["deadline"]["period"]) == ("ordered_filing", "15d")
    rec = case.do(POLICE, "file", {"filing_number": "F-9"}, after=timedelta(days=3))
    assert rec["state"] == "filed"
    assert [s["id"] for s in case.steps[-1]["satisfied"]] == ["ordered_filing"]


def test_reasons_hold_the_procuratorate_tells_the_agency_within_10_days():
    """刑诉规则 561 ¶2; then the agency deals with the case itself (Decree art. 10)."""
    case = supervision_case()
    case.do(PROCURATORATE, "request_explanation", {"reason": "请说明"})
    case.do(POLICE, "explain", {"reasons": "证据不足"})
    rec = case.do(PROCURATORATE, "decide_supervision", {"outcome": "refusal_justified",
                                                        "opinion": "理由成立"})
    assert rec["state"] == "refusal_justified"
    assert (rec["deadline"]["id"], rec["deadline"]["period"], rec["deadline"]["actor_role"]) \
        == ("notify_agency", "10d", "procuratorate")
    with pytest.raises(InvalidTransition):           # the agency waits for the notice
        case.do(UNIT, "decide_administratively", {"decision": "no_penalty", "reason": "x"})
    rec = case.do(PROCURATORATE, "notify_agency", {"reasons": "证据不足，理由成立"},
                  after=timedelta(days=11))
    assert rec["state"] == "supervision_concluded"
    assert case.steps[-1]["satisfied"][0]["on_time"] is False   # 11 days: late, recorded
    rec = case.do(UNIT, "decide_administratively", {"decision": "penalty", "fine_yuan": "2000",
                                                    "reason": "依法处罚"})
    assert rec["state"] == "closed" and case.steps[-1]["article"] == "10"


def test_police_who_miss_the_3_day_review():
    """刑诉规则 562 (and Decree art. 17): once the review period has passed the agency may
    go to the procuratorate; the police have 7 days to explain or decide; if they do
    neither, a correction (纠正意见) and, where the conditions are met, a notice to file."""
    case = Case()
    rec = case.to_receipted()
    with pytest.raises(InvalidTransition) as err:
        case.do(UNIT, "request_supervision", {"reason": "逾期未决定"})
    assert "562" in err.value.errors["command"][0]
    rec = case.do(UNIT, "request_supervision", {"reason": "逾期未决定"}, after=timedelta(days=5))
    assert rec["state"] == "supervision_requested"
    assert case.steps[-1]["details"]["ground"] == "review_overdue"
    case.do(PROCURATORATE, "request_explanation", {"reason": "说明逾期不作出是否立案决定的理由"})
    with pytest.raises(InvalidTransition):
        case.do(PROCURATORATE, "issue_correction", {"notice_number": "纠违 1", "reason": "x"})
    case.do(PROCURATORATE, "issue_correction", {"notice_number": "纠违 1",
                                                "reason": "七日内不说明理由也不作出决定"},
            after=timedelta(days=12))
    assert case.rec["state"] == "explanation_requested"
    assert case.rec["deadline"]["id"] == "police_explanation"   # still overdue, still shown
    rec = case.do(PROCURATORATE, "decide_supervision", {"outcome": "order_filing",
                                                        "opinion": "符合立案条件"})
    assert rec["state"] == "filing_ordered"


def test_overdue_police_may_still_decide_not_to_file_and_the_agency_keeps_its_rights():
    case = Case()
    case.to_receipted()
    case.do(UNIT, "request_supervision", {"reason": "逾期"}, after=timedelta(days=5))
    case.do(PROCURATORATE, "request_explanation", {"reason": "请说明"})
    rec = case.do(POLICE, "not_file", {"reasons": "不构成犯罪", "materials_returned": True})
    assert rec["state"] == "not_filed" and rec["deadline"]["id"] == "reconsideration_request"


def test_police_cannot_return_a_case_without_a_written_refusal():
    """Art. 8, 9: a transferred case under review is filed or refused in writing, so the
    agency keeps its right to reconsideration and supervision; no return from review."""
    case = Case()
    case.to_receipted()
    with pytest.raises(InvalidTransition):
        case.do(POLICE, "return_for_penalty", {"reason": "不需要追究刑事责任"})
    case.do(POLICE, "file", {"filing_number": "F-1"})
    with pytest.raises(InvalidTransition):          # a filed case is dropped first
        case.do(POLICE, "return_for_penalty", {"reason": "x"})


def test_police_drop_a_case_and_send_it_back_for_a_penalty():
    """Decree art. 13; 行政处罚法 27; 程序规定 186, 189: dropped after filing, not a crime
    but an administrative violation; the agency reports what it did (law: promptly)."""
    case = Case()
    case.to_receipted()
    case.do(POLICE, "file", {"filing_number": "F-1"})
    with pytest.raises(InvalidInput) as err:
        case.do(POLICE, "end_investigation", {"outcome": "dropped", "decision_number": "撤 1"})
    assert "reason" in err.value.errors
    rec = case.do(POLICE, "end_investigation", {
        "outcome": "dropped", "decision_number": "撤案决定书 1", "reason": "情节显著轻微",
        "administrative_penalty_due": True})
    assert rec["state"] == "investigation_dropped"
    rec = case.do(POLICE, "return_for_penalty", {"reason": "应予行政处罚"})
    assert rec["state"] == "returned_for_penalty" and rec["returned_by"]["role"] == "police"
    assert "13" in case.steps[-1]["article"] and "行政处罚法 27" in case.steps[-1]["article"]
    clock = rec["clocks"]["penalty_report"]
    assert clock["period"] == "30d" and "promptly" in clock["article"]
    rec = case.do(UNIT, "accept_return", after=timedelta(days=2))
    assert rec["state"] == "penalty_proceedings"
    assert rec["clocks"]["penalty_report"] == clock          # kept while the agency works
    rec = case.do(UNIT, "decide_administratively",
                  {"decision": "penalty", "fine_yuan": "5000", "reason": "依法处罚"},
                  after=timedelta(days=10))
    assert rec["state"] == "closed"
    assert case.steps[-1]["satisfied"] == [{"id": "penalty_report", "due": clock["due"],
                                            "on_time": True}]


def prosecuted_case() -> Case:
    case = Case()
    case.to_receipted()
    case.do(POLICE, "file", {"filing_number": "F-1"})
    case.do(POLICE, "end_investigation", {"outcome": "prosecution", "offence": "危险驾驶罪",
                                          "decision_number": "Q-1"})
    return case


def test_procuratorate_returns_a_case_not_prosecuted_with_its_opinion():
    """刑事诉讼法 177 ¶3; 刑诉规则 373: non-prosecution with a 检察意见 to the agency."""
    case = prosecuted_case()
    with pytest.raises(InvalidInput) as err:
        case.do(PROCURATORATE, "decide_prosecution", {"outcome": "prosecute",
                                                      "decision_number": "G-1"})
    assert {"court_unit", "offence"} <= set(err.value.errors)
    rec = case.do(PROCURATORATE, "decide_prosecution", {
        "outcome": "not_prosecute", "decision_number": "不诉 1", "reason": "犯罪情节轻微"})
    assert rec["state"] == "not_prosecuted"
    with pytest.raises(NotAllowed):
        case.do(POLICE, "return_for_penalty", {"reason": "x"})
    with pytest.raises(InvalidInput) as err:
        case.do(PROCURATORATE, "return_for_penalty", {"reason": "应予行政处罚"})
    assert "procuratorial_opinion_number" in err.value.errors
    rec = case.do(PROCURATORATE, "return_for_penalty", {
        "reason": "应予行政处罚", "procuratorial_opinion_number": "检察意见书 1"})
    assert rec["state"] == "returned_for_penalty"
    assert "177 ¶3" in case.steps[-1]["article"]
    assert rec["deadline"]["id"] == "penalty_report"


def test_court_exempts_from_punishment_and_returns_for_penalty():
    """刑法 37; 行政处罚法 27: 免予刑事处罚, the competent authority may still penalise."""
    case = prosecuted_case()
    rec = case.do(PROCURATORATE, "decide_prosecution", {
        "outcome": "prosecute", "decision_number": "G-1", "court_unit": COURT.unit,
        "offence": "危险驾驶罪"})
    with pytest.raises(NotAllowed):                           # another court
        case.do(Actor("judge-x", "court", "ouhai-court", "ouhai"), "record_judgment", {
            "outcome": "acquitted", "judgment_number": "J", "judgment_date": "2026-06-01",
            "effective_on": "2026-06-01"})
    with pytest.raises(InvalidInput) as err:
        case.do(COURT, "record_judgment", {"outcome": "convicted", "judgment_number": "J",
                                           "judgment_date": "2026-06-10",
                                           "effective_on": "2026-06-01"})
    assert {"offence", "sentence", "effective_on"} <= set(err.value.errors)
    rec = case.do(COURT, "record_judgment", {
        "outcome": "exempted", "judgment_number": "J-2", "judgment_date": "2026-06-01",
        "effective_on": "2026-06-12", "offence": "危险驾驶罪"})
    assert rec["state"] == "exempted_from_punishment"
    rec = case.do(COURT, "return_for_penalty", {"reason": "免予刑事处罚，建议行政处罚"})
    assert rec["state"] == "returned_for_penalty" and rec["returned_by"]["role"] == "court"
    assert "刑法 37" in case.steps[-1]["article"]


def test_penalty_report_period_is_configurable_but_legal_periods_are_not():
    from shared.standards import StandardError, load_standard
    proc = Procedure(load_standard("criminal_referral"), {"penalty_report": "60d"})
    assert proc.period("penalty_report") == "60d"
    assert proc.clock("penalty_report", T0)["period"] == "60d"
    assert periods_env("criminal_referral") == "CRIMINAL_REFERRAL_PERIODS"
    with pytest.raises(StandardError, match="review_decision.*not a configurable"):
        Procedure(load_standard("criminal_referral"), '{"review_decision": "30d"}')
    with pytest.raises(StandardError, match="penalty_report"):
        Procedure(load_standard("criminal_referral"), {"penalty_report": "soon"})


def test_reverse_transfer_opened_by_police():
    rec, step = domain.create("open_reverse_transfer", POLICE, {
        "police_case_number": "温公(鹿)2026-77", "county": "lucheng",
        "target_unit": UNIT.unit, "summary": "非法营运，不构成犯罪", "reason": "应予行政处罚",
        "parties": [{"name": "李四", "id_type": "resident_id", "id_number": "11010519491231002X"}],
    }, T0)
    assert rec["state"] == "returned_for_penalty" and rec["direction"] == "police_to_agency"
    assert step["event"] == "criminal_referral.reverse_opened.v1"
    assert rec["deadline"]["id"] == "penalty_report"
    rec, _ = domain.act(rec, "accept_return", UNIT, {}, T0)
    rec, _ = domain.act(rec, "decide_administratively", UNIT,
                        {"decision": "penalty", "reason": "非法营运罚款", "fine_yuan": "30000"}, T0)
    assert rec["state"] == "closed"


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
    assert finals == ["convicted", "closed"]
    for state in proc.states:   # every non-final state has a way forward
        assert proc.is_final(state) or proc.allowed(state), state
    assert len(proc.doc["documents"]) == 5
    for deadline_id, rule in proc.deadlines.items():   # every period names its source
        assert rule.get("article"), deadline_id
    for t in proc.commands.values():
        assert t.article or t.command == "attach_documents", t.command


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


def test_transfer_needs_the_required_files_and_names_each_missing_kind():
    """Decree art. 6 (1)-(3) as uploaded files (required_for_transfer): titles alone do
    not transfer; the optional kinds may stay a recorded "none" with a reason."""
    case = Case(files=False)
    rec = case.rec
    rec, _ = casefile.attach(domain.KIND, rec, UNIT, file_record("items_list"), T0)
    case.rec = rec
    case.do(UNIT, "request_approval", {"transfer_report": "报告"})
    case.do(HEAD, "approve")
    with pytest.raises(InvalidInput) as err:
        case.do(UNIT, "transfer", TRANSFER)
    missing = err.value.errors["files"]
    assert len(missing) == 2 and "transfer_letter" in missing[0] and "涉嫌犯罪案件移送书" in \
        missing[0] and "investigation_report" in missing[1]
    assert case.rec["state"] == "approved"
    for kind in ("transfer_letter", "investigation_report"):
        case.rec, _ = casefile.attach(domain.KIND, case.rec, UNIT, file_record(kind), case.now)
    none = [d if d["kind"] in REQUIRED_FILES else
            {"kind": d["kind"], "title": "无（本案未作检验鉴定）"}
            for d in DOCUMENTS]
    rec = case.do(UNIT, "transfer", {**TRANSFER, "documents": none})
    assert rec["state"] == "transferred"


def test_forwarding_moves_the_case_file_to_the_new_police_unit():
    case = Case()
    rec = case.to_receipted()
    assert domain.can_view_files(POLICE, rec) and not domain.can_view_files(POLICE_2, rec)
    rec = case.do(POLICE, "forward", {"competent_authority": POLICE_2.unit,
                                      "reason": "不属本局管辖"})
    assert domain.can_view_files(POLICE_2, rec) and not domain.can_view_files(POLICE, rec)
    assert domain.can_view(POLICE, rec)          # its own step stays on its timeline
    for actor in (UNIT, HEAD, PROCURATORATE, COORDINATOR):
        assert domain.can_view_files(actor, rec) == domain.can_view(actor, rec), actor

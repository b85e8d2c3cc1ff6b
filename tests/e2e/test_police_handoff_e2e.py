"""The police handoff end to end: RPC into the running police_handoff service, its
outbox relay over RabbitMQ, the tracker consuming every event into its own database.
Runs once on SQLite and once on PostgreSQL (the ``stack`` fixture)."""
from __future__ import annotations

import uuid

import pytest

from shared.errors import InvalidInput, InvalidTransition, NotAllowed, Unauthenticated
from tests.conftest import wait_for
from tests.e2e.test_gateway_e2e import Client
from tests.helpers import (
    COORDINATOR,
    COURT,
    HEAD,
    INVALID_ID,
    MARKET,
    POLICE,
    POLICE_2,
    PROCURATORATE,
    REQUIRED_FILES,
    TRANSFER,
    UNIT,
    attach_required_files,
    draft_payload,
    token,
)

pytestmark = pytest.mark.e2e
FILES = len(REQUIRED_FILES)     # the steps that upload the papers a transfer needs


def case_number() -> str:
    return f"WZ-LC-{uuid.uuid4().hex[:8]}"


class Flow:
    def __init__(self, rpc):
        self.svc = rpc.police_handoff
        self.tracker = rpc.tracker
        self.rec = self.svc.create(token(UNIT), "draft", draft_payload(case_number()))
        self.id = self.rec["id"]

    def do(self, actor, command, payload=None):
        self.rec = self.svc.act(token(actor), self.id, command, payload or {})
        return self.rec

    def to_receipted(self):
        attach_required_files(self.svc, self.id)      # 3 steps: the art. 6 papers
        self.do(UNIT, "request_approval", {"transfer_report": "专案组核实报告"})
        self.do(HEAD, "approve", {"opinion": "同意"})
        self.do(UNIT, "transfer", TRANSFER)
        return self.do(POLICE, "sign_receipt", {"receipt_number": "R-1",
                                                "receiving_officer": "王"})

    def tracked(self, step: int) -> dict:
        """Wait until the tracker has applied ``step`` events of this referral."""
        def seen():
            try:
                found = self.tracker.handoff(token(COORDINATOR), self.id)
            except Exception:  # noqa: BLE001 - not there yet
                return None
            return found if found["step"] >= step else None
        return wait_for(seen, message=f"tracker to reach step {step}")


def test_full_lawful_path_through_prosecution_and_judgment(stack):
    """Decree arts. 5-8, 12; then the outcome feedback of issue 22 part 3: the end of
    the investigation, the indictment and the judgment, each by its own agency, on the
    tracker's timeline and in its outcome statistics (filing -> prosecution ->
    conviction by offence), served over HTTP by the gateway."""
    offence = f"危险驾驶罪（e2e {uuid.uuid4().hex[:6]}）"   # its own row in the statistics
    with stack.rpc() as rpc:
        flow = Flow(rpc)
        assert flow.rec["state"] == "draft"
        assert flow.rec["recommendations"][0]["suspected_offence"] == "危险驾驶罪"
        flow.to_receipted()
        assert flow.rec["deadline"]["id"] == "review_decision"
        seen_by_procuratorate = flow.svc.get(token(PROCURATORATE), flow.id)
        assert seen_by_procuratorate["procuratorate_unit"] == PROCURATORATE.unit
        assert seen_by_procuratorate["procuratorate_copy"]["sent_on"] == "2026-03-02"
        flow.do(POLICE, "file", {"filing_number": "温公立〔2026〕8号", "offence": "危险驾驶罪"})
        flow.do(UNIT, "hand_over_evidence", {"items": ["客车一辆", "行车记录仪"],
                                             "handover_record_number": "H-1"})
        flow.do(POLICE, "end_investigation", {"outcome": "prosecution", "offence": offence,
                                              "decision_number": "起诉意见书 8"})
        with pytest.raises(NotAllowed):        # not sent to the court yet
            flow.svc.get(token(COURT), flow.id)
        flow.do(PROCURATORATE, "decide_prosecution", {
            "outcome": "prosecute", "decision_number": "起诉书 8", "court_unit": COURT.unit,
            "offence": offence})
        assert flow.svc.get(token(COURT), flow.id)["prior_penalties"] == []
        flow.do(COURT, "record_judgment", {
            "outcome": "convicted", "judgment_number": "(2026)浙0302刑初8号",
            "judgment_date": "2026-06-01", "effective_on": "2026-06-12", "offence": offence,
            "sentence": "拘役二个月，并处罚金四千元"})
        assert flow.rec["state"] == "convicted"

        shown = flow.svc.get(token(UNIT), flow.id)
        assert [s["command"] for s in shown["timeline"]] == [
            "draft", *["attach_file"] * FILES, "request_approval", "approve", "transfer",
            "sign_receipt", "file",
            "hand_over_evidence", "end_investigation", "decide_prosecution",
            "record_judgment"]
        assert shown["timeline"][2 + FILES]["actor"]["role"] == "agency_head"
        assert shown["timeline"][9 + FILES]["actor"]["role"] == "court"

        tracked = flow.tracked(10 + FILES)
        assert tracked["state"] == "convicted" and tracked["open"] is False
        assert [e["type"] for e in tracked["timeline"]][5 + FILES:] == [
            "criminal_referral.filed.v1", "criminal_referral.evidence_handed_over.v1",
            "criminal_referral.investigation_ended.v1",
            "criminal_referral.prosecution_decided.v1",
            "criminal_referral.judgment_recorded.v1"]
        assert tracked["timeline"][3 + FILES]["actor_unit"] == UNIT.unit
        assert rpc.tracker.handoff(token(COURT), flow.id)["state"] == "convicted"

    rows = Client(stack.base_url, COORDINATOR).get("/api/v1/statistics/outcomes",
                                                   group_by="offence").json()
    mine = next(r for r in rows if r["offence"] == offence)
    assert (mine["referred"], mine["filed"], mine["prosecuted"], mine["convicted"]) == (
        1, 1, 1, 1)
    assert mine["conviction_rate"] == 1.0
    other = Client(stack.base_url, POLICE_2).get("/api/v1/statistics/outcomes",
                                                 group_by="offence").json()
    assert offence not in [r["offence"] for r in other]     # not a party: not counted
    bad = Client(stack.base_url, COORDINATOR).get("/api/v1/statistics/outcomes",
                                                  group_by="plate")
    assert bad.status_code == 422 and "group_by" in bad.json()["errors"]


def test_refusal_of_a_case_that_meets_a_rule_warns_of_penalty_instead_of_transfer(stack):
    """Decree art. 11 ¶1: closing administratively what the head refused to transfer,
    although it meets a judgment rule, needs a reason; the warning is on the timeline."""
    with stack.rpc() as rpc:
        flow = Flow(rpc)
        flow.do(UNIT, "request_approval", {"transfer_report": "报告"})
        with pytest.raises(InvalidInput) as err:
            flow.do(HEAD, "refuse", {})
        assert "reason" in err.value.errors
        flow.do(HEAD, "refuse", {"reason": "证据不足"})
        penalty = {"decision": "penalty", "fine_yuan": "2000", "reason": "依法处罚"}
        with pytest.raises(InvalidInput) as err:
            flow.do(UNIT, "decide_administratively", penalty)
        assert "override_reason" in err.value.errors
        flow.do(UNIT, "decide_administratively", {**penalty,
                                                  "override_reason": "实载人数经复核为63人"})
        tracked = flow.tracked(4)
        assert tracked["state"] == "closed"
        warning = tracked["timeline"][3]["data"]["details"]["warning"]
        assert warning["code"] == "penalty_instead_of_transfer"
        assert warning["rules"] == ["passenger_overcapacity"]


def test_forwarding_branch(stack):
    with stack.rpc() as rpc:
        flow = Flow(rpc)
        flow.to_receipted()
        flow.do(POLICE, "forward", {"competent_authority": POLICE_2.unit,
                                    "reason": "不属本局管辖"})
        with pytest.raises(NotAllowed):
            flow.do(POLICE, "sign_receipt", {"receipt_number": "R-2", "receiving_officer": "x"})
        flow.do(POLICE_2, "sign_receipt", {"receipt_number": "R-2", "receiving_officer": "赵"})
        flow.do(POLICE_2, "file", {"filing_number": "F-2"})
        assert flow.tracked(8 + FILES)["counterpart_unit"] == POLICE_2.unit


def test_not_filed_reconsideration_and_filing_supervision_with_their_clocks(stack):
    """Decree art. 9 ¶1-3; CPL 113; procuratorate rules 560, 563: each window and each
    period is the running deadline the tracker shows."""
    with stack.rpc() as rpc:
        flow = Flow(rpc)
        flow.to_receipted()
        clocks = []

        def step(actor, command, payload):
            clocks.append(flow.do(actor, command, payload)["deadline"])

        step(POLICE, "not_file", {"reasons": "情节显著轻微", "materials_returned": True})
        step(UNIT, "request_reconsideration", {"reason": "超员15人"})
        step(POLICE, "decide_reconsideration", {"outcome": "uphold", "reason": "维持"})
        step(UNIT, "request_supervision", {"reason": "对复议决定仍有异议"})
        with pytest.raises(InvalidTransition):    # no notice to file before an explanation
            flow.do(PROCURATORATE, "decide_supervision", {"outcome": "order_filing",
                                                          "opinion": "应当立案"})
        step(PROCURATORATE, "request_explanation", {"reason": "请说明不立案理由"})
        step(POLICE, "explain", {"reasons": "超员人数计算有误"})
        step(PROCURATORATE, "decide_supervision", {"outcome": "order_filing",
                                                   "opinion": "理由不能成立"})
        step(POLICE, "file", {"filing_number": "F-3"})
        assert [(c or {}).get("id") for c in clocks] == [
            "reconsideration_request", "reconsideration_decision", "supervision_suggestion",
            None, "police_explanation", None, "ordered_filing", "handover"]
        assert [c["period"] for c in clocks if c] == ["3d", "3d", "3d", "7d", "15d", "3d"]
        assert clocks[2]["article"] == "9 ¶2" and "113" in clocks[4]["article"]
        tracked = flow.tracked(13 + FILES)
        assert tracked["state"] == "filed" and tracked["deadline"]["id"] == "handover"
        ordered = tracked["timeline"][11 + FILES]
        assert ordered["state"] == "filing_ordered"
        assert ordered["data"]["deadline"]["id"] == "ordered_filing"


def test_reverse_transfer_branch(stack):
    with stack.rpc() as rpc:
        svc = rpc.police_handoff
        rec = svc.create(token(POLICE), "open_reverse_transfer", {
            "police_case_number": f"温公-{uuid.uuid4().hex[:6]}", "county": "lucheng",
            "target_unit": UNIT.unit, "summary": "非法营运，不构成犯罪", "reason": "应予行政处罚",
            "parties": [{"name": "李四", "id_type": "resident_id",
                         "id_number": "11010519491231002X"}]})
        assert rec["state"] == "returned_for_penalty"
        assert rec["deadline"]["id"] == "penalty_report"       # law: promptly; a reminder
        accepted = svc.act(token(UNIT), rec["id"], "accept_return", {})
        assert accepted["deadline"] == rec["deadline"]         # kept while the agency works
        done = svc.act(token(UNIT), rec["id"], "decide_administratively",
                       {"decision": "penalty", "reason": "罚款三万元", "fine_yuan": "30000"})
        assert done["state"] == "closed"


def test_bad_input_gets_clear_errors(stack):
    with stack.rpc() as rpc:
        svc = rpc.police_handoff
        bad = draft_payload(case_number())
        bad["parties"][0]["id_number"] = INVALID_ID
        with pytest.raises(InvalidInput) as err:
            svc.create(token(UNIT), "draft", bad)
        assert "id_number" in err.value.errors["parties"]["0"] or \
            "id_number" in err.value.errors["parties"][0]
        with pytest.raises(Unauthenticated):
            svc.create("forged.token", "draft", draft_payload(case_number()))
        with pytest.raises(NotAllowed) as err:
            svc.create(token(MARKET), "draft", draft_payload(case_number()))
        assert "role" in err.value.errors
        flow = Flow(rpc)
        with pytest.raises(InvalidTransition) as err:
            flow.do(UNIT, "transfer", TRANSFER)
        assert "request_approval" in err.value.errors["command"][0]
        with pytest.raises(NotAllowed):
            svc.get(token(POLICE), flow.id)   # not transferred: the police may not see it
        assert flow.id not in [r["id"] for r in svc.list(token(POLICE))]
        assert flow.id in [r["id"] for r in svc.list(token(UNIT))]


def test_judgment_standards_over_rpc(stack):
    """The MPS filing standard (large bus: >= 50% or >= 15 people over): 50 seats with 65
    people is serious over-capacity, with 63 it is not (26%: the administrative tier)."""
    bus = {"vehicle_category": "passenger_bus", "service_type": "passenger_transport",
           "rated_seats": 50}
    with stack.rpc() as rpc:
        recs = rpc.police_handoff.evaluate(token(UNIT), {**bus, "passengers": 65})
        assert [r["rule_id"] for r in recs] == ["passenger_overcapacity"]
        assert "133" in recs[0]["legal_basis"]
        assert rpc.police_handoff.evaluate(token(UNIT), {**bus, "passengers": 63}) == []

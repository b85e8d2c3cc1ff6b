"""The police handoff end to end: RPC into the running police_handoff service, its
outbox relay over RabbitMQ, the tracker consuming every event into its own database.
Runs once on SQLite and once on PostgreSQL (the ``stack`` fixture)."""
from __future__ import annotations

import uuid

import pytest

from shared.errors import InvalidInput, InvalidTransition, NotAllowed, Unauthenticated
from tests.conftest import wait_for
from tests.helpers import (
    COORDINATOR,
    HEAD,
    INVALID_ID,
    MARKET,
    POLICE,
    POLICE_2,
    PROCURATORATE,
    TRANSFER,
    UNIT,
    draft_payload,
    token,
)

pytestmark = pytest.mark.e2e


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


def test_full_lawful_path(stack):
    with stack.rpc() as rpc:
        flow = Flow(rpc)
        assert flow.rec["state"] == "draft"
        assert flow.rec["recommendations"][0]["suspected_offence"] == "危险驾驶罪"
        flow.to_receipted()
        assert flow.rec["deadline"]["id"] == "review_decision"
        seen_by_procuratorate = flow.svc.get(token(PROCURATORATE), flow.id)
        assert seen_by_procuratorate["procuratorate_unit"] == PROCURATORATE.unit
        flow.do(POLICE, "file", {"filing_number": "温公立〔2026〕8号"})
        flow.do(UNIT, "hand_over_evidence", {"items": ["客车一辆", "行车记录仪"],
                                             "handover_record_number": "H-1"})
        flow.do(UNIT, "close", {"note": "交接完毕"})
        assert flow.rec["state"] == "closed"

        shown = flow.svc.get(token(UNIT), flow.id)
        assert [s["command"] for s in shown["timeline"]] == [
            "draft", "request_approval", "approve", "transfer", "sign_receipt", "file",
            "hand_over_evidence", "close"]
        assert shown["timeline"][2]["actor"]["role"] == "agency_head"

        tracked = flow.tracked(8)
        assert tracked["state"] == "closed"
        assert [e["type"] for e in tracked["timeline"]] == [
            "criminal_referral.drafted.v1", "criminal_referral.approval_requested.v1",
            "criminal_referral.approved.v1", "criminal_referral.transferred.v1",
            "criminal_referral.receipted.v1", "criminal_referral.filed.v1",
            "criminal_referral.evidence_handed_over.v1", "criminal_referral.closed.v1"]
        assert tracked["timeline"][3]["actor_unit"] == UNIT.unit


def test_refusal_branch(stack):
    with stack.rpc() as rpc:
        flow = Flow(rpc)
        flow.do(UNIT, "request_approval", {"transfer_report": "报告"})
        with pytest.raises(InvalidInput) as err:
            flow.do(HEAD, "refuse", {})
        assert "reason" in err.value.errors
        flow.do(HEAD, "refuse", {"reason": "证据不足"})
        flow.do(UNIT, "decide_administratively", {"decision": "penalty", "fine_yuan": "2000",
                                                  "reason": "依法处罚"})
        assert flow.tracked(4)["state"] == "closed"


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
        assert flow.tracked(8)["counterpart_unit"] == POLICE_2.unit


def test_not_filed_reconsideration_supervision_branch(stack):
    with stack.rpc() as rpc:
        flow = Flow(rpc)
        flow.to_receipted()
        flow.do(POLICE, "not_file", {"reasons": "情节显著轻微", "materials_returned": True})
        flow.do(UNIT, "request_reconsideration", {"reason": "超员26%"})
        flow.do(POLICE, "decide_reconsideration", {"outcome": "uphold", "reason": "维持"})
        flow.do(UNIT, "request_supervision", {"reason": "请求立案监督"})
        flow.do(PROCURATORATE, "decide_supervision", {"outcome": "order_filing",
                                                      "opinion": "应当立案"})
        flow.do(POLICE, "file", {"filing_number": "F-3"})
        tracked = flow.tracked(11)
        assert tracked["state"] == "filed" and tracked["deadline"]["id"] == "handover"


def test_reverse_transfer_branch(stack):
    with stack.rpc() as rpc:
        svc = rpc.police_handoff
        rec = svc.create(token(POLICE), "open_reverse_transfer", {
            "police_case_number": f"温公-{uuid.uuid4().hex[:6]}", "county": "lucheng",
            "target_unit": UNIT.unit, "summary": "非法营运，不构成犯罪", "reason": "应予行政处罚",
            "parties": [{"name": "李四", "id_type": "resident_id",
                         "id_number": "11010519491231002X"}]})
        assert rec["state"] == "returned_for_penalty"
        svc.act(token(UNIT), rec["id"], "accept_return", {})
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
    with stack.rpc() as rpc:
        recs = rpc.police_handoff.evaluate(token(UNIT), {
            "vehicle_category": "passenger_bus", "service_type": "passenger_transport",
            "rated_seats": 40, "passengers": 50})
        assert [r["rule_id"] for r in recs] == ["passenger_overcapacity"]
        assert "133" in recs[0]["legal_basis"]
        assert rpc.police_handoff.evaluate(token(UNIT), {
            "vehicle_category": "passenger_bus", "service_type": "passenger_transport",
            "rated_seats": 40, "passengers": 44}) == []

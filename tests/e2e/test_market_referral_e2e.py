"""The market-regulation referral end to end: RPC into the running market_referral
service, its outbox relay over RabbitMQ, the tracker consuming every event; and a case
that takes both routes (fraud to the police, licensing to market regulation) linked by
its case number. Runs once on SQLite and once on PostgreSQL (the ``stack`` fixture)."""
from __future__ import annotations

import uuid

import pytest

from shared.errors import InvalidInput, InvalidTransition, NotAllowed, Unauthenticated
from tests.conftest import wait_for
from tests.helpers import (
    COORDINATOR,
    INVALID_USCC,
    MARKET,
    OTHER_MARKET,
    OTHER_UNIT,
    POLICE,
    UNIT,
    draft_payload,
    evidence,
    market_payload,
    market_to_transport_payload,
    token,
)

pytestmark = pytest.mark.e2e

ACK = {"receiving_officer": "何科长", "receipt_number": "温市监收-1"}


def case_number() -> str:
    return f"WZ-LC-{uuid.uuid4().hex[:8]}"


def tracked(rpc, handoff_id: str, step: int) -> dict:
    """Wait until the tracker has applied ``step`` events of this handoff."""
    def seen():
        try:
            found = rpc.tracker.handoff(token(COORDINATOR), handoff_id)
        except Exception:  # noqa: BLE001 - not there yet
            return None
        return found if found["step"] >= step else None
    return wait_for(seen, message=f"tracker to reach step {step} of {handoff_id}")


class Referral:
    def __init__(self, rpc, actor=UNIT, command="send", payload=None):
        self.svc = rpc.market_referral
        self.rec = self.svc.create(token(actor), command, payload or market_payload(
            case_number()))
        self.id = self.rec["id"]

    def do(self, actor, command, payload=None):
        self.rec = self.svc.act(token(actor), self.id, command, payload or {})
        return self.rec


def test_full_path_transport_to_market(stack):
    with stack.rpc() as rpc:
        ref = Referral(rpc)
        assert ref.rec["state"] == "sent" and ref.rec["deadline"]["period"] == "1wd"
        assert set(ref.svc.get(token(MARKET), ref.id)["next_actions"]) == {"acknowledge",
                                                                           "link"}
        assert ref.svc.get(token(UNIT), ref.id)["next_actions"] == ["link"]
        ref.do(MARKET, "acknowledge", ACK)
        assert ref.rec["deadline"]["id"] == "decide"
        ref.do(MARKET, "accept", {"acceptance_number": "受理-1"})
        ref.do(MARKET, "start_investigation", {"investigation_number": "立案-1"})
        assert ref.rec["deadline"]["id"] == "result" and ref.rec["deadline"]["period"] == "30d"
        ref.do(MARKET, "report_result", {"outcome": "penalty", "summary": "罚款五万元",
                                         "decision_number": "温市监罚〔2026〕1号",
                                         "fine_yuan": "50000"})
        ref.do(UNIT, "close", {"note": "已收到结果"})

        shown = ref.svc.get(token(MARKET), ref.id)
        assert shown["state"] == "closed" and shown["result"]["fine_yuan"] == "50000"
        assert [s["command"] for s in shown["timeline"]] == [
            "send", "acknowledge", "accept", "start_investigation", "report_result", "close"]
        assert shown["timeline"][1]["actor"]["role"] == "market_regulation"

        seen = tracked(rpc, ref.id, 6)
        assert seen["state"] == "closed" and seen["kind"] == "market_referral"
        assert seen["counterpart_unit"] == MARKET.unit
        assert [e["type"] for e in seen["timeline"]] == [
            "market_referral.sent.v1", "market_referral.received.v1",
            "market_referral.accepted.v1", "market_referral.investigation_started.v1",
            "market_referral.result_reported.v1", "market_referral.closed.v1"]


def test_market_to_transport_returned_amended_resent(stack):
    with stack.rpc() as rpc:
        ref = Referral(rpc, MARKET, "send_to_transport",
                       market_to_transport_payload(case_number()))
        assert ref.rec["direction"] == "market_to_transport"
        with pytest.raises(NotAllowed) as err:          # the sender cannot acknowledge
            ref.do(MARKET, "acknowledge", ACK)
        assert "role" in err.value.errors
        ref.do(UNIT, "acknowledge", ACK)
        with pytest.raises(InvalidInput) as err:
            ref.do(UNIT, "return", {"reason_code": "insufficient_evidence"})
        assert "reason" in err.value.errors
        ref.do(UNIT, "return", {"reason_code": "insufficient_evidence", "reason": "缺照片",
                                "missing_evidence": ["photos_video"]})
        with pytest.raises(InvalidInput) as err:
            ref.do(MARKET, "resend", {"response": "已补充"})
        assert "photos_video" in err.value.errors["documents"][0]
        ref.do(MARKET, "amend", {"documents": evidence("photos_video")})
        ref.do(MARKET, "resend", {"response": "已补充现场照片"})
        assert ref.rec["state"] == "sent"
        ref.do(UNIT, "acknowledge", ACK)
        ref.do(UNIT, "accept")
        seen = tracked(rpc, ref.id, 7)
        assert seen["state"] == "accepted" and seen["deadline"]["id"] == "result"
        assert [e["type"] for e in seen["timeline"]][2:5] == [
            "market_referral.returned.v1", "market_referral.amended.v1",
            "market_referral.resent.v1"]


def test_case_on_both_routes_is_linked_by_case_number(stack):
    """Fraud by a driving-training intermediary goes to the police, its unlicensed
    business to market regulation: two referrals, one case number, linked."""
    number = case_number()
    with stack.rpc() as rpc:
        criminal = rpc.police_handoff.create(token(UNIT), "draft", draft_payload(
            number, summary="驾培中介以包过为名骗取学员费用，涉嫌诈骗", facts={}))
        rpc.police_handoff.act(token(UNIT), criminal["id"], "request_approval",
                               {"transfer_report": "专案组核实报告"})
        link = {"kind": "criminal_referral", "id": criminal["id"]}
        ref = Referral(rpc, UNIT, "send", market_payload(
            number, referral_kind="driving_training_unlicensed_business", linked=[link],
            documents=evidence("referral_letter", "case_description",
                               "business_registration_query", "inspection_record")))
        ref.do(MARKET, "acknowledge", ACK)

        market_view = rpc.market_referral.get(token(UNIT), ref.id)
        police_view = rpc.police_handoff.get(token(UNIT), market_view["linked"][0]["id"])
        assert market_view["linked"] == [link]
        assert market_view["case_number"] == police_view["case_number"] == number
        assert (market_view["state"], police_view["state"]) == ("received",
                                                                 "approval_requested")
        assert police_view["deadline"]["id"] == "head_decision"
        assert market_view["deadline"]["id"] == "decide"

        # the bus carries the same case number for both, so a reader can join them
        both = [tracked(rpc, criminal["id"], 2), tracked(rpc, ref.id, 2)]
        assert [t["case_number"] for t in both] == [number, number]
        assert [t["kind"] for t in both] == ["criminal_referral", "market_referral"]
        assert both[1]["timeline"][0]["data"]["details"]["linked"] == [link]


def test_bad_input_and_scope(stack):
    with stack.rpc() as rpc:
        svc = rpc.market_referral
        bad = market_payload(case_number())
        bad["parties"][0]["id_number"] = INVALID_USCC
        with pytest.raises(InvalidInput) as err:
            svc.create(token(UNIT), "send", bad)
        party_errors = err.value.errors["parties"]
        party_errors = party_errors.get("0", party_errors.get(0))
        assert "统一社会信用代码" in str(party_errors["id_number"])
        with pytest.raises(InvalidInput) as err:
            svc.create(token(UNIT), "send", market_payload(
                case_number(), documents=evidence("referral_letter")))
        assert "fee_receipts" in err.value.errors["documents"][0]
        with pytest.raises(NotAllowed) as err:
            svc.create(token(MARKET), "send", market_payload(case_number()))
        assert "role" in err.value.errors
        with pytest.raises(Unauthenticated):
            svc.create("forged.token", "send", market_payload(case_number()))

        ref = Referral(rpc)
        with pytest.raises(InvalidTransition):
            ref.do(MARKET, "accept")
        with pytest.raises(NotAllowed):
            ref.do(OTHER_MARKET, "acknowledge", ACK)
        for outsider in (OTHER_MARKET, OTHER_UNIT, POLICE):
            with pytest.raises(NotAllowed):
                svc.get(token(outsider), ref.id)
            assert ref.id not in [r["id"] for r in svc.list(token(outsider))]
        for party in (UNIT, MARKET, COORDINATOR):
            assert ref.id in [r["id"] for r in svc.list(token(party))]

        described = svc.procedure()
        assert described["sides"]["acknowledge"] == "receiver"
        assert described["deadlines"]["decide"]["period"] == "5wd"
        assert "driving_training_price_fraud" in described["referral_kinds"]

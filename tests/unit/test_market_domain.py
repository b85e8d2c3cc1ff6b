"""The market-regulation referral procedure in plain Python: both directions, every
path of LEGAL.md §3 (incl. return -> amend -> resend), deadlines in working days on the
official calendar, sides, roles and ownership, party identifiers and evidence."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.market_referral import domain
from shared import calendar
from shared.auth import ROLES
from shared.errors import InvalidInput, InvalidTransition, NotAllowed
from shared.events import event_schemas, validate_payload
from shared.procedure import Procedure
from shared.schemas.market_referral import COMMAND_SCHEMAS
from tests.helpers import (
    CITY_COMMAND,
    COORDINATOR,
    COUNTY_COMMAND,
    HEAD,
    INVALID_ID,
    INVALID_USCC,
    MARKET,
    OTHER_COUNTY_COMMAND,
    OTHER_MARKET,
    OTHER_UNIT,
    POLICE,
    PROCURATORATE,
    UNIT,
    evidence,
    market_payload,
    market_to_transport_payload,
)

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 Beijing
ACK = {"receiving_officer": "何科长", "receipt_number": "温市监收〔2026〕1号"}
RETURN = {"reason_code": "insufficient_evidence", "reason": "缺少询问笔录，无法认定收费主体",
          "missing_evidence": ["inquiry_record"]}
PENALTY = {"outcome": "penalty", "summary": "责令改正，罚款五万元",
           "decision_number": "温市监处罚〔2026〕12号", "fine_yuan": "50000"}


def local(y, m, d, h=10) -> datetime:
    """h o'clock Beijing time on the given day, as UTC."""
    return datetime(y, m, d, h, tzinfo=calendar.TZ).astimezone(timezone.utc)


def end_of(y, m, d) -> str:
    """The UTC ISO form of 23:59:59 Beijing time on that day (how deadlines end)."""
    return datetime(y, m, d, 23, 59, 59, tzinfo=calendar.TZ).astimezone(
        timezone.utc).isoformat()


class Referral:
    """Drives one referral through the domain, checking every event payload."""

    def __init__(self, actor=UNIT, command="send", payload=None, now=T0):
        self.now = now
        payload = payload or (market_payload() if command == "send"
                              else market_to_transport_payload())
        self.rec, step = domain.create(command, actor, payload, now)
        self.steps = [step]
        self.check(step)

    def check(self, step):
        data = domain.event_payload(self.rec, step)
        validate_payload(step["event"], data)     # the event passes its own schema
        return data

    def do(self, actor, command, payload=None, after=timedelta(hours=1)):
        self.now += after
        self.rec, step = domain.act(self.rec, command, actor, payload or {}, self.now)
        self.check(step)
        self.steps.append(step)
        return self.rec

    def to_investigating(self, receiver=MARKET):
        self.do(receiver, "acknowledge", ACK)
        self.do(receiver, "accept", {"acceptance_number": "受理-1"})
        return self.do(receiver, "start_investigation", {"investigation_number": "立案-1"})


# ------------------------------------------------------------------ transport -> market

def test_full_path_transport_to_market_with_deadlines():
    ref = Referral()
    rec = ref.rec
    assert rec["state"] == "sent" and rec["direction"] == "transport_to_market"
    assert (rec["sender_unit"], rec["receiver_unit"]) == (UNIT.unit, MARKET.unit)
    assert (rec["owner_unit"], rec["counterpart_unit"]) == (UNIT.unit, MARKET.unit)
    assert ref.steps[0]["event"] == "market_referral.sent.v1"
    assert ref.steps[0]["details"]["direction"] == "transport_to_market"
    # Monday 10:00 + 1 working day -> Tuesday 23:59:59 Beijing
    assert rec["deadline"]["id"] == "acknowledge" and rec["deadline"]["period"] == "1wd"
    assert rec["deadline"]["due"] == end_of(2026, 3, 3)

    rec = ref.do(MARKET, "acknowledge", ACK)              # Monday 11:00
    assert rec["state"] == "received" and rec["receipt"]["receiving_officer"] == "何科长"
    assert ref.steps[-1]["satisfied"] == [
        {"id": "acknowledge", "due": end_of(2026, 3, 3), "on_time": True}]
    assert rec["deadline"]["id"] == "decide" and rec["deadline"]["due"] == end_of(2026, 3, 9)

    rec = ref.do(MARKET, "accept", {"acceptance_number": "受理-1"}, after=timedelta(days=1))
    assert rec["state"] == "accepted" and ref.steps[-1]["satisfied"][0]["on_time"]
    # accepted Tuesday 3 March: 30 days -> Thursday 2 April
    assert rec["deadline"]["id"] == "result" and rec["deadline"]["due"] == end_of(2026, 4, 2)

    rec = ref.do(MARKET, "start_investigation", {"investigators": ["何", "许"]},
                 after=timedelta(days=3))
    assert rec["state"] == "investigating"
    assert rec["deadline"]["id"] == "result", "the 30 days run from acceptance"
    assert rec["deadline"]["due"] == end_of(2026, 4, 2)

    rec = ref.do(MARKET, "report_result", PENALTY, after=timedelta(days=10))
    assert rec["state"] == "result_reported" and rec["result"]["fine_yuan"] == "50000"
    assert ref.steps[-1]["satisfied"] == [
        {"id": "result", "due": end_of(2026, 4, 2), "on_time": True}]
    assert rec["deadline"] is None

    rec = ref.do(UNIT, "close", {"note": "已收到处罚结果"})
    assert rec["state"] == "closed"
    assert [s["command"] for s in ref.steps] == [
        "send", "acknowledge", "accept", "start_investigation", "report_result", "close"]
    assert [s["step"] for s in ref.steps] == list(range(1, 7))


def test_county_command_centre_may_send():
    ref = Referral(actor=COUNTY_COMMAND)
    assert ref.rec["sender_unit"] == ref.rec["owner_unit"] == COUNTY_COMMAND.unit
    ref.do(MARKET, "acknowledge", ACK)
    with pytest.raises(NotAllowed):
        ref.do(UNIT, "link", {"linked": [{"kind": "criminal_referral",
                                          "id": str(uuid.uuid4())}]})


@pytest.mark.parametrize("outcome,extra,field", [
    ("no_violation", {}, None),
    ("transferred_on", {"transferred_to": "温州市公安局"}, None),
    ("transferred_on", {}, "transferred_to"),
    ("penalty", {}, "decision_number"),
    (None, {}, "outcome"),
])
def test_result_outcomes(outcome, extra, field):
    ref = Referral()
    ref.to_investigating()
    payload = {"summary": "调查结论", **extra, **({"outcome": outcome} if outcome else {})}
    if field:
        with pytest.raises(InvalidInput) as err:
            ref.do(MARKET, "report_result", payload)
        assert field in err.value.errors
        assert ref.rec["state"] == "investigating"
    else:
        rec = ref.do(MARKET, "report_result", payload)
        assert rec["state"] == "result_reported" and rec["result"]["outcome"] == outcome


def test_return_amend_resend_then_accept():
    ref = Referral()
    ref.do(MARKET, "acknowledge", ACK)
    with pytest.raises(InvalidInput) as err:
        ref.do(MARKET, "return", {"reason_code": "insufficient_evidence"})
    assert "reason" in err.value.errors
    with pytest.raises(InvalidInput) as err:
        ref.do(MARKET, "return", {**RETURN, "missing_evidence": ["a_selfie"]})
    assert "missing_evidence" in err.value.errors
    rec = ref.do(MARKET, "return", RETURN)
    assert rec["state"] == "returned" and rec["deadline"] is None
    assert rec["returns"][0]["reason"] == RETURN["reason"]
    assert ref.steps[-1]["satisfied"][0]["id"] == "decide"
    assert ref.steps[-1]["event"] == "market_referral.returned.v1"

    with pytest.raises(NotAllowed) as err:           # the receiver cannot amend or resend
        ref.do(MARKET, "amend", {"documents": evidence("inquiry_record")})
    assert "role" in err.value.errors
    with pytest.raises(InvalidInput) as err:
        ref.do(UNIT, "amend", {"note": "无内容"})
    assert "documents" in err.value.errors
    with pytest.raises(InvalidInput) as err:          # the return named what is missing
        ref.do(UNIT, "resend", {"response": "已补充"})
    assert "inquiry_record" in err.value.errors["documents"][0]

    rec = ref.do(UNIT, "amend", {"documents": evidence("inquiry_record"),
                                 "findings": "补充询问笔录两份"})
    assert rec["state"] == "returned" and rec["findings"] == "补充询问笔录两份"
    rec = ref.do(UNIT, "resend", {"response": "已补充询问笔录"}, after=timedelta(days=1))
    assert rec["state"] == "sent" and rec["deadline"]["id"] == "acknowledge"
    assert ref.steps[-1]["event"] == "market_referral.resent.v1"
    ref.do(MARKET, "acknowledge", ACK)
    assert ref.do(MARKET, "accept")["state"] == "accepted"
    assert [s["command"] for s in ref.steps] == [
        "send", "acknowledge", "return", "amend", "resend", "acknowledge", "accept"]


def test_sender_may_close_a_returned_referral():
    ref = Referral()
    ref.do(MARKET, "acknowledge", ACK)
    ref.do(MARKET, "return", {"reason_code": "not_competent", "reason": "不属本局管辖"})
    with pytest.raises(NotAllowed):
        ref.do(MARKET, "close")
    assert ref.do(UNIT, "close", {"note": "改由其他途径处理"})["state"] == "closed"


# ------------------------------------------------------------------ market -> transport

def test_reverse_direction_market_to_transport():
    ref = Referral(actor=MARKET, command="send_to_transport")
    rec = ref.rec
    assert rec["direction"] == "market_to_transport" and rec["state"] == "sent"
    assert (rec["sender_unit"], rec["receiver_unit"]) == (MARKET.unit, UNIT.unit)
    assert (rec["owner_unit"], rec["counterpart_unit"]) == (UNIT.unit, MARKET.unit)
    assert ref.steps[0]["event"] == "market_referral.sent_to_transport.v1"
    assert rec["deadline"]["id"] == "acknowledge"

    with pytest.raises(NotAllowed) as err:            # the sender cannot acknowledge
        ref.do(MARKET, "acknowledge", ACK)
    assert "role" in err.value.errors
    with pytest.raises(NotAllowed) as err:            # nor another transport unit
        ref.do(OTHER_UNIT, "acknowledge", ACK)
    assert "unit" in err.value.errors
    ref.do(UNIT, "acknowledge", ACK)
    ref.do(UNIT, "return", {**RETURN, "missing_evidence": ["photos_video"]})
    with pytest.raises(NotAllowed):
        ref.do(UNIT, "resend", {"response": "x"})
    ref.do(MARKET, "amend", {"documents": evidence("photos_video")})
    ref.do(MARKET, "resend", {"response": "已补充照片"})
    ref.to_investigating(receiver=UNIT)
    ref.do(UNIT, "report_result", {"outcome": "penalty", "summary": "责令备案并处罚款",
                                   "decision_number": "温交执罚〔2026〕3号"})
    with pytest.raises(NotAllowed):
        ref.do(UNIT, "close")
    assert ref.do(MARKET, "close")["state"] == "closed"


def test_transport_county_command_may_receive():
    payload = market_to_transport_payload(target_unit=COUNTY_COMMAND.unit)
    ref = Referral(actor=MARKET, command="send_to_transport", payload=payload)
    assert ref.rec["owner_unit"] == COUNTY_COMMAND.unit
    with pytest.raises(NotAllowed):
        ref.do(UNIT, "acknowledge", ACK)
    assert ref.do(COUNTY_COMMAND, "acknowledge", ACK)["state"] == "received"


@pytest.mark.parametrize("actor,command,payload,error,field", [
    (MARKET, "send", market_payload(), NotAllowed, "role"),
    (UNIT, "send_to_transport", market_to_transport_payload(), NotAllowed, "role"),
    (POLICE, "send", market_payload(), NotAllowed, "role"),
    (HEAD, "send", market_payload(), NotAllowed, "role"),
    (UNIT, "acknowledge", ACK, InvalidInput, "command"),
    (UNIT, "send", market_payload(direction="market_to_transport"), InvalidInput, "direction"),
    (UNIT, "send", market_payload(direction="sideways"), InvalidInput, "direction"),
    (MARKET, "send_to_transport",
     market_to_transport_payload(referral_kind="driving_training_price_fraud"),
     InvalidInput, "referral_kind"),
    (UNIT, "send", market_payload(referral_kind="parking"), InvalidInput, "referral_kind"),
    (UNIT, "send", market_payload(county="shanghai"), InvalidInput, "county"),
    (UNIT, "send", market_payload(parties=[]), InvalidInput, "parties"),
    (UNIT, "send", market_payload(linked=[{"kind": "criminal_referral", "id": "42"}]),
     InvalidInput, "linked"),
    (UNIT, "send", "not an object", InvalidInput, "payload"),
])
def test_bad_sends_name_the_rule_or_field(actor, command, payload, error, field):
    with pytest.raises(error) as err:
        domain.create(command, actor, payload, T0)
    assert field in err.value.errors


def test_wrong_direction_names_the_right_command_and_kinds():
    with pytest.raises(InvalidInput) as err:
        domain.create("send", UNIT, market_payload(direction="market_to_transport"), T0)
    assert "send_to_transport" in err.value.errors["direction"][0]
    with pytest.raises(InvalidInput) as err:
        domain.create("send_to_transport", MARKET, market_to_transport_payload(
            referral_kind="driving_training_false_advertising"), T0)
    message = err.value.errors["referral_kind"][0]
    assert "transport_to_market" in message and "vehicle_repair_unfiled" in message


# ------------------------------------------------------------------ steps, roles, units

@pytest.mark.parametrize("actor,command,payload,error,field", [
    (UNIT, "acknowledge", ACK, NotAllowed, "role"),           # the sender, not the receiver
    (OTHER_MARKET, "acknowledge", ACK, NotAllowed, "unit"),   # not addressed to this unit
    (POLICE, "acknowledge", ACK, NotAllowed, "role"),
    (MARKET, "accept", {}, InvalidTransition, "command"),     # acknowledge first
    (MARKET, "return", RETURN, InvalidTransition, "command"),
    (UNIT, "close", {}, InvalidTransition, "command"),
    (MARKET, "fly", {}, InvalidInput, "command"),
    (MARKET, "acknowledge", {}, InvalidInput, "receiving_officer"),
])
def test_bad_steps_name_the_rule_or_field(actor, command, payload, error, field):
    ref = Referral()
    with pytest.raises(error) as err:
        ref.do(actor, command, payload)
    assert field in err.value.errors
    assert ref.rec["state"] == "sent" and ref.rec["step"] == 1


def test_role_and_unit_errors_say_who_may_act():
    ref = Referral()
    with pytest.raises(NotAllowed) as err:
        ref.do(UNIT, "acknowledge", ACK)
    assert "receiver" in err.value.errors["role"][0]
    assert "market_regulation" in err.value.errors["role"][0]
    with pytest.raises(NotAllowed) as err:
        ref.do(OTHER_MARKET, "acknowledge", ACK)
    assert MARKET.unit in err.value.errors["unit"][0]


def test_investigation_steps_are_in_order():
    ref = Referral()
    ref.do(MARKET, "acknowledge", ACK)
    ref.do(MARKET, "accept")
    with pytest.raises(InvalidTransition) as err:
        ref.do(MARKET, "report_result", PENALTY)
    assert "start_investigation" in err.value.errors["command"][0]


# ------------------------------------------------------------------ deadlines

def test_late_acknowledgement_is_recorded_as_late():
    ref = Referral()
    ref.do(MARKET, "acknowledge", ACK, after=timedelta(days=2))
    assert ref.steps[-1]["satisfied"][0] == {"id": "acknowledge", "due": end_of(2026, 3, 3),
                                             "on_time": False}


def test_calendar_of_autumn_2026_as_chinese_calendar_has_it():
    """The facts the deadline tests below rely on (chinese_calendar 1.11.0): Mid-Autumn
    25-27 Sept and National Day 1-7 Oct are rest days; Sunday 20 Sept and Saturday
    10 Oct are adjusted working days (调休上班)."""
    from datetime import date
    assert calendar.is_working_day(date(2026, 9, 20))          # Sunday, worked
    assert calendar.is_working_day(date(2026, 10, 10))         # Saturday, worked
    assert not any(calendar.is_working_day(date(2026, 9, d)) for d in (25, 26, 27))
    assert not any(calendar.is_working_day(date(2026, 10, d)) for d in range(1, 8))


def test_national_day_moves_acknowledge_and_decide():
    ref = Referral(now=local(2026, 9, 30))                     # Wednesday before the holiday
    # 1 working day after 30 Sept: 1-7 Oct are holidays -> Thursday 8 Oct
    assert ref.rec["deadline"]["due"] == end_of(2026, 10, 8)
    rec = ref.do(MARKET, "acknowledge", ACK, after=timedelta(hours=2))
    # 5 working days from 30 Sept: 8, 9, 10 (adjusted Saturday), 12, 13 Oct
    assert rec["deadline"]["id"] == "decide" and rec["deadline"]["due"] == end_of(2026, 10, 13)


def test_adjusted_working_sunday_and_mid_autumn():
    ref = Referral(now=local(2026, 9, 18))                     # Friday
    assert ref.rec["deadline"]["due"] == end_of(2026, 9, 20)   # Sunday 20th is worked
    ref = Referral(now=local(2026, 9, 24))                     # Thursday before Mid-Autumn
    assert ref.rec["deadline"]["due"] == end_of(2026, 9, 28)   # 25-27 off -> Monday 28th


def test_result_period_ending_in_national_day_moves_to_the_next_working_day():
    ref = Referral(now=local(2026, 9, 4))
    ref.do(MARKET, "acknowledge", ACK)
    rec = ref.do(MARKET, "accept", after=timedelta(days=3))    # Monday 7 Sept
    # 30 days -> Wednesday 7 Oct, a holiday -> Thursday 8 Oct
    assert rec["deadline"]["due"] == end_of(2026, 10, 8)
    rec = ref.do(MARKET, "start_investigation", after=timedelta(days=20))
    assert rec["deadline"]["due"] == end_of(2026, 10, 8)
    ref.do(MARKET, "report_result", {"outcome": "no_violation", "summary": "未发现违法"},
           after=timedelta(days=12))                          # 9 Oct: one day late
    assert ref.steps[-1]["satisfied"] == [
        {"id": "result", "due": end_of(2026, 10, 8), "on_time": False}]


# ------------------------------------------------------------------ parties and evidence

def test_invalid_credit_code_is_a_field_error():
    bad = market_payload()
    bad["parties"][0]["id_number"] = INVALID_USCC
    with pytest.raises(InvalidInput) as err:
        domain.create("send", UNIT, bad, T0)
    assert "统一社会信用代码" in str(err.value.errors["parties"][0]["id_number"])
    bad = market_payload()
    bad["parties"][1]["id_number"] = INVALID_ID
    with pytest.raises(InvalidInput) as err:
        domain.create("send", UNIT, bad, T0)
    assert "居民身份证号码" in str(err.value.errors["parties"][1]["id_number"])


def test_party_must_be_identified_by_credit_code_or_id_number():
    bad = market_payload()
    bad["parties"][1].update(id_type="passport", id_number="E12345678")
    with pytest.raises(InvalidInput) as err:
        domain.create("send", UNIT, bad, T0)
    assert "id_type" in err.value.errors["parties"][1]
    bad["parties"][1].pop("id_number")
    bad["parties"][1]["id_type"] = "uscc"
    with pytest.raises(InvalidInput) as err:
        domain.create("send", UNIT, bad, T0)
    assert "id_number" in err.value.errors["parties"][1]


def test_missing_evidence_names_what_is_missing():
    with pytest.raises(InvalidInput) as err:
        domain.create("send", UNIT, market_payload(
            documents=evidence("referral_letter", "price_list")), T0)
    message = err.value.errors["documents"][0]
    assert "case_description" in message and "fee_receipts" in message
    assert "情况说明" in message and "price_list" not in message
    with pytest.raises(InvalidInput) as err:
        domain.create("send", UNIT, market_payload(documents=[]), T0)
    assert "referral_letter" in err.value.errors["documents"][0]


def test_unknown_evidence_kind_is_a_field_error():
    with pytest.raises(InvalidInput) as err:
        domain.create("send", UNIT, market_payload(
            documents=market_payload()["documents"] + evidence("gossip")), T0)
    assert 4 in err.value.errors["documents"]


@pytest.mark.parametrize("kind", list(domain.referral_kinds()))
def test_every_kind_is_sendable_with_exactly_its_required_evidence(kind):
    rule = domain.referral_kinds()[kind]
    for direction in rule["directions"]:
        command = domain.directions()[direction]["creation"]
        actor, build = (UNIT, market_payload) if direction == "transport_to_market" \
            else (MARKET, market_to_transport_payload)
        payload = build(referral_kind=kind, documents=evidence(*rule["required_evidence"]))
        rec, _ = domain.create(command, actor, payload, T0)
        assert rec["referral_kind"] == kind and rec["direction"] == direction
        with pytest.raises(InvalidInput):
            domain.create(command, actor, {**payload, "documents": payload["documents"][1:]},
                          T0)


# ------------------------------------------------------------------ linking

def test_link_to_the_criminal_referral_of_the_same_case():
    police_id = str(uuid.uuid4())
    link = {"kind": "criminal_referral", "id": police_id}
    ref = Referral(payload=market_payload(linked=[link]))
    assert ref.rec["linked"] == [link]
    assert ref.check(ref.steps[0])["case_number"] == ref.rec["case_number"]
    ref.do(MARKET, "acknowledge", ACK)
    other = {"kind": "market_referral", "id": str(uuid.uuid4())}
    rec = ref.do(MARKET, "link", {"linked": [link, other]})       # either party may link
    assert rec["linked"] == [link, other] and rec["state"] == "received"
    with pytest.raises(InvalidInput) as err:
        ref.do(UNIT, "link", {"linked": [{"kind": "market_referral", "id": rec["id"]}]})
    assert "linked" in err.value.errors
    with pytest.raises(InvalidInput) as err:
        ref.do(UNIT, "link", {"linked": [{"kind": "joint_action", "id": police_id}]})
    assert "kind" in err.value.errors["linked"][0]
    with pytest.raises(NotAllowed):
        ref.do(OTHER_MARKET, "link", {"linked": [other]})


# ------------------------------------------------------------------ scope

def test_visibility_by_agency_and_unit():
    rec = Referral().rec
    for actor in (UNIT, MARKET, COORDINATOR, CITY_COMMAND, COUNTY_COMMAND):
        assert domain.can_view(actor, rec), actor
    for actor in (OTHER_UNIT, OTHER_MARKET, OTHER_COUNTY_COMMAND, POLICE, PROCURATORATE):
        assert not domain.can_view(actor, rec), actor
    reverse = Referral(actor=MARKET, command="send_to_transport").rec
    assert domain.can_view(MARKET, reverse) and domain.can_view(UNIT, reverse)
    assert not domain.can_view(OTHER_MARKET, reverse)
    assert not domain.can_view(OTHER_UNIT, reverse)


def test_next_actions_follow_the_side():
    rec = Referral().rec
    assert domain.may_act(MARKET, rec, "acknowledge") and domain.may_act(MARKET, rec, "link")
    assert domain.may_act(UNIT, rec, "link") and not domain.may_act(UNIT, rec, "acknowledge")
    assert not domain.may_act(OTHER_MARKET, rec, "acknowledge")


# ------------------------------------------------------------------ the standard

def test_standard_is_consistent():
    proc = Procedure.load("market_referral")
    doc = proc.doc
    reachable = {doc["initial_state"]}
    for t in proc.transitions.values():
        reachable |= {t.to} if t.to and t.to != "same" else set(t.outcomes.values())
    assert reachable == set(proc.states)
    assert [s for s in proc.states if proc.is_final(s)] == ["closed"]
    for state in proc.states:
        assert proc.is_final(state) or proc.allowed(state), state
    assert set(COMMAND_SCHEMAS) == set(proc.commands)
    assert all(t.event in event_schemas() for t in proc.commands.values())
    for raw in doc["transitions"]:                      # every step says whose it is
        assert raw["side"] in ("sender", "receiver", "either"), raw["command"]
        assert all(c in doc["deadlines"] for c in raw.get("keeps", []))
    for name, direction in doc["directions"].items():
        creation = proc.creations[direction["creation"]]
        assert domain.step_rule(creation.command)["direction"] == name
        assert set(creation.roles) == set(direction["sender_roles"])
        for role in direction["sender_roles"] + direction["receiver_roles"]:
            assert role in ROLES
            assert all(role in t.roles for t in proc.transitions.values())
    evidence_ids = set(domain.evidence_kinds())
    for kind, rule in doc["referral_kinds"].items():
        assert set(rule["required_evidence"]) <= evidence_ids, kind
        assert {"referral_letter", "case_description"} <= set(rule["required_evidence"])
        assert set(rule["directions"]) <= set(doc["directions"]) and rule["legal_basis"]
    # LEGAL.md §3 defaults
    assert {k: v["period"] for k, v in doc["deadlines"].items()} == {
        "acknowledge": "1wd", "decide": "5wd", "result": "30d"}


def test_describe_carries_sides_kinds_and_evidence():
    described = domain.describe()
    assert described["sides"]["accept"] == "receiver"
    assert described["sides"]["resend"] == "sender"
    assert "driving_training_unlicensed_business" in described["referral_kinds"]
    assert {e["id"] for e in described["evidence"]} >= {"referral_letter", "fee_receipts"}

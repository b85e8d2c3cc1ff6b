"""The command centres in plain Python (LEGAL.md §4): joint actions dispatched, acknowledged,
reported and closed; missed deadlines escalated exactly once; assistance between
neighbouring and non-neighbouring counties; the centre assessment; role and scope errors.
Every step's event payload is checked against its registered schema."""
from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from services.command import assessment, assistance, domain, joint_action
from services.command import reference as ref
from services.command import store as command_store
from shared.auth import SYSTEM, Actor
from shared.errors import InvalidInput, InvalidTransition, NotAllowed
from shared.events import event_schemas, validate_payload
from shared.handoffs import HandoffStore
from shared.procedure import Procedure
from shared.schemas.common import COUNTIES
from shared.standards import StandardError
from tests.helpers import (
    CITY,
    CITY_AMR,
    COORDINATOR,
    LUCHENG,
    LUCHENG_PSB,
    OUHAI,
    POLICE_2,
    PROCURATORATE,
    RESULT,
    RUIAN,
    TAISHUN,
    UNIT,
    dispatch_payload,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 Beijing
RECIPIENTS = ("lucheng-command", "ouhai-command", "wenzhou-amr")


class Action:
    """Drives one record through the command domain, checking every event payload."""

    def __init__(self, actor=CITY, payload=None, now=T0, command="dispatch"):
        self.now = now
        self.rec, step = domain.create(command, actor, payload or dispatch_payload(now), now)
        self.steps = [self._checked(step)]

    def _checked(self, step):
        payload = domain.event_payload(self.rec, step)
        validate_payload(step["event"], payload)
        assert payload["step"] == self.rec["step"] and payload["case_number"]
        return step

    def do(self, actor, command, payload=None, after=timedelta(minutes=1)):
        self.now += after
        self.rec, step = domain.act(self.rec, command, actor, payload or {}, self.now)
        self.steps.append(self._checked(step))
        return self.rec

    def at(self, when):
        self.now = when
        return self

    def escalate_all(self, now):
        """What the sweep does for this record at ``now``."""
        self.now = now
        for unit, miss, _due in joint_action.due_escalations(self.rec, now):
            self.rec, step = joint_action.escalate(self.rec, unit, miss, now)
            self.steps.append(self._checked(step))

    def events(self, name):
        return [s for s in self.steps if s["command"] == name]


def due(rec, deadline_id):
    return datetime.fromisoformat(rec["clocks"][deadline_id]["due"])


# ------------------------------------------------------------------ reference data

def test_reference_data_covers_the_city_and_its_twelve_centres():
    reference = ref.reference()
    assert reference.city.id == "wenzhou-command"
    assert set(reference.county_centres) == set(COUNTIES)
    assert {u.agency for u in reference.units.values() if u.type == "agency"} == {
        "police", "market_regulation", "port_shipping", "enforcement"}
    assert set(reference.domains) == {"key_vehicles", "overloading", "illegal_operation",
                                      "ride_hailing", "driving_training"}
    assert reference.are_neighbours("lucheng", "ouhai")
    assert not reference.are_neighbours("lucheng", "taishun")


def test_neighbours_are_symmetric_and_every_county_has_one():
    reference = ref.reference()
    for county, others in reference.neighbours.items():
        assert others, f"{county} has no neighbour"
        for other in others:
            assert county in reference.neighbours[other], f"{county} -> {other} not mutual"


def test_reference_rejects_asymmetric_neighbours_and_duplicate_units():
    doc = ref.centres_document()
    doc["county_centres"]["dongtou"]["neighbours"] = []
    with pytest.raises(StandardError, match="longwan lists dongtou"):
        ref.Reference(doc)
    doc = ref.centres_document()
    doc["agencies"]["police"]["units"].append({"id": "lucheng-command", "name": "x"})
    with pytest.raises(StandardError, match="used twice"):
        ref.Reference(doc)


def test_legal_defaults_are_data_and_can_be_overridden_for_drills(monkeypatch):
    assert ref.period("joint_action", "acknowledgement") == "30m"
    assert ref.period("joint_action", "acknowledgement", "urgent") == "10m"
    assert ref.period("joint_action", "result_report") == "24h"
    assert ref.period("assistance_request", "acknowledgement") == "2h"
    assert ref.period("assistance_request", "answer") == "3wd"
    assert ref.parse_overrides('{"joint_action.acknowledgement": "1m"}') == {
        "joint_action.acknowledgement": "1m"}
    with pytest.raises(ValueError, match="unknown period 'joint_action.nap'"):
        ref.parse_overrides('{"joint_action.nap": "1m"}')
    with pytest.raises(ValueError, match="invalid period"):
        ref.parse_overrides('{"joint_action.acknowledgement": "soon"}')
    with pytest.raises(ValueError, match="not JSON"):
        ref.parse_overrides("{")
    monkeypatch.setenv(ref.PERIODS_ENV, '{"joint_action.acknowledgement.urgent": "2m"}')
    ref.clear_caches()
    try:
        action = Action(payload=dispatch_payload(T0, priority="urgent"))
        assert due(action.rec, "acknowledgement") == T0 + timedelta(minutes=2)
    finally:
        monkeypatch.delenv(ref.PERIODS_ENV)
        ref.clear_caches()


@pytest.mark.parametrize("kind", ["joint_action", "assistance_request"])
def test_standards_are_consistent(kind):
    proc = Procedure.load(kind)
    reachable = set()
    for t in proc.commands.values():
        reachable |= {t.to} if t.to and t.to != "same" else set(t.outcomes.values())
    assert reachable == set(proc.states)
    assert all(t.event in event_schemas() for t in proc.commands.values())
    for state in proc.states:
        assert proc.is_final(state) or proc.allowed(state), state


# ------------------------------------------------------------------ dispatch

def test_dispatch_sets_deadlines_for_every_recipient():
    action = Action()
    rec = action.rec
    assert rec["state"] == "dispatched" and rec["kind"] == "joint_action"
    assert rec["case_number"].startswith("LD-2026-")
    assert rec["owner_unit"] == "wenzhou-command" and rec["county"] is None
    assert set(rec["recipients"]) == set(RECIPIENTS)
    assert due(rec, "acknowledgement") == T0 + timedelta(minutes=30)
    window_end = T0 + timedelta(hours=5)
    assert due(rec, "result_report") == window_end + timedelta(hours=24)
    assert rec["deadline"]["id"] == "acknowledgement"
    for r in rec["recipients"].values():
        assert r["status"] == "dispatched"
        assert r["ack_due"] == (T0 + timedelta(minutes=30)).isoformat()
    details = action.steps[0]["details"]
    assert details["dispatcher"] == "wenzhou-command"
    assert details["report_due"] == (window_end + timedelta(hours=24)).isoformat()
    payload = domain.event_payload(rec, action.steps[0])
    assert payload["handoff_id"] == rec["id"] and payload["kind"] == "joint_action"
    assert payload["owner_unit"] == "wenzhou-command" and payload["counterpart_unit"] is None


def test_urgent_action_is_acknowledged_within_ten_minutes():
    action = Action(payload=dispatch_payload(T0, priority="urgent"))
    assert due(action.rec, "acknowledgement") == T0 + timedelta(minutes=10)
    assert action.rec["deadline"]["period"] == "10m"


def test_county_centre_dispatches_inside_its_own_area_to_its_agencies():
    action = Action(LUCHENG, dispatch_payload(
        T0, area=["lucheng"], recipients=["lucheng-psb", "lucheng-amr"]))
    assert action.rec["county"] == "lucheng" and action.rec["owner_unit"] == "lucheng-command"
    assert domain.can_view(LUCHENG_PSB, action.rec)
    assert not domain.can_view(OUHAI, action.rec)


def test_county_centre_dispatches_to_its_own_enforcement_teams():
    """"County centre -> its own teams" (issue 14): the teams are read from units.yaml,
    take orders from their own county's centre only (``dispatched_by``), acknowledge and
    report for themselves."""
    reference = ref.reference()
    teams = {u.id for u in reference.units.values() if u.agency == "enforcement"}
    assert {"lucheng-team-1", "lucheng-team-2", "ouhai-team-1"} <= teams
    team = reference.unit("lucheng-team-1")
    assert (team.role, team.county, team.dispatched_by) == (
        "enforcement_unit", "lucheng", ("county_centre",))
    assert team.name == "鹿城区交通运输行政执法队一中队"
    lucheng = reference.centre_of("lucheng")
    assert reference.may_dispatch(lucheng, team)
    assert not reference.may_dispatch(reference.centre_of("ouhai"), team)
    assert not reference.may_dispatch(reference.city, team)
    assert reference.may_dispatch(reference.city, reference.unit("lucheng-psb"))
    action = Action(LUCHENG, dispatch_payload(
        T0, area=["lucheng"], recipients=["lucheng-team-1", "lucheng-team-2", "lucheng-psb"]))
    assert action.rec["recipients"]["lucheng-team-1"]["role"] == "enforcement_unit"
    assert domain.can_view(UNIT, action.rec)
    action.do(UNIT, "acknowledge", {"note": "一中队收到"})
    action.do(UNIT, "report_result", RESULT)
    assert action.rec["recipients"]["lucheng-team-1"]["status"] == "reported"
    with pytest.raises(NotAllowed):          # another county's team is no recipient
        action.do(Actor("x", "enforcement_unit", "ouhai-team-1", "ouhai"), "acknowledge")


def test_reference_dispatch_rule_is_checked_on_load():
    doc = ref.centres_document()
    doc["agencies"]["enforcement"]["dispatched_by"] = ["province_centre"]
    with pytest.raises(StandardError, match="dispatched_by"):
        ref.Reference(doc)
    doc = ref.centres_document()
    doc["agencies"]["enforcement"]["units_of_kind"] = "court"
    with pytest.raises(StandardError, match="no unit of kind 'court' with role"):
        ref.Reference(doc)


@pytest.mark.parametrize(("actor", "over", "error", "field"), [
    (LUCHENG, {"area": ["lucheng"], "recipients": ["ouhai-team-1"]}, InvalidInput,
     "recipients"),
    (CITY, {"recipients": ["lucheng-team-1"]}, InvalidInput, "recipients"),
    (LUCHENG, {"area": ["lucheng", "ouhai"], "recipients": ["lucheng-psb"]},
     NotAllowed, "area"),
    (LUCHENG, {"area": ["lucheng"], "recipients": ["ouhai-psb"]}, InvalidInput, "recipients"),
    (LUCHENG, {"area": ["lucheng"], "recipients": ["wenzhou-amr"]}, InvalidInput, "recipients"),
    (LUCHENG, {"area": ["lucheng"], "recipients": ["ouhai-command"]}, InvalidInput,
     "recipients"),
    (Actor("x", "county_command", "ouhai-command", "lucheng"), {"area": ["lucheng"]},
     NotAllowed, "unit"),
    (Actor("x", "county_command", "lucheng-command", None), {}, NotAllowed, "county"),
    (Actor("x", "city_command", "lucheng-command", None), {}, NotAllowed, "unit"),
    (LUCHENG_PSB, {}, NotAllowed, "role"),
    (COORDINATOR, {}, NotAllowed, "role"),
    (CITY, {"recipients": ["nobody"]}, InvalidInput, "recipients"),
    (CITY, {"recipients": ["wenzhou-command"]}, InvalidInput, "recipients"),
    (CITY, {"recipients": ["ruian-command"]}, InvalidInput, "recipients"),
    (CITY, {"recipients": ["lucheng-command", "lucheng-command"]}, InvalidInput, "recipients"),
    (CITY, {"recipients": []}, InvalidInput, "recipients"),
    (CITY, {"domain": "parking"}, InvalidInput, "domain"),
    (CITY, {"area": ["shanghai"]}, InvalidInput, "area"),
    (CITY, {"priority": "asap"}, InvalidInput, "priority"),
    (CITY, {"instructions": ""}, InvalidInput, "instructions"),
    (CITY, {"window_start": "tomorrow"}, InvalidInput, "window_start"),
    (CITY, {"window_start": (T0 + timedelta(hours=6)).isoformat()}, InvalidInput, "window_end"),
    (CITY, {"window_start": (T0 - timedelta(hours=6)).isoformat(),
            "window_end": (T0 - timedelta(hours=1)).isoformat()}, InvalidInput, "window_end"),
])
def test_dispatch_errors_name_the_field(actor, over, error, field):
    with pytest.raises(error) as exc:
        domain.create("dispatch", actor, dispatch_payload(T0, **over), T0)
    assert field in exc.value.errors, exc.value.errors


def test_dispatch_recipient_error_names_the_position():
    with pytest.raises(InvalidInput) as exc:
        domain.create("dispatch", CITY, dispatch_payload(
            T0, recipients=["lucheng-command", "nobody"]), T0)
    assert list(exc.value.errors["recipients"]) == [1]
    assert "unknown unit 'nobody'" in exc.value.errors["recipients"][1][0]


def test_unknown_creation_command_and_non_object_payload():
    with pytest.raises(InvalidInput) as exc:
        domain.create("launch", CITY, {}, T0)
    assert "command" in exc.value.errors
    with pytest.raises(InvalidInput) as exc:
        domain.create("dispatch", CITY, ["not", "an", "object"], T0)
    assert "payload" in exc.value.errors


# ------------------------------------------------------------------ acks and reports

def test_acks_results_and_auto_close_when_all_have_reported():
    action = Action()
    action.do(LUCHENG, "acknowledge", {"note": "收到"}, after=timedelta(minutes=4))
    assert action.rec["state"] == "dispatched"
    assert action.steps[-1]["satisfied"] == [{"id": "acknowledgement", "on_time": True,
                                              "due": action.rec["recipients"][
                                                  "lucheng-command"]["ack_due"]}]
    action.do(OUHAI, "acknowledge", after=timedelta(minutes=3))
    action.do(CITY_AMR, "acknowledge", after=timedelta(minutes=40))  # late
    rec = action.rec
    assert rec["state"] == "under_way"
    assert rec["deadline"]["id"] == "result_report"
    assert due(rec, "result_report") == T0 + timedelta(hours=29)
    assert rec["recipients"]["wenzhou-amr"]["ack_on_time"] is False
    assert rec["recipients"]["lucheng-command"]["ack_on_time"] is True

    action.do(LUCHENG, "report_progress", {"note": "已查车20辆", "vehicles_checked": 20})
    assert rec["recipients"]["lucheng-command"]["progress"] == []  # records are immutable
    assert action.rec["recipients"]["lucheng-command"]["progress"][0]["vehicles_checked"] == 20
    action.do(LUCHENG, "report_result", RESULT, after=timedelta(hours=6))
    action.do(OUHAI, "report_result", RESULT)
    assert action.rec["state"] == "under_way"
    payload = domain.event_payload(action.rec, action.steps[-1])
    assert payload["counterpart_unit"] == "ouhai-command"
    assert payload["details"]["recipient"] == "ouhai-command"
    action.do(CITY_AMR, "report_result", {**RESULT, "cases_opened": 0})
    rec = action.rec
    assert rec["state"] == "closed" and rec["deadline"] is None
    assert action.steps[-1]["to"] == "closed"
    assert action.steps[-1]["satisfied"][0]["on_time"] is True
    assert [s["step"] for s in action.steps] == list(range(1, 9))
    with pytest.raises(InvalidTransition):
        action.do(LUCHENG, "report_progress", {"note": "x"})


def test_recipient_acts_only_for_itself_and_in_order():
    action = Action()
    with pytest.raises(InvalidTransition, match="acknowledge the action first"):
        action.do(LUCHENG, "report_result", RESULT)
    with pytest.raises(InvalidTransition, match="acknowledge the action first"):
        action.do(LUCHENG, "report_progress", {"note": "x"})
    action.do(LUCHENG, "acknowledge")
    with pytest.raises(InvalidTransition, match="already acknowledged"):
        action.do(LUCHENG, "acknowledge")
    with pytest.raises(NotAllowed) as exc:
        action.do(RUIAN, "acknowledge")           # not a recipient
    assert "unit" in exc.value.errors
    with pytest.raises(NotAllowed) as exc:        # right unit, wrong county claim
        action.do(Actor("x", "county_command", "ouhai-command", "lucheng"), "acknowledge")
    assert "county" in exc.value.errors
    with pytest.raises(NotAllowed) as exc:        # right unit, wrong role
        action.do(Actor("x", "police", "wenzhou-amr", None), "acknowledge")
    assert "role" in exc.value.errors
    with pytest.raises(NotAllowed) as exc:        # the dispatcher does not acknowledge
        action.do(CITY, "acknowledge")
    assert "role" in exc.value.errors
    action.do(LUCHENG, "report_result", RESULT)
    with pytest.raises(InvalidTransition, match="already reported"):
        action.do(LUCHENG, "report_result", RESULT)


@pytest.mark.parametrize(("payload", "field"), [
    ({"cases_opened": 1, "referrals_made": 0}, "vehicles_checked"),
    ({**RESULT, "vehicles_checked": -1}, "vehicles_checked"),
    ({**RESULT, "cases_opened": "3"}, "cases_opened"),
    ({**RESULT, "referrals": [{"route": "court", "case_number": "A", "summary": "s"}]},
     "referrals"),
    ({**RESULT, "referrals_made": 0,
      "referrals": [{"route": "police", "case_number": "A", "summary": "s"}]}, "referrals"),
])
def test_result_errors_name_the_field(payload, field):
    action = Action()
    action.do(LUCHENG, "acknowledge")
    with pytest.raises(InvalidInput) as exc:
        action.do(LUCHENG, "report_result", payload)
    assert field in exc.value.errors, exc.value.errors


def test_result_referrals_are_published_and_linked_to_the_action():
    action = Action()
    action.do(LUCHENG, "acknowledge")
    referrals = [
        {"route": "police", "case_number": "WZ-LC-2026-0042",
         "summary": "网约车司机持伪造的道路运输证营运，涉嫌伪造国家机关证件罪"},
        {"route": "market_regulation", "case_number": "WZ-LC-2026-0043",
         "summary": "驾培中介无照经营"}]
    action.do(LUCHENG, "report_result", {**RESULT, "referrals_made": 2,
                                         "referrals": referrals})
    details = domain.event_payload(action.rec, action.steps[-1])["details"]
    assert [r["case_number"] for r in details["referrals"]] == ["WZ-LC-2026-0042",
                                                                 "WZ-LC-2026-0043"]
    links = action.rec["referrals"]
    assert [(lk["route"], lk["case_number"], lk["action_id"], lk["recipient"])
            for lk in links] == [
        ("police", "WZ-LC-2026-0042", action.rec["id"], "lucheng-command"),
        ("market_regulation", "WZ-LC-2026-0043", action.rec["id"], "lucheng-command")]
    assert all(lk["action_number"] == action.rec["case_number"] for lk in links)


def test_dispatcher_closes_the_action_with_a_reason():
    action = Action()
    action.do(LUCHENG, "acknowledge")
    action.do(LUCHENG, "report_result", RESULT)
    with pytest.raises(NotAllowed) as exc:
        action.do(LUCHENG, "close", {"reason": "x"})   # a recipient, not the dispatcher
    assert "unit" in exc.value.errors
    with pytest.raises(NotAllowed) as exc:
        action.do(CITY_AMR, "close", {"reason": "x"})
    assert "role" in exc.value.errors
    with pytest.raises(InvalidInput) as exc:
        action.do(CITY, "close", {})
    assert "reason" in exc.value.errors
    action.do(CITY, "close", {"reason": "天气原因提前结束"})
    assert action.rec["state"] == "closed" and action.rec["deadline"] is None
    assert action.steps[-1]["details"]["unreported"] == ["ouhai-command", "wenzhou-amr"]
    assert action.rec["closed_reason"] == "天气原因提前结束"
    assert joint_action.due_escalations(action.rec, T0 + timedelta(days=10)) == []


def test_county_dispatcher_alone_closes_its_action():
    action = Action(LUCHENG, dispatch_payload(T0, area=["lucheng"],
                                              recipients=["lucheng-psb"]))
    with pytest.raises(NotAllowed) as exc:
        action.do(CITY, "close", {"reason": "x"})
    assert "unit" in exc.value.errors
    action.do(LUCHENG, "close", {"reason": "完成"})
    assert action.rec["state"] == "closed"


def test_visibility():
    rec = Action().rec
    for actor in (CITY, COORDINATOR, LUCHENG, OUHAI, CITY_AMR):
        assert domain.can_view(actor, rec), actor
    for actor in (RUIAN, LUCHENG_PSB, POLICE_2, PROCURATORATE):
        assert not domain.can_view(actor, rec), actor


# ------------------------------------------------------------------ escalation

def test_sweep_escalates_each_miss_exactly_once():
    action = Action()
    rec0 = action.rec
    ack_due = T0 + timedelta(minutes=30)
    assert joint_action.sweep([rec0], ack_due) == []       # due, not yet missed
    action.do(LUCHENG, "acknowledge", after=timedelta(minutes=5))
    later = ack_due + timedelta(seconds=1)
    assert sorted(joint_action.sweep([action.rec], later)) == [
        (rec0["id"], "ouhai-command", "acknowledgement"),
        (rec0["id"], "wenzhou-amr", "acknowledgement")]
    action.escalate_all(later)
    escalations = action.events("escalate")
    assert [e["details"]["recipient"] for e in escalations] == ["ouhai-command", "wenzhou-amr"]
    payload = domain.event_payload(action.rec, escalations[0])
    assert payload["state"] == "dispatched" and payload["command"] == "escalate"
    assert payload["counterpart_unit"] == "ouhai-command"
    assert payload["details"] == {"recipient": "ouhai-command", "miss": "acknowledgement",
                                  "due": ack_due.isoformat(),
                                  "escalated_to": "wenzhou-command"}
    assert escalations[0]["actor"]["role"] == "system"
    # swept again, later, and again: nothing new
    assert joint_action.sweep([action.rec], later) == []
    assert joint_action.sweep([action.rec], later + timedelta(hours=2)) == []
    with pytest.raises(InvalidTransition) as exc:
        joint_action.escalate(action.rec, "ouhai-command", "acknowledgement", later)
    assert "miss" in exc.value.errors
    # the late acknowledgement still counts, marked late
    action.do(OUHAI, "acknowledge", after=timedelta(minutes=10))
    assert action.steps[-1]["satisfied"][0]["on_time"] is False
    # report deadline: everyone who has not reported, once — including the one never
    # acknowledged (not escalated for the acknowledgement again)
    report_due = datetime.fromisoformat(action.rec["recipients"]["ouhai-command"]["report_due"])
    action.do(LUCHENG, "report_result", RESULT, after=timedelta(hours=1))
    after_report_due = report_due + timedelta(minutes=1)
    assert sorted(joint_action.sweep([action.rec], after_report_due)) == [
        (rec0["id"], "ouhai-command", "result_report"),
        (rec0["id"], "wenzhou-amr", "result_report")]
    action.escalate_all(after_report_due)
    assert joint_action.sweep([action.rec], after_report_due + timedelta(days=1)) == []
    assert [(e["details"]["recipient"], e["details"]["miss"])
            for e in action.events("escalate")] == [
        ("ouhai-command", "acknowledgement"), ("wenzhou-amr", "acknowledgement"),
        ("ouhai-command", "result_report"), ("wenzhou-amr", "result_report")]
    assert [s["step"] for s in action.steps] == list(range(1, len(action.steps) + 1))
    assert len(action.rec["escalations"]) == 4


def test_only_the_system_escalates():
    action = Action()
    late = T0 + timedelta(hours=1)
    with pytest.raises(NotAllowed) as exc:
        domain.act(action.rec, "escalate", CITY,
                   {"recipient": "ouhai-command", "miss": "acknowledgement"}, late)
    assert "role" in exc.value.errors
    with pytest.raises(InvalidInput) as exc:
        domain.act(action.rec, "escalate", SYSTEM,
                   {"recipient": "nobody", "miss": "acknowledgement"}, late)
    assert "recipient" in exc.value.errors
    with pytest.raises(InvalidTransition):   # not missed yet
        domain.act(action.rec, "escalate", SYSTEM,
                   {"recipient": "ouhai-command", "miss": "acknowledgement"}, T0)


def test_two_sweepers_racing_publish_one_escalation(tmp_path):
    """Two replicas read the same action, both find the missed ack; the conditional
    update lets only the first commit. The second finds nothing left to do."""
    hs = HandoffStore("command", "/wenzhou/transport/command",
                      f"sqlite:///{tmp_path / 'command.db'}")
    action = Action(payload=dispatch_payload(T0, recipients=["lucheng-command"]))
    with hs.store.transaction() as s:
        hs.save(s, action.rec, action.steps[0],
                domain.event_payload(action.rec, action.steps[0]), 0)
    late = T0 + timedelta(minutes=31)
    results = []
    with hs.store.session() as a, hs.store.session() as b:
        txn_a, txn_b = a.begin(), b.begin()
        rec_a, rec_b = hs.load(a, action.rec["id"]), hs.load(b, action.rec["id"])
        for session, txn, rec in ((a, txn_a, rec_a), (b, txn_b, rec_b)):
            try:
                new, step = joint_action.escalate(rec, "lucheng-command", "acknowledgement",
                                                  late)
                hs.save(session, new, step, joint_action.event_payload(new, step),
                        rec["step"])
                txn.commit()
                results.append("published")
            except InvalidTransition:
                txn.rollback()
                results.append("lost the race")
    assert results == ["published", "lost the race"]
    with hs.store.transaction() as s:  # a later sweep: nothing more
        assert command_store.escalate_due(s, action.rec["id"], late, hs=hs) == []
    with hs.store.session() as s:
        timeline = hs.timeline(s, action.rec["id"])
        outbox = s.execute(hs.metadata.tables["outbox"].select()).all()
    assert [t["command"] for t in timeline] == ["dispatch", "escalate"]
    assert sorted(r.type for r in outbox) == ["joint_action.dispatched.v1",
                                              "joint_action.escalated.v1"]
    hs.store.dispose()


def test_escalate_due_in_one_transaction_stages_one_event_per_miss(tmp_path):
    hs = HandoffStore("command", "/wenzhou/transport/command",
                      f"sqlite:///{tmp_path / 'command.db'}")
    action = Action()
    with hs.store.transaction() as s:
        hs.save(s, action.rec, action.steps[0],
                domain.event_payload(action.rec, action.steps[0]), 0)
    late = T0 + timedelta(minutes=31)
    with hs.store.session() as s:
        assert command_store.overdue_records(s, "joint_action", joint_action.OPEN_STATES,
                                             T0) == []
        records = command_store.overdue_records(s, "joint_action", joint_action.OPEN_STATES,
                                                late)
    assert [r["id"] for r in records] == [action.rec["id"]]
    assert len(joint_action.sweep(records, late)) == 3
    with hs.store.transaction() as s:
        done = command_store.escalate_due(s, action.rec["id"], late, hs=hs)
    assert sorted(done) == [(u, "acknowledgement") for u in sorted(RECIPIENTS)]
    with hs.store.transaction() as s:
        assert command_store.escalate_due(s, action.rec["id"], late, hs=hs) == []
        rows = s.execute(hs.metadata.tables["outbox"].select()).all()
    assert [r.type for r in rows].count("joint_action.escalated.v1") == 3
    assert sorted(r.subject for r in rows) == [action.rec["id"]] * 4
    hs.store.dispose()


# ------------------------------------------------------------------ assistance

def test_assistance_between_neighbours():
    request = Action(LUCHENG, {"to_county": "ouhai", "subject": "协查浙C·A1234车辆",
                               "request": "请协查该车在瓯海区的停放地点和营运情况",
                               "plate": "浙CA1234", "domain": "illegal_operation"},
                     command="request_assistance")
    rec = request.rec
    assert rec["kind"] == "assistance_request" and rec["state"] == "requested"
    assert rec["neighbour"] is True and rec["counterpart_unit"] == "ouhai-command"
    assert rec["case_number"].startswith("XC-2026-")
    assert due(rec, "acknowledgement") == T0 + timedelta(hours=2)
    # 3 working days from Monday 2026-03-02: Thursday 03-05, end of day Beijing
    answer_due = datetime(2026, 3, 5, 15, 59, 59, tzinfo=UTC)
    assert due(rec, "answer") == answer_due
    assert domain.event_payload(rec, request.steps[0])["details"]["neighbour"] is True
    assert domain.can_view(OUHAI, rec) and not domain.can_view(RUIAN, rec)
    with pytest.raises(NotAllowed) as exc:
        request.do(LUCHENG, "acknowledge")       # the requester does not acknowledge
    assert "unit" in exc.value.errors
    with pytest.raises(InvalidTransition):
        request.do(OUHAI, "answer", {"answer": "x"})   # acknowledge first
    request.do(OUHAI, "acknowledge", {"note": "已安排"}, after=timedelta(hours=3))
    assert request.steps[-1]["satisfied"][0]["on_time"] is False
    assert request.rec["state"] == "acknowledged"
    assert due(request.rec, "answer") == answer_due   # still from the request
    with pytest.raises(InvalidInput) as exc:
        request.do(OUHAI, "answer", {})
    assert "answer" in exc.value.errors
    request.do(OUHAI, "answer", {"answer": "该车夜间停放于瓯海区某小区，有营运迹象",
                                 "found": True})
    assert request.rec["state"] == "answered" and request.rec["deadline"] is None
    assert request.steps[-1]["satisfied"][0] == {"id": "answer", "due": answer_due.isoformat(),
                                                 "on_time": True}


def test_assistance_to_a_non_neighbour_needs_the_city_centres_approval():
    request = Action(LUCHENG, {"to_county": "taishun", "subject": "协查驾驶员",
                               "request": "请协查驾驶员住址"}, command="request_assistance")
    rec = request.rec
    assert rec["state"] == "approval_pending" and rec["neighbour"] is False
    assert rec["deadline"] is None
    assert not domain.can_view(TAISHUN, rec)          # not yet reached it
    with pytest.raises(NotAllowed) as exc:
        request.do(LUCHENG, "approve")
    assert "role" in exc.value.errors
    with pytest.raises(NotAllowed) as exc:
        request.do(TAISHUN, "approve")
    assert "role" in exc.value.errors
    with pytest.raises(NotAllowed) as exc:
        request.do(Actor("x", "city_command", "lucheng-command", None), "approve")
    assert "unit" in exc.value.errors
    with pytest.raises(InvalidTransition):
        request.do(TAISHUN, "acknowledge")
    request.do(CITY, "approve", {"opinion": "同意"}, after=timedelta(hours=1))
    approved_at = request.now
    assert request.rec["state"] == "requested" and domain.can_view(TAISHUN, request.rec)
    assert due(request.rec, "acknowledgement") == approved_at + timedelta(hours=2)
    request.do(TAISHUN, "acknowledge")
    request.do(TAISHUN, "answer", {"answer": "查无此人", "found": False})
    assert request.rec["state"] == "answered"


def test_assistance_refused_and_withdrawn():
    refused = Action(LUCHENG, {"to_county": "taishun", "subject": "s", "request": "r"},
                     command="request_assistance")
    with pytest.raises(InvalidInput) as exc:
        refused.do(CITY, "refuse", {})
    assert "reason" in exc.value.errors
    refused.do(CITY, "refuse", {"reason": "请通过市指挥中心统一调度"})
    assert refused.rec["state"] == "refused"
    assert refused.rec["decision"]["approved"] is False

    withdrawn = Action(LUCHENG, {"to_county": "ouhai", "subject": "s", "request": "r"},
                       command="request_assistance")
    with pytest.raises(NotAllowed):
        withdrawn.do(OUHAI, "withdraw", {"reason": "x"})
    withdrawn.do(LUCHENG, "withdraw", {"reason": "案件已查清"})
    assert withdrawn.rec["state"] == "withdrawn"


@pytest.mark.parametrize(("actor", "payload", "error", "field"), [
    (LUCHENG, {"to_county": "lucheng", "subject": "s", "request": "r"}, InvalidInput,
     "to_county"),
    (LUCHENG, {"to_county": "hangzhou", "subject": "s", "request": "r"}, InvalidInput,
     "to_county"),
    (LUCHENG, {"to_county": "ouhai", "request": "r"}, InvalidInput, "subject"),
    (LUCHENG, {"to_county": "ouhai", "subject": "s", "request": "r", "domain": "x"},
     InvalidInput, "domain"),
    (CITY, {"to_county": "ouhai", "subject": "s", "request": "r"}, NotAllowed, "role"),
    (LUCHENG_PSB, {"to_county": "ouhai", "subject": "s", "request": "r"}, NotAllowed, "role"),
    (Actor("x", "county_command", "lucheng-command", "ruian"),
     {"to_county": "ouhai", "subject": "s", "request": "r"}, NotAllowed, "unit"),
])
def test_assistance_errors_name_the_field(actor, payload, error, field):
    with pytest.raises(error) as exc:
        domain.create("request_assistance", actor, payload, T0)
    assert field in exc.value.errors, exc.value.errors


# ------------------------------------------------------------------ assessment

def _steps(dispatched_at, recipients, acks=None, results=None, closed=None,
           report_due=None):
    """A hand-made action: dispatch at ``dispatched_at`` (minutes after T0)."""
    at = T0 + timedelta(minutes=dispatched_at)
    report_due = report_due or at + timedelta(hours=30)
    steps = [{"command": "dispatch", "at": at,
              "details": {"recipients": list(recipients),
                          "report_due": report_due.isoformat()}}]
    for unit, minutes in (acks or {}).items():
        steps.append({"command": "acknowledge", "at": at + timedelta(minutes=minutes),
                      "details": {"recipient": unit}})
    for unit, (hours, cases) in (results or {}).items():
        steps.append({"command": "report_result", "at": at + timedelta(hours=hours),
                      "details": {"recipient": unit, "vehicles_checked": 10,
                                  "cases_opened": cases, "referrals_made": 0}})
    if closed is not None:
        steps.append({"command": "close", "at": at + timedelta(hours=closed),
                      "details": {"reason": "x"}})
    return {"id": f"a{dispatched_at}", "case_number": "LD", "steps": steps}


def test_assessment_numbers_on_a_hand_made_data_set():
    A, B, C = "lucheng-command", "ouhai-command", "ruian-command"
    actions = [
        # A acks after 5, 10, 20, 40, 60 minutes: median 20, p90 (5th of 5) 60
        # B acks after 3, 7, 9, 12: median 8, p90 (4th of 4) 12
        _steps(0, [A, B], {A: 5, B: 3}, {A: (10, 2), B: (10, 1)}),
        _steps(10, [A, B], {A: 10, B: 7}, {A: (10, 0), B: (31, 1)}),      # B late
        _steps(20, [A, B], {A: 20, B: 9}, {A: (10, 1), B: (10, 0)}),
        _steps(30, [A, B], {A: 40, B: 12}, {A: (40, 3)}),                 # A late, B missing
        _steps(40, [A, C], {A: 60}, {A: (10, 0)}, closed=2),              # C never acked; closed
        # outside the period: ignored
        _steps(-60, [A, B, C], {A: 1, B: 1, C: 1}, {A: (1, 9), B: (1, 9), C: (1, 9)}),
    ]
    start, end = T0, T0 + timedelta(hours=1)
    now = T0 + timedelta(days=3)
    result = assessment.assess(actions, start, end, now)
    rows = {r["unit"]: r for r in result["units"]}
    assert result["actions"] == 5
    a, b, c = rows[A], rows[B], rows[C]
    assert (a["actions"], a["acknowledged"], a["median_ack_minutes"], a["p90_ack_minutes"]) \
        == (5, 5, 20, 60)
    assert (b["actions"], b["acknowledged"], b["median_ack_minutes"], b["p90_ack_minutes"]) \
        == (4, 4, 8, 12)
    assert (c["actions"], c["acknowledged"], c["unacknowledged"]) == (1, 0, 1)
    assert c["median_ack_minutes"] is None and c["p90_ack_minutes"] is None
    # A: 5 reports, one late -> 0.8; B: 3 made (one late) + one missing -> 2/4
    assert (a["reports_counted"], a["reports_on_time"], a["on_time_report_rate"]) == (5, 4, 0.8)
    assert (b["reports_counted"], b["reports_late"], b["reports_missing"],
            b["on_time_report_rate"]) == (4, 1, 1, 0.5)
    # C's report was no longer expected: the dispatcher closed before it was due
    assert (c["reports_counted"], c["on_time_report_rate"]) == (0, None)
    assert a["cases_per_action"] == 1.2 and b["cases_per_action"] == 0.5
    assert c["cases_per_action"] == 0
    assert result["ranking"] == [A, B, C]
    assert [rows[u]["rank"] for u in result["ranking"]] == [1, 2, 3]


def test_assessment_percentiles_and_ties():
    assert assessment.median([4, 1, 3, 2]) == 2.5
    assert assessment.p90(list(range(1, 11))) == 9
    assert assessment.p90(list(range(1, 12))) == 10
    assert assessment.p90([7]) == 7 and assessment.p90([]) is None
    A, B = "lucheng-command", "ouhai-command"
    same = [_steps(0, [A, B], {A: 5, B: 5}, {A: (1, 1), B: (1, 1)})]
    result = assessment.assess(same, T0, T0 + timedelta(hours=1), T0 + timedelta(days=3))
    assert [r["rank"] for r in result["units"]] == [1, 1]


def test_alert_tasks_feed_the_ranking_per_county_centre():
    A, B, C = "lucheng-command", "ouhai-command", "ruian-command"
    # A and B tie on their joint actions; B's alert teams arrive faster: B ranks first
    actions = [_steps(0, [A, B], {A: 5, B: 5}, {A: (1, 1), B: (1, 1)})]
    alerts = [
        {"unit": A, "tasks": 3, "cases_opened": 1, "median_ack_minutes": 4.0,
         "median_arrive_minutes": 40.0, "median_close_minutes": 300.0,
         "by_domain": [{"domain": "road", "tasks": 3, "cases_opened": 1,
                        "median_ack_minutes": 4.0, "median_arrive_minutes": 40.0,
                        "median_close_minutes": 300.0}]},
        {"unit": B, "tasks": 1, "cases_opened": 0, "median_ack_minutes": 9.0,
         "median_arrive_minutes": 25.0, "median_close_minutes": None, "by_domain": []},
        # a centre with alert tasks and no joint action is assessed too
        {"unit": C, "tasks": 2, "cases_opened": 2, "median_ack_minutes": 1.0,
         "median_arrive_minutes": 10.0, "median_close_minutes": 60.0, "by_domain": []},
    ]
    result = assessment.assess(actions, T0, T0 + timedelta(hours=1), T0 + timedelta(days=3),
                               alerts=alerts)
    rows = {r["unit"]: r for r in result["units"]}
    assert result["ranking"] == [B, A, C]     # C lacks an on-time rate and an ack time
    assert (rows[A]["alert_tasks"], rows[A]["alert_cases_opened"],
            rows[A]["median_alert_ack_minutes"], rows[A]["median_alert_arrive_minutes"],
            rows[A]["median_alert_close_minutes"]) == (3, 1, 4.0, 40.0, 300.0)
    assert rows[A]["alert_by_domain"][0]["domain"] == "road"
    assert (rows[C]["actions"], rows[C]["cases_per_action"], rows[C]["alert_tasks"]) == (
        0, None, 2)
    # without the alerts service's rows, the ranking is the joint actions' alone
    alone = assessment.assess(actions, T0, T0 + timedelta(hours=1), T0 + timedelta(days=3))
    assert alone["alerts_counted"] is False and [r["rank"] for r in alone["units"]] == [1, 1]
    assert alone["units"][0]["alert_tasks"] == 0


def test_assessment_reads_what_the_domain_records():
    action = Action(payload=dispatch_payload(T0, recipients=["lucheng-command",
                                                             "ouhai-command"]))
    action.do(LUCHENG, "acknowledge", after=timedelta(minutes=6))
    action.do(OUHAI, "acknowledge", after=timedelta(minutes=6))
    action.do(LUCHENG, "report_result", {**RESULT, "cases_opened": 4}, after=timedelta(hours=6))
    recorded = [{"command": s["command"], "at": s["at"], "details": s["details"]}
                for s in copy.deepcopy(action.steps)]
    result = assessment.assess([{"id": action.rec["id"], "case_number": "x",
                                 "steps": recorded}], T0, T0 + timedelta(days=1),
                               T0 + timedelta(days=3))
    rows = {r["unit"]: r for r in result["units"]}
    assert rows["lucheng-command"]["median_ack_minutes"] == 6
    assert rows["ouhai-command"]["median_ack_minutes"] == 12
    assert rows["lucheng-command"]["on_time_report_rate"] == 1.0
    assert rows["ouhai-command"]["on_time_report_rate"] == 0.0   # missing, due passed
    assert rows["lucheng-command"]["cases_per_action"] == 4
    assert result["ranking"] == ["lucheng-command", "ouhai-command"]


def test_assistance_module_is_registered_in_the_router():
    assert {"dispatch": joint_action, "request_assistance": assistance} == domain.CREATIONS
    with pytest.raises(InvalidInput) as exc:
        domain.procedure("parking")
    assert "kind" in exc.value.errors

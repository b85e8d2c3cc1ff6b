"""The alerts service's domain (issue 17): kinds of alert as data, routing to the county
and team, urgency and periods, the task's state machine, who is a party, escalation to
the county then the city centre, de-duplication (in the service's own tables on SQLite)
and the loop's statistics."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.alerts import domain
from services.alerts import reference as ref
from services.alerts import store as st
from shared.auth import ROLES, Actor
from shared.db import Store
from shared.errors import InvalidInput, InvalidTransition, NotAllowed
from shared.events import validate_payload
from shared.standards import StandardError, load_standard

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
SOURCE = Actor("wim-platform", "alert_source", "wim-platform")
TEAM = Actor("officer-li", "enforcement_unit", "lucheng-team-1", "lucheng")
OTHER_TEAM = Actor("officer-wu", "enforcement_unit", "ouhai-team-1", "ouhai")
CENTRE = Actor("lc", "county_command", "lucheng-command", "lucheng")
OTHER_CENTRE = Actor("oh", "county_command", "ouhai-command", "ouhai")
CITY = Actor("city", "city_command", "wenzhou-command")
PORT = Actor("dt-port", "port_shipping", "dongtou-port-shipping", "dongtou")
PORT_CITY = Actor("port-city", "port_shipping", "wenzhou-port-shipping")


def overlimit(alert_id="A1", plate="浙C12345", site="WIM-LC-01", excess=30.0, **over):
    return {"alert_id": alert_id, "kind": "overlimit_wim", "plate": plate, "site": site,
            "gross_weight_kg": 65000, "limit_kg": 49000 * 1.0, "excess_percent": excess,
            **over}


def task(alert=None, actor=SOURCE, now=NOW):
    return domain.create("dispatch", actor, ref.validate_alert(alert or overlimit()), now)


# ------------------------------------------------------------------ data

def test_every_kind_has_domain_handler_routing_periods_and_a_source():
    reference = ref.reference()
    assert set(reference.kinds) >= {"overlimit_wim", "key_vehicle_dynamic",
                                    "illegal_operation_tip", "port_alarm"}
    assert {k.domain for k in reference.kinds.values()} == {"road", "transport", "port"}
    for kind in reference.kinds.values():
        assert kind.handler_role in ROLES
        assert set(kind.periods) == {"urgent", "normal"}
        assert "local choice — confirm" in load_standard("alerts")["kinds"][kind.id]["source"]
    assert reference.kinds["port_alarm"].handler_role == "port_shipping"
    assert "serious_speeding" in reference.kinds["key_vehicle_dynamic"].judgment_rules


def test_port_shipping_is_a_role_of_its_own():
    assert ROLES["port_shipping"] == "port_shipping"
    assert ROLES["alert_source"] == "system"


def test_a_bad_standard_is_refused_on_load():
    doc = load_standard("alerts")
    doc["sites"]["WIM-X"] = {"name": "x", "county": "atlantis"}
    with pytest.raises(StandardError, match="unknown county"):
        ref.Reference(doc)
    doc = load_standard("alerts")
    doc["kinds"]["port_alarm"]["handler_role"] = "enforcement_unit"
    with pytest.raises(StandardError, match="handler"):
        ref.Reference(doc)


def test_alerts_are_checked_against_their_kind():
    with pytest.raises(InvalidInput) as exc:
        ref.validate_alert(overlimit(plate="not a plate", site="nowhere"))
    assert set(exc.value.errors) == {"plate", "site"}
    with pytest.raises(InvalidInput, match="unknown kind"):
        ref.validate_alert({"alert_id": "x", "kind": "ufo"})
    with pytest.raises(InvalidInput):
        ref.validate_alert(["not", "an", "object"])
    with pytest.raises(InvalidInput):
        ref.validate_alert({**overlimit(), "alert_id": "\x00"})


# ------------------------------------------------------------------ routing

def test_site_berth_position_and_county_routing():
    assert ref.route(ref.validate_alert(overlimit(site="WIM-RA-01")))["county"] == "ruian"
    port = ref.validate_alert({"alert_id": "P", "kind": "port_alarm", "alarm": "unsafe_berth",
                               "vessel_name": "浙洞渔1号", "mmsi": "412345678",
                               "berth": "ZYA-01"})
    assert ref.route(port) | {"place": None} == {
        "county": "dongtou", "place": None, "handler_role": "port_shipping",
        "handler_unit": "dongtou-port-shipping", "routing": "berth"}
    moving = {"alert_id": "K", "kind": "key_vehicle_dynamic", "plate": "浙C88888",
              "alarm": "speeding", "lat": 27.55, "lon": 119.72, "speed_kmh": 90}
    assert ref.route(ref.validate_alert(moving))["county"] == "taishun"
    assert ref.route(ref.validate_alert({**moving, "lat": 28.12, "lon": 120.98}))[
        "handler_unit"] == "yueqing-team-1"
    assert ref.route(ref.validate_alert({**moving, "county": "lucheng"}))["county"] == \
        "lucheng"
    tip = {"alert_id": "T", "kind": "illegal_operation_tip", "ticket": "12328-001",
           "channel": "hotline_12328", "county": "ouhai", "plate": "浙C66666",
           "summary": "黑车拉客"}
    assert ref.route(ref.validate_alert(tip))["handler_unit"] == "ouhai-team-1"


def test_a_speeding_bus_alert_shows_the_judgment_rule_its_readings_meet():
    alert = {"alert_id": "K", "kind": "key_vehicle_dynamic", "plate": "浙C88888",
             "alarm": "speeding", "vehicle_category": "scheduled_bus", "lat": 28.0,
             "lon": 120.65, "speed_kmh": 130, "speed_limit_kmh": 60, "road_type": "highway"}
    rec, step = task(alert)
    assert [r["rule_id"] for r in rec["recommendations"]] == ["serious_speeding"]
    assert rec["recommendations"][0]["suspected_offence"] == "危险驾驶罪"
    validate_payload("alert_task.dispatched.v1", domain.event_payload(rec, step))
    slower, _ = task({**alert, "alert_id": "K2", "speed_kmh": 100})     # 67% over
    assert slower["recommendations"] == []
    assert task(overlimit())[0]["recommendations"] == []


def test_urgency_from_the_source_or_the_kinds_rule():
    assert ref.urgency(ref.validate_alert(overlimit(excess=30))) == "normal"
    assert ref.urgency(ref.validate_alert(overlimit(excess=55))) == "urgent"
    assert ref.urgency(ref.validate_alert(overlimit(excess=10, urgency="urgent"))) == "urgent"


def test_periods_per_kind_and_urgency_and_their_override(monkeypatch):
    rec, _ = task(overlimit(excess=55))
    assert rec["urgency"] == "urgent"
    assert rec["clocks"]["acknowledgement"]["due"] == (NOW + timedelta(minutes=10)).isoformat()
    assert rec["clocks"]["arrival"]["due"] == (NOW + timedelta(hours=1)).isoformat()
    monkeypatch.setenv(ref.PERIODS_ENV, '{"overlimit_wim.normal.ack": "1m"}')
    ref.clear_caches()
    try:
        rec, _ = task()
        assert rec["clocks"]["acknowledgement"]["period"] == "1m"
        monkeypatch.setenv(ref.PERIODS_ENV, '{"overlimit_wim.sometimes.ack": "1m"}')
        ref.clear_caches()
        with pytest.raises(StandardError, match="unknown period"):
            ref.periods()
    finally:
        monkeypatch.delenv(ref.PERIODS_ENV)
        ref.clear_caches()


# ------------------------------------------------------------------ the task

def test_task_lifecycle_dispatched_to_closed_with_events_that_fit_their_schemas():
    rec, step = task()
    assert (rec["state"], rec["county"], rec["owner_unit"], rec["counterpart_unit"]) == (
        "dispatched", "lucheng", "lucheng-command", "lucheng-team-1")
    assert rec["case_number"].startswith("YJ-2026-")
    events = [domain.event_payload(rec, step)]
    t = NOW
    for actor, command, payload in (
            (TEAM, "acknowledge", {"note": "收到"}),
            (TEAM, "arrive", {"lat": 28.0, "lon": 120.6}),
            (TEAM, "dispose", {"result": "case_opened", "case": {
                "kind": "administrative", "case_number": "温交执罚〔2026〕1号"}}),
            (CENTRE, "close", {})):
        t += timedelta(minutes=5)
        rec, step = domain.act(rec, command, actor, payload, t)
        events.append(domain.event_payload(rec, step))
    assert rec["state"] == "closed" and rec["result"] == "case_opened"
    assert [e["satisfied"][0]["on_time"] for e in events[1:4]] == [True, True, True]
    for e, name in zip(events, ["dispatched", "acknowledged", "arrived", "disposed",
                                "closed"], strict=True):
        validate_payload(f"alert_task.{name}.v1", e)
    assert domain.procedure().is_final("closed")


def test_only_the_handling_team_acts_and_only_its_centres_close():
    rec, _ = task()
    with pytest.raises(NotAllowed):
        domain.act(rec, "acknowledge", OTHER_TEAM, {}, NOW)
    with pytest.raises(NotAllowed):
        domain.act(rec, "acknowledge", CENTRE, {}, NOW)
    with pytest.raises(InvalidTransition):
        domain.act(rec, "close", CENTRE, {}, NOW)
    with pytest.raises(NotAllowed):
        domain.act(rec, "escalate", TEAM, {}, NOW)
    for command in ("acknowledge", "arrive"):
        rec, _ = domain.act(rec, command, TEAM, {}, NOW)
    rec, _ = domain.act(rec, "dispose", TEAM, {"result": "warning"}, NOW)
    with pytest.raises(NotAllowed):
        domain.act(rec, "close", OTHER_CENTRE, {}, NOW)
    assert domain.act(rec, "close", CITY, {}, NOW)[0]["state"] == "closed"


def test_a_result_case_opened_names_a_case_of_a_kind_the_alert_can_open():
    rec, _ = task()
    for command in ("acknowledge", "arrive"):
        rec, _ = domain.act(rec, command, TEAM, {}, NOW)
    with pytest.raises(InvalidInput):
        domain.act(rec, "dispose", TEAM, {"result": "case_opened"}, NOW)
    with pytest.raises(InvalidInput):
        domain.act(rec, "dispose", TEAM, {"result": "case_opened", "case": {
            "kind": "administrative"}}, NOW)
    with pytest.raises(InvalidInput, match="does not open"):   # freight over-limit
        domain.act(rec, "dispose", TEAM, {"result": "case_opened", "case": {
            "kind": "criminal_referral", "referral": {"summary": "x"}}}, NOW)
    with pytest.raises(InvalidInput):
        domain.act(rec, "dispose", TEAM, {"result": "false_alarm", "case": {
            "kind": "administrative", "case_number": "1"}}, NOW)


def test_visibility():
    rec, _ = task()
    assert domain.can_view(CITY, rec) and domain.can_view(CENTRE, rec)
    assert domain.can_view(TEAM, rec) and domain.can_view(SOURCE, rec)
    assert not domain.can_view(OTHER_CENTRE, rec) and not domain.can_view(OTHER_TEAM, rec)
    assert not domain.can_view(PORT_CITY, rec)
    port, _ = task({"alert_id": "P", "kind": "port_alarm", "alarm": "no_valid_certificate",
                    "vessel_name": "浙洞渔1号", "mmsi": "412345678", "berth": "ZYA-01"},
                   actor=Actor("pm", "alert_source", "port-monitoring"))
    assert domain.can_view(PORT, port) and domain.can_view(PORT_CITY, port)
    assert not domain.can_view(SOURCE, port)


# ------------------------------------------------------------------ escalation

def test_missed_ack_escalates_to_the_county_then_the_city_once_each():
    rec, _ = task()     # normal: ack 30m, city after 30m more
    assert domain.due_escalations(rec, NOW + timedelta(minutes=29)) == []
    due = rec["clocks"]["acknowledgement"]["due"]
    first = domain.due_escalations(rec, NOW + timedelta(minutes=31))
    assert first == [("acknowledgement", "county", "lucheng-command", due)]
    rec, step = domain.escalate(rec, *first[0], NOW + timedelta(minutes=31))
    validate_payload("alert_task.escalated.v1", domain.event_payload(rec, step))
    assert rec["state"] == "dispatched" and rec["clocks"]["acknowledgement"]
    assert domain.due_escalations(rec, NOW + timedelta(minutes=40)) == []
    later = domain.due_escalations(rec, NOW + timedelta(minutes=61))
    assert later == [("acknowledgement", "city", "wenzhou-command", due)]
    rec, _ = domain.escalate(rec, *later[0], NOW + timedelta(minutes=61))
    # escalated as far as it goes: nothing more for the ack, but the task stays overdue
    assert rec["deadline"]["id"] == "acknowledgement" and rec["deadline"]["due"] == due
    assert domain.due_escalations(rec, NOW + timedelta(minutes=62)) == []
    assert domain.due_escalations(rec, NOW + timedelta(hours=5)) == [
        ("arrival", "county", "lucheng-command", rec["clocks"]["arrival"]["due"]),
        ("arrival", "city", "wenzhou-command", rec["clocks"]["arrival"]["due"])]


def test_an_acknowledged_task_does_not_escalate_its_ack():
    rec, _ = task()
    rec, _ = domain.act(rec, "acknowledge", TEAM, {}, NOW + timedelta(minutes=40))
    assert "acknowledgement" not in rec["clocks"]
    assert domain.due_escalations(rec, NOW + timedelta(minutes=50)) == []


# ------------------------------------------------------------------ intake and dedupe

@pytest.fixture
def db(tmp_path):
    store = Store("alerts", st.metadata, f"sqlite:///{tmp_path / 'alerts.db'}")
    yield store
    store.dispose()


def test_a_repeated_reading_is_not_loaded_again_but_its_message_id_is_checked():
    first = ref.validate_alert(overlimit("R1", plate="浙C55555", excess=33.3))
    again = ref.validate_alert(overlimit("R2", plate="浙C55555", excess=33.3))
    assert again == {**first, "alert_id": "R2"}
    for bad in ("", "x" * 121, None):
        with pytest.raises(InvalidInput) as err:
            ref.validate_alert(overlimit(bad, plate="浙C55555", excess=33.3))
        assert set(err.value.errors) == {"alert_id"}, bad
    missing = overlimit("R3", plate="浙C55555", excess=33.3)
    del missing["alert_id"]
    with pytest.raises(InvalidInput) as err:
        ref.validate_alert(missing)
    assert set(err.value.errors) == {"alert_id"}
    # a new reading is loaded, and refused when bad
    with pytest.raises(InvalidInput) as err:
        ref.validate_alert(overlimit("R4", plate="nope", excess=33.3))
    assert set(err.value.errors) == {"plate"}


def apply(db, alert, now=NOW, actor=SOURCE):
    with db.transaction() as s:
        return st.apply_alert(s, actor, ref.validate_alert(alert), now)


def test_repeated_message_ids_apply_once_and_repeats_join_the_open_task(db):
    first = apply(db, overlimit("A1"))
    assert first["outcome"] == "created" and first["handler_unit"] == "lucheng-team-1"
    assert apply(db, overlimit("A1"))["outcome"] == "duplicate"
    again = apply(db, overlimit("A2", excess=41), NOW + timedelta(minutes=10))
    assert again == {**first, "outcome": "merged", "repeats": 1}
    other = apply(db, overlimit("A3", plate="浙C99999"))
    assert other["outcome"] == "created" and other["task_id"] != first["task_id"]
    with db.session() as s:
        rec = st.handoffs.load(s, first["task_id"])
        assert rec["latest"]["excess_percent"] == 41 and rec["repeats"] == 1
        assert st.intake_count(s) == 3      # A1 once, A2 merged, A3
        assert st.alerts_per_task(s)[first["task_id"]] == 2
    # outside the window (30 min after the last sighting) a new task opens
    late = apply(db, overlimit("A4"), NOW + timedelta(minutes=50))
    assert late["outcome"] == "created" and late["task_id"] != first["task_id"]


def test_a_batch_writes_its_new_tasks_together_as_if_one_at_a_time(db):
    import json

    from sqlalchemy import func, select

    from shared.messaging import messaging_tables
    batch = [overlimit("B1", plate="浙C10001"), overlimit("B2", plate="浙C10002"),
             overlimit("B3", plate="浙C10001", excess=45.0),     # joins B1's new task
             overlimit("B1", plate="浙C10001"),                   # a repeat of B1: once
             overlimit("B4", plate="浙C10003", site="WIM-RA-01")]
    with db.transaction() as s:
        out = st.apply_alerts(s, [(SOURCE, ref.validate_alert(a)) for a in batch], NOW)
    assert [o["outcome"] for o in out] == ["created", "created", "merged", "duplicate",
                                           "created"]
    assert out[2]["task_id"] == out[3]["task_id"] == out[0]["task_id"]
    outbox = messaging_tables(st.metadata)["outbox"]
    with db.session() as s:
        rec = st.handoffs.load(s, out[0]["task_id"])
        assert rec["repeats"] == 1 and rec["latest"]["excess_percent"] == 45.0
        assert st.handoffs.verify(s)["problems"] == {}
        events = {e["subject"]: e["data"] for e in (
            json.loads(row.body) for row in s.execute(select(outbox.c.body)))}
        assert set(events) == {out[0]["task_id"], out[1]["task_id"], out[4]["task_id"]}
        first = events[out[0]["task_id"]]        # the event is the task as it was created
        assert first["details"]["reading"]["excess_percent"] == 30.0
        assert s.execute(select(func.count()).select_from(st.targets)).scalar_one() == 3
    # the tasks are found again by their targets and message ids
    assert apply(db, overlimit("B5", plate="浙C10002"))["outcome"] == "merged"
    assert apply(db, overlimit("B4", plate="浙C10003", site="WIM-RA-01"))["outcome"] == \
        "duplicate"


def test_a_closed_task_does_not_collect_repeats(db):
    first = apply(db, overlimit("B1"))
    with db.transaction() as s:
        rec = st.handoffs.load(s, first["task_id"])
        for actor, command, payload in ((TEAM, "acknowledge", {}), (TEAM, "arrive", {}),
                                        (TEAM, "dispose", {"result": "false_alarm"}),
                                        (CENTRE, "close", {})):
            new, step = domain.act(rec, command, actor, payload, NOW)
            st.handoffs.save(s, new, step, domain.event_payload(new, step), rec["step"])
            rec = new
        st.release_target(s, rec)
    assert apply(db, overlimit("B2"))["outcome"] == "created"


def test_statistics_count_the_loops_yield():
    a, _ = task()
    b, _ = task(overlimit("X", plate="浙C00001", site="WIM-RA-01"))
    a = {**a, "repeats": 2, "acknowledge_at": (NOW + timedelta(minutes=4)).isoformat(),
         "result": "case_opened", "state": "closed"}
    rows = domain.statistics_of([a, b], {a["id"]: 3}, "county")
    by = {r["county"]: r for r in rows}
    assert by["lucheng"] | {} == {**by["lucheng"], "alerts": 3, "tasks": 1, "closed": 1,
                                  "cases_opened": 1, "median_ack_minutes": 4.0,
                                  "case_rate": 1.0}
    assert by["ruian"]["alerts"] == 1 and by["ruian"]["median_ack_minutes"] is None
    with pytest.raises(InvalidInput):
        domain.statistics_of([], {}, "planet")


def test_assessment_per_county_centre_and_domain_over_a_period():
    def at(minutes):
        return (NOW + timedelta(minutes=minutes)).isoformat()
    road, _ = task()                                                   # lucheng
    road = {**road, "acknowledge_at": at(5), "arrive_at": at(15), "close_at": at(24),
            "result": "case_opened", "state": "closed"}
    bus, _ = task({"alert_id": "K1", "kind": "key_vehicle_dynamic", "plate": "浙C88888",
                   "alarm": "speeding", "lat": 28.0, "lon": 120.65, "speed_kmh": 90})
    bus = {**bus, "acknowledge_at": at(3), "arrive_at": at(9), "close_at": at(14),
           "state": "closed", "result": "warning"}
    ruian, _ = task(overlimit("X", plate="浙C00001", site="WIM-RA-01"))
    old = {**task()[0], "created_at": at(-600)}
    within = domain.created_within([road, bus, ruian, old], NOW, NOW + timedelta(hours=1))
    assert {r["id"] for r in within} == {road["id"], bus["id"], ruian["id"]}
    rows = {r["unit"]: r for r in domain.assessment_of(within, {road["id"]: 2})}
    lc = rows["lucheng-command"]
    assert (lc["county"], lc["alerts"], lc["tasks"], lc["cases_opened"]) == ("lucheng", 3, 2, 1)
    assert (lc["median_ack_minutes"], lc["median_arrive_minutes"],
            lc["median_close_minutes"]) == (4.0, 12.0, 19.0)
    by = {d["domain"]: d for d in lc["by_domain"]}
    assert (by["road"]["median_close_minutes"], by["transport"]["median_close_minutes"]) == (
        24.0, 14.0)
    assert rows["ruian-command"]["tasks"] == 1
    assert rows["ruian-command"]["median_arrive_minutes"] is None


def test_a_target_crossing_the_boundary_is_reassigned_to_the_neighbouring_county():
    rec, _ = task()                                          # lucheng
    later = NOW + timedelta(minutes=40)
    rec, _ = domain.escalate(rec, *domain.due_escalations(rec, later)[0], later)
    with pytest.raises(NotAllowed, match="does not border"):  # taishun is not a neighbour
        domain.act(rec, "reassign", CENTRE, {"to_county": "taishun", "reason": "r"}, later)
    with pytest.raises(NotAllowed):                           # not lucheng's centre
        domain.act(rec, "reassign", OTHER_CENTRE, {"to_county": "ouhai", "reason": "r"}, later)
    with pytest.raises(InvalidInput):
        domain.act(rec, "reassign", CENTRE, {"to_county": "lucheng", "reason": "r"}, later)
    new, step = domain.act(rec, "reassign", CENTRE,
                           {"to_county": "ouhai", "reason": "车辆已驶入瓯海"}, later)
    assert (new["state"], new["county"], new["owner_unit"], new["counterpart_unit"]) == (
        "dispatched", "ouhai", "ouhai-command", "ouhai-team-1")
    assert new["escalations"] == [] and new["clocks"]["acknowledgement"]["started"] == \
        later.isoformat()
    validate_payload("alert_task.reassigned.v1", domain.event_payload(new, step))
    assert domain.can_view(OTHER_TEAM, new) and not domain.can_view(TEAM, new)
    assert domain.act(new, "acknowledge", OTHER_TEAM, {}, later)[0]["state"] == "acknowledged"
    far, _ = domain.act(rec, "reassign", CITY, {"to_county": "taishun", "reason": "r"}, later)
    assert far["counterpart_unit"] == "taishun-team-1"

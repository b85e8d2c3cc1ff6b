"""线上+线下联动 end to end (issue 17): alerts posted to the gateway by system clients
with their own credentials become tasks of the right county team (alerts service, its
outbox, the tracker), are acknowledged, handled on site and closed with a result that
opens a criminal referral in police_handoff, linked both ways; a repeat is applied once,
a repeat of the target joins the open task, a bad alert is a 422; a port alarm reaches
the port & shipping unit; a missed ack escalates to the county centre. Runs once on
SQLite and once on PostgreSQL (the ``stack`` fixture)."""
from __future__ import annotations

import base64
import json
import uuid

import pytest
import requests

from shared.auth import Actor
from tests.conftest import wait_for
from tests.helpers import CITY, COORDINATOR, LUCHENG, OUHAI, UNIT, draft_payload, token

pytestmark = pytest.mark.e2e

PORT = Actor("port-dt", "port_shipping", "dongtou-port-shipping", "dongtou")
OUHAI_TEAM = Actor("officer-wu", "enforcement_unit", "ouhai-team-1", "ouhai")


def basic(client: str, secret: str = "demo") -> dict:
    raw = base64.b64encode(f"{client}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}", "Content-Type": "application/json"}


def post_alert(stack, alert: dict, client: str = "wim-platform", secret: str = "demo"):
    return requests.post(f"{stack.base_url}/api/v1/alerts", data=json.dumps(alert),
                         headers=basic(client, secret), timeout=30)


def act(stack, actor, task_id, command, payload=None):
    return requests.post(f"{stack.base_url}/api/v1/alert-tasks/{task_id}/{command}",
                         data=json.dumps(payload or {}), timeout=30,
                         headers={"Authorization": f"Bearer {token(actor)}",
                                  "Content-Type": "application/json"})


def get(stack, actor, path, **params):
    return requests.get(f"{stack.base_url}{path}", params=params, timeout=30,
                        headers={"Authorization": f"Bearer {token(actor)}"})


def overlimit(alert_id: str, plate: str) -> dict:
    return {"alert_id": alert_id, "kind": "overlimit_wim", "plate": plate,
            "site": "WIM-LC-01", "gross_weight_kg": 68000, "limit_kg": 49000,
            "excess_percent": 38.8, "observed_at": "2026-11-29T08:00:00+08:00"}


def plate() -> str:
    return "浙C" + uuid.uuid4().hex[:5].upper()


@pytest.fixture(scope="module")
def web(stack):
    wait_for(lambda: _up(stack.base_url), message="gateway HTTP")
    return stack


def _up(base):
    try:
        return requests.get(base + "/healthz", timeout=2).ok
    except requests.RequestException:
        return False


def tracked(stack, task_id: str, state: str) -> dict:
    def seen():
        r = get(stack, COORDINATOR, f"/api/v1/handoffs/{task_id}")
        return r.json() if r.ok and r.json()["state"] == state else None
    return wait_for(seen, timeout=60, message=f"tracker to show {task_id} {state}")


def test_over_limit_alert_to_closed_task_with_duplicates_and_bad_input(web):
    p = plate()
    r = post_alert(web, overlimit(f"wim-{p}-1", p))
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["outcome"], first["county"], first["handler_unit"]) == (
        "created", "lucheng", "lucheng-team-1")
    task_id = first["task_id"]
    # the device repeats its message: applied once
    again = post_alert(web, overlimit(f"wim-{p}-1", p))
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    # the same truck again at the site: joins the open task
    merged = post_alert(web, {**overlimit(f"wim-{p}-2", p), "excess_percent": 41.0})
    assert merged.json() | {} == {**first, "outcome": "merged", "repeats": 1}
    # bad alerts and bad credentials
    bad = post_alert(web, {**overlimit("x", p), "plate": "nope", "site": "nowhere"})
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"plate", "site"}
    assert post_alert(web, {"alert_id": "u", "kind": "ufo"}).status_code == 422
    assert post_alert(web, overlimit("y", p), secret="wrong").status_code == 401
    person = requests.post(f"{web.base_url}/api/v1/alerts", data=json.dumps(overlimit("z", p)),
                           headers={"Authorization": f"Bearer {token(CITY)}"}, timeout=30)
    assert person.status_code == 401

    task = get(web, UNIT, f"/api/v1/alert-tasks/{task_id}").json()
    assert task["repeats"] == 1 and task["latest"]["excess_percent"] == 41.0
    assert task["next_actions"] == ["acknowledge"]
    assert get(web, OUHAI_TEAM, f"/api/v1/alert-tasks/{task_id}").status_code == 403
    assert act(web, OUHAI_TEAM, task_id, "acknowledge").status_code == 403
    assert act(web, UNIT, task_id, "close").status_code == 409     # order first
    for command, payload in (("acknowledge", {"note": "收到"}), ("arrive", {}),
                             ("dispose", {"result": "case_opened", "case": {
                                 "kind": "administrative",
                                 "case_number": f"温交执罚〔2026〕{p}号"}})):
        r = act(web, UNIT, task_id, command, payload)
        assert r.status_code == 200, r.text
    assert act(web, OUHAI, task_id, "close").status_code == 403
    closed = act(web, LUCHENG, task_id, "close", {"note": "审核通过"})
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    row = tracked(web, task_id, "closed")
    assert row["kind"] == "alert_task" and row["county"] == "lucheng"
    assert [s["command"] for s in row["timeline"]] == [
        "dispatch", "acknowledge", "arrive", "dispose", "close"]
    # closed: the same truck again opens a new task
    fresh = post_alert(web, overlimit(f"wim-{p}-3", p))
    assert fresh.status_code == 201 and fresh.json()["task_id"] != task_id
    stats = get(web, CITY, "/api/v1/alert-statistics", group_by="county").json()
    lucheng = next(r for r in stats["rows"] if r["county"] == "lucheng")
    assert lucheng["alerts"] >= 3 and lucheng["cases_opened"] >= 1


def test_speeding_bus_closed_with_a_criminal_referral_linked_both_ways(web):
    p = plate()
    alert = {"alert_id": f"kv-{p}", "kind": "key_vehicle_dynamic", "plate": p,
             "alarm": "speeding", "vehicle_category": "scheduled_bus", "lat": 28.02,
             "lon": 120.66, "speed_kmh": 130, "speed_limit_kmh": 60}
    r = post_alert(web, alert, client="vehicle-monitoring")
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["county"] == "lucheng" and task["urgency"] == "urgent"
    task_id = task["task_id"]
    for command in ("acknowledge", "arrive"):
        assert act(web, UNIT, task_id, command).status_code == 200
    draft = draft_payload(f"WZ-LC-YJ-{p}", plate=p)
    disposed = act(web, UNIT, task_id, "dispose", {"result": "case_opened", "case": {
        "kind": "criminal_referral", "referral": draft}})
    assert disposed.status_code == 200, disposed.text
    case = disposed.json()["case"]
    assert case["kind"] == "criminal_referral" and case["case_number"] == draft["case_number"]
    referral = get(web, UNIT, f"/api/v1/criminal-referrals/{case['referral_id']}").json()
    assert referral["state"] == "draft"
    assert disposed.json()["case_number"] in referral["summary"]      # linked back
    assert "referral" not in case                                     # no party data kept


def test_hotline_tip_and_port_alarm_reach_their_units(web):
    p = plate()
    tip = {"alert_id": f"12328-{p}", "kind": "illegal_operation_tip", "ticket": f"T{p}",
           "channel": "hotline_12328", "county": "ouhai", "plate": p, "summary": "黑车揽客"}
    r = post_alert(web, tip, client="hotline-12328")
    assert r.status_code == 201 and r.json()["handler_unit"] == "ouhai-team-1"
    port = {"alert_id": f"port-{p}", "kind": "port_alarm", "alarm": "no_valid_certificate",
            "vessel_name": "浙洞渔运88", "mmsi": "41" + str(uuid.uuid4().int)[:7],
            "berth": "ZYA-01", "urgency": "urgent"}
    r = post_alert(web, port, client="port-monitoring")
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    assert r.json()["handler_unit"] == "dongtou-port-shipping"
    listed = get(web, PORT, "/api/v1/alert-tasks").json()
    assert task_id in [t["id"] for t in listed]
    assert task_id not in [t["id"] for t in get(web, UNIT, "/api/v1/alert-tasks").json()]
    assert act(web, UNIT, task_id, "acknowledge").status_code == 403
    assert act(web, PORT, task_id, "acknowledge").status_code == 200


def test_missed_ack_escalates_to_the_county_centre(web):
    periods = {"overlimit_wim.normal.ack": "1m"}
    web.stop("alerts")
    web.start("alerts", ALERTS_PERIODS=json.dumps(periods), ALERTS_SWEEP_SECONDS="1")
    try:
        p = plate()
        r = post_alert(web, overlimit(f"wim-{p}-esc", p))
        assert r.status_code == 201, r.text
        task_id = r.json()["task_id"]

        def escalated():
            t = get(web, LUCHENG, f"/api/v1/alert-tasks/{task_id}").json()
            return t if t.get("escalations") else None
        task = wait_for(escalated, timeout=120, interval=1, message="escalation")
        assert [(e["miss"], e["level"], e["escalated_to_unit"]) for e in task["escalations"]] \
            == [("acknowledgement", "county", "lucheng-command")]
        assert task["state"] == "dispatched"
        row = tracked(web, task_id, "dispatched")
        wait_for(lambda: "escalate" in [s["command"] for s in tracked(
            web, task_id, "dispatched")["timeline"]], timeout=60, message="tracker escalate")
        assert row["kind"] == "alert_task"
    finally:
        web.stop("alerts")
        web.start("alerts")


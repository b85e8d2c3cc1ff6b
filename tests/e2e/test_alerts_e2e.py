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
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from shared.auth import Actor
from tests.conftest import ROOT, wait_for
from tests.e2e.test_console_e2e import browser  # noqa: F401 - the chromium fixture
from tests.e2e.test_gateway_e2e import web  # noqa: F401 - the stack with HTTP up
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


def tracked(stack, task_id: str, state: str) -> dict:
    def seen():
        r = get(stack, COORDINATOR, f"/api/v1/handoffs/{task_id}")
        return r.json() if r.ok and r.json()["state"] == state else None
    return wait_for(seen, timeout=60, message=f"tracker to show {task_id} {state}")


def test_over_limit_alert_to_closed_task_with_duplicates_and_bad_input(web):  # noqa: F811
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
    metrics = requests.get(f"{web.base_url}/metrics", timeout=30).text
    assert 'liandong_alerts_received_total{client="wim-platform",outcome="merged"}' in metrics
    stats = get(web, CITY, "/api/v1/alert-statistics", group_by="county").json()
    lucheng = next(r for r in stats["rows"] if r["county"] == "lucheng")
    assert lucheng["alerts"] >= 3 and lucheng["cases_opened"] >= 1


def test_speeding_bus_closed_with_a_criminal_referral_linked_both_ways(web):  # noqa: F811
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


def test_hotline_tip_and_port_alarm_reach_their_units(web):  # noqa: F811
    p = plate()
    tip = {"alert_id": f"12328-{p}", "kind": "illegal_operation_tip", "ticket": f"T{p}",
           "channel": "hotline_12328", "county": "ouhai", "plate": p, "summary": "黑车揽客"}
    r = post_alert(web, tip, client="hotline-12328")
    assert r.status_code == 201 and r.json()["handler_unit"] == "ouhai-team-1"
    # the car crossed into lucheng: ouhai's centre reassigns it to its neighbour
    tip_id = r.json()["task_id"]
    assert act(web, OUHAI, tip_id, "reassign", {"to_county": "taishun",
                                                "reason": "x"}).status_code == 403
    moved = act(web, OUHAI, tip_id, "reassign", {"to_county": "lucheng",
                                                 "reason": "车辆已驶入鹿城"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["counterpart_unit"] == "lucheng-team-1"
    assert act(web, UNIT, tip_id, "acknowledge").status_code == 200
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


def test_cli_replays_a_csv_of_alerts_and_works_a_task(web, tmp_path):  # noqa: F811
    p, q = plate(), plate()
    rows = ["alert_id,kind,plate,site,gross_weight_kg,limit_kg,excess_percent",
            f"c1-{p},overlimit_wim,{p},WIM-RA-01,60000,49000,22.4",
            f"c1-{p},overlimit_wim,{p},WIM-RA-01,60000,49000,22.4",      # repeated id
            f"c2-{p},overlimit_wim,{p},WIM-RA-01,61000,49000,24.5",      # same truck
            f"c3-{q},overlimit_wim,{q},WIM-RA-01,70000,49000,42.9",
            f"c4-{q},overlimit_wim,{q},nowhere,70000,49000,lots"]        # refused
    path = tmp_path / "alerts.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT,
                              env=web.env, capture_output=True, text=True, timeout=120)
    done = cli("alerts", "replay", str(path), "--client", "wim-platform")
    assert done.returncode == 2, done.stderr
    assert json.loads(done.stdout) == {"created": 2, "duplicate": 1, "merged": 1,
                                       "refused": 1}
    assert "line 6: refused" in done.stderr and "site" in done.stderr
    team = ("--as", "enforcement_unit", "--unit", "ruian-team-1", "--county", "ruian")
    listed = cli("alerts", "list", *team)
    assert listed.returncode == 0 and " x2" in listed.stdout       # the merged truck
    with web.rpc() as rpc:
        mine = [t for t in rpc.alerts.list(token(Actor("t", "enforcement_unit",
                                                       "ruian-team-1", "ruian")))
                if t["plate"] == p]
    assert len(mine) == 1 and mine[0]["repeats"] == 1
    acked = cli("alerts", "act", mine[0]["id"], "acknowledge", *team,
                "--payload", '{"note": "收到"}')
    assert acked.returncode == 0 and json.loads(acked.stdout)["state"] == "acknowledged"
    assert cli("alerts", "--help").returncode == 0


def test_missed_ack_escalates_to_the_county_centre(web):  # noqa: F811
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


def test_response_and_closure_times_feed_the_assessment_and_the_yield(web):  # noqa: F811
    """A known small set, backdated (development) so that its times are exact and no
    deadline is missed: lucheng — a truck (road; a repeat merged) closed with a case
    after 5 / 15 / 24 minutes to ack / on site / closed, a speeding bus (transport)
    closed after 3 / 9 / 14, a hotline tip just dispatched; ouhai — a truck on site
    after 10 / 20. The period is the instant they were dispatched: nothing else in it."""
    t0 = datetime.now(UTC).replace(microsecond=uuid.uuid4().int % 10**6) - timedelta(minutes=25)
    source = Actor("stats-platform", "alert_source", "stats-platform", None)
    teams = {"lucheng": UNIT, "ouhai": OUHAI_TEAM}
    centres = {"lucheng": LUCHENG, "ouhai": OUHAI}
    p = [plate() for _ in range(4)]
    admin = {"result": "case_opened", "case": {"kind": "administrative",
                                               "case_number": f"温交执罚〔2026〕{p[0]}号"}}
    loops = [
        ({**overlimit(f"st-{p[0]}", p[0])}, {"acknowledge": 5, "arrive": 15,
                                             "dispose": (20, admin), "close": 24}),
        ({"alert_id": f"st-{p[1]}", "kind": "key_vehicle_dynamic", "plate": p[1],
          "alarm": "speeding", "lat": 28.02, "lon": 120.66, "county": "lucheng",
          "speed_kmh": 90, "speed_limit_kmh": 80},
         {"acknowledge": 3, "arrive": 9, "dispose": (12, {"result": "warning"}), "close": 14}),
        ({"alert_id": f"st-{p[2]}", "kind": "illegal_operation_tip", "plate": p[2],
          "ticket": f"T-{p[2]}", "channel": "hotline_12328", "county": "lucheng",
          "summary": "群众举报非法营运"}, {}),
        ({**overlimit(f"st-{p[3]}", p[3]), "site": "WIM-OH-01"},
         {"acknowledge": 10, "arrive": 20}),
    ]
    with web.rpc() as rpc:
        for alert, steps in loops:
            task = rpc.alerts.intake(token(source), alert, at=t0.isoformat())
            assert task["outcome"] == "created", task
            if alert["alert_id"] == f"st-{p[0]}":
                merged = rpc.alerts.intake(token(source), {**alert, "alert_id": f"st-{p[0]}-2"},
                                           at=(t0 + timedelta(minutes=1)).isoformat())
                assert merged["outcome"] == "merged"
            for command, when in steps.items():
                minutes, payload = when if isinstance(when, tuple) else (when, {})
                actor = centres[task["county"]] if command == "close" else teams[task["county"]]
                rpc.alerts.act(token(actor), task["task_id"], command, payload, None,
                               (t0 + timedelta(minutes=minutes)).isoformat())
    period = {"start": t0.isoformat(), "end": (t0 + timedelta(milliseconds=1)).isoformat()}
    r = get(web, CITY, "/api/v1/assessment", **period)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["alerts_counted"] is True and result["actions"] == 0
    rows = {u["unit"]: u for u in result["units"]}
    assert set(rows) == {"lucheng-command", "ouhai-command"}
    metrics = ("alert_tasks", "alert_cases_opened", "median_alert_ack_minutes",
               "median_alert_arrive_minutes", "median_alert_close_minutes")
    assert [rows["lucheng-command"][m] for m in metrics] == [3, 1, 4.0, 12.0, 19.0]
    assert [rows["ouhai-command"][m] for m in metrics] == [1, 0, 10.0, 20.0, None]
    by_domain = {d["domain"]: d for d in rows["lucheng-command"]["alert_by_domain"]}
    assert [by_domain["road"][m] for m in metrics] == [1, 1, 5.0, 15.0, 24.0]
    assert [by_domain["transport"][m] for m in metrics] == [2, 0, 3.0, 9.0, 14.0]
    # no joint action in the period: the teams' time to arrive on site decides
    assert result["ranking"] == ["lucheng-command", "ouhai-command"]
    stats = get(web, CITY, "/api/v1/alert-statistics", group_by="county", **period).json()
    by_county = {r["county"]: r for r in stats["rows"]}
    assert set(by_county) == {"lucheng", "ouhai"}
    lucheng = by_county["lucheng"]
    assert (lucheng["alerts"], lucheng["tasks"], lucheng["closed"], lucheng["cases_opened"],
            lucheng["case_rate"]) == (4, 3, 2, 1, 0.3333)
    assert (by_county["ouhai"]["alerts"], by_county["ouhai"]["tasks"],
            by_county["ouhai"]["closed"]) == (1, 1, 0)
    # a county centre sees its own county's tasks only; the assessment is not its to read
    own = get(web, LUCHENG, "/api/v1/alert-statistics", group_by="county", **period).json()
    assert {r["county"] for r in own["rows"]} == {"lucheng"}
    assert get(web, LUCHENG, "/api/v1/assessment", **period).status_code == 403
    bad = get(web, CITY, "/api/v1/alert-statistics", start="yesterday")
    assert bad.status_code == 422 and "start" in bad.json()["errors"]


def test_console_alert_wall_shows_new_alerts_without_reload(web, browser):  # noqa: F811
    from tests.e2e.test_console_e2e import ARTIFACTS, Console
    c = Console(browser, web.base_url, web.backend)
    c.open("#/login")          # this stack's origin (the browser may be on the other's)
    c.sign_in("city")
    c.css("#nav a[data-nav=alerts]").click()
    c.visible("#alert-filters")
    c.visible("#alert-yield")           # the loop's yield per domain, under the wall
    p = plate()
    r = post_alert(web, {**overlimit(f"wall-{p}", p), "excess_percent": 62.0})
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    row = c.visible(f'#alert-tasks tr[data-task-id="{task_id}"]', timeout=30)   # no reload
    assert row.get_attribute("data-urgency") == "urgent" and "urgent" in row.get_attribute(
        "class")
    county = c.css('#county-map g[data-county="lucheng"]')
    assert int(county.get_attribute("data-open")) >= 1
    # a misbehaving site repeats the truck: merged, and the wall says it is a storm
    for i in range(20):
        post_alert(web, {**overlimit(f"wall-{p}-{i}", p), "excess_percent": 62.0})
    c.wait(lambda d: c.css("#storm-banner").is_displayed() and p in c.css(
        "#storm-banner").text, "the storm banner")
    assert "×21" in c.css(f'#alert-tasks tr[data-task-id="{task_id}"]').text
    c.choose(c.css("#filter-domain"), "港航")               # a filter hides the road alert
    c.wait(lambda d: not c.all(f'#alert-tasks tr[data-task-id="{task_id}"]'), "filtered")
    c.screenshot("alert-wall")
    c.d.set_window_size(390, 844)                           # phone width
    try:
        c.choose(c.css("#filter-domain"), "全部")
        c.visible(f'#alert-tasks tr[data-task-id="{task_id}"]')
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        c.d.save_screenshot(str(ARTIFACTS / f"console-{web.backend}-alert-wall-390.png"))
        wall = c.css("#alert-wall")
        assert c.d.execute_script("return arguments[0].getBoundingClientRect().right <= "
                                  "window.innerWidth + 1", wall), "the wall leaves the screen"
    finally:
        c.d.set_window_size(1440, 1000)

    c.sign_in("lucheng-team1")
    c.open(f"#/alerts/{task_id}")
    form = c.action_form("acknowledge")
    c.css('button[type="submit"]', form).click()
    c.wait(lambda d: c.all('.alert-detail[data-state="acknowledged"]'), "acknowledged")
    assert c.js_errors() == []

"""`liandong demo` against the running stack, as a new user would try it: every demo user
(deploy/users.demo.yaml) signs in over HTTP and finds work in 待办 (GET /api/v1/todo),
some of it overdue; every kind of handoff is there, in lucheng and ouhai too, with
backdated steps; a second run adds nothing."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import requests
import yaml

from shared.auth import Actor
from shared.demo import ALERT_SCENARIOS
from tests.conftest import ROOT, wait_for
from tests.helpers import CITY, COORDINATOR, token

pytestmark = pytest.mark.e2e

USERS = yaml.safe_load((ROOT / "deploy" / "users.demo.yaml").read_text())["users"]


def demo(stack, count: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "shared.cli", "demo", "--count", str(count)],
                         cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def everything(stack) -> list[dict]:
    with stack.rpc() as rpc:
        return rpc.tracker.board(token(COORDINATOR), open_only=False, limit=5000)


def todo_of(stack, username: str) -> list[dict]:
    login = requests.post(stack.base_url + "/api/v1/login", timeout=10,
                          json={"username": username, "password": "demo"})
    assert login.status_code == 200, login.text
    got = requests.get(stack.base_url + "/api/v1/todo", timeout=30,
                       headers={"Authorization": f"Bearer {login.json()['token']}"})
    assert got.status_code == 200, got.text
    return got.json()


def test_every_demo_user_has_work(stack):
    demo(stack, 12)      # (another test may have seeded first: then it adds nothing)
    # (other tests' handoffs, alert tasks among them, may be on the board too)
    kinds = {"criminal_referral", "market_referral", "joint_action", "assistance_request"}
    rows = wait_for(lambda: (found := everything(stack)) and kinds <= {r["kind"] for r in found}
                    and found, timeout=60, message="the demo tracked")
    assert {"lucheng", "ouhai"} <= {r["county"] for r in rows}
    # backdated: created over weeks, not all "now"
    oldest = min(datetime.fromisoformat(r["created_at"]) for r in rows)
    assert oldest < datetime.now(timezone.utc) - timedelta(days=7)
    assert any(r["overdue"] for r in rows if r["open"])
    for username in USERS:
        work = wait_for(lambda u=username: todo_of(stack, u), timeout=30,
                        message=f"{username}'s 待办")
        assert all(r["open"] for r in work), username
        dues = [r["deadline"]["due"] for r in work if r.get("deadline")]
        assert dues == sorted(dues), f"{username}: nearest deadline first"
        if USERS[username]["role"] not in ("coordinator", "operator"):
            assert all(r["todo"] for r in work), (username, work[0])
    police = todo_of(stack, "police-lucheng")    # the board's rule: its own county's cases
    assert {r["county"] for r in police if r["kind"] == "criminal_referral"} == {"lucheng"}
    check_alert_loop(stack)
    # a second run adds nothing
    with stack.rpc() as rpc:
        counted = len(rpc.police_handoff.list(token(COORDINATOR), limit=1000))
        tasks = demo_tasks(rpc)
        demo(stack, 12)
        assert len(rpc.police_handoff.list(token(COORDINATOR), limit=1000)) == counted
        again = demo_tasks(rpc)
        assert {t["id"]: t["repeats"] for t in again} == {t["id"]: t["repeats"] for t in tasks}


def demo_tasks(rpc) -> list[dict]:
    """The demo's alert tasks (other tests' may be there too), as the city centre sees them."""
    return [t for t in rpc.alerts.list(token(CITY), kind="alert_task", limit=1000)
            if t["source"]["alert_id"].startswith("demo-")]


def check_alert_loop(stack) -> None:
    """线上+线下联动: the city centre's wall has alerts of every kind and domain, sent
    through the intake; the home county centres have open and overdue tasks; the teams
    and the port & shipping unit have tasks in their 待办 at every stage; one task closed
    with a criminal referral opened, linked to it."""
    with stack.rpc() as rpc:
        tasks = demo_tasks(rpc)
        assert len(tasks) == len(ALERT_SCENARIOS)
        assert {t["alert_kind"] for t in tasks} == {
            "overlimit_wim", "key_vehicle_dynamic", "illegal_operation_tip", "port_alarm"}
        assert {t["domain"] for t in tasks} == {"road", "transport", "port"}
        assert {t["state"] for t in tasks} == {
            "dispatched", "acknowledged", "on_site", "disposed", "closed"}
        criminal = [t for t in tasks if (t.get("case") or {}).get("kind") == "criminal_referral"]
        assert len(criminal) == 1 and criminal[0]["state"] == "closed"
        referral = rpc.police_handoff.get(token(COORDINATOR), criminal[0]["case"]["referral_id"])
        assert referral["case_number"] == criminal[0]["case"]["case_number"]
        stats = {r["domain"]: r for r in rpc.alerts.statistics(token(CITY), "domain")["rows"]}
        assert stats["road"]["cases_opened"] >= 1 and stats["port"]["cases_opened"] >= 1
        assert stats["transport"]["cases_opened"] >= 1
        for county in ("lucheng", "ouhai"):
            centre = Actor(f"cmd-{county}", "county_command", f"{county}-command", county)
            expected = {t["case_number"]: t["state"] for t in tasks
                        if t["county"] == county and t["state"] != "closed"}

            def board(c=centre, expected=expected):
                rows = [r for r in rpc.tracker.board(token(c), open_only=True, limit=5000)
                        if r["case_number"] in expected]
                return rows if {r["case_number"]: r["state"] for r in rows} == expected \
                    else None
            rows = wait_for(board, timeout=60, message=f"{county}'s alert tasks tracked")
            assert {r["county"] for r in rows} == {county}
            assert any(r["overdue"] for r in rows), county
            assert any(not r["overdue"] for r in rows), county
    team = wait_for(lambda: {r["state"] for r in todo_of(stack, "lucheng-team1")
                             if r["kind"] == "alert_task"} >= {
        "dispatched", "acknowledged", "on_site"} or None, timeout=60,
        message="lucheng-team-1's alert tasks at every stage in its 待办")
    assert team
    centre = {r["state"] for r in todo_of(stack, "lucheng-command") if r["kind"] == "alert_task"}
    assert "disposed" in centre          # to close
    port = wait_for(lambda: {r["state"] for r in todo_of(stack, "dongtou-port")
                             if r["kind"] == "alert_task"} or None, timeout=60,
                    message="the port & shipping unit's alert tasks")
    assert {"dispatched", "on_site"} <= port

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

from tests.conftest import ROOT, wait_for
from tests.helpers import COORDINATOR, token

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
    # a second run adds nothing
    with stack.rpc() as rpc:
        counted = len(rpc.police_handoff.list(token(COORDINATOR), limit=1000))
        demo(stack, 12)
        assert len(rpc.police_handoff.list(token(COORDINATOR), limit=1000)) == counted

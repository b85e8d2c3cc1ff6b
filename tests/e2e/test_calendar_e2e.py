"""Issue 19 end to end: a referral received just before the 2027 Spring Festival (test
clock) gets the review deadline of the provisional calendar; the tracker, the API and
/metrics warn that 2027 has no official arrangement; once the notice file is added,
``liandong calendar apply`` moves the open deadline, the board follows, no alert is
raised. Own stack (SQLite) started with LIANDONG_CLOCK and LIANDONG_CALENDAR_DIR."""
from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from sqlalchemy import select

from shared import calendar as cal
from tests.conftest import ROOT, Stack, vhost, wait_for
from tests.e2e.test_console_e2e import Console, browser  # noqa: F401 - the fixture
from tests.e2e.test_gateway_e2e import Client
from tests.e2e.test_police_handoff_e2e import Flow
from tests.helpers import COORDINATOR, token

pytestmark = pytest.mark.e2e

CLOCK = "2027-02-04T09:00:00+08:00"      # Thursday, the day before Spring Festival eve
FIXTURE_2027 = ROOT / "tests" / "calendar" / "2027.yaml"


def end_of(y, m, d) -> datetime:
    return datetime(y, m, d, 23, 59, 59, tzinfo=cal.TZ).astimezone(UTC)


class ClockStack(Stack):
    def __init__(self, amqp_uri: str, tmp: Path, extra: dict):
        super().__init__("sqlite", amqp_uri, tmp, None)
        self.extra = extra

    @property
    def env(self) -> dict:
        return {**super().env, **self.extra}


@pytest.fixture(scope="module")
def future(servers, tmp_path_factory):
    host, port, _ = servers
    tmp = tmp_path_factory.mktemp("calendar-stack")
    notices = tmp / "calendar"
    notices.mkdir()
    for f in cal.DEFAULT_CALENDAR_DIR.glob("*.yaml"):
        shutil.copy(f, notices)
    with vhost(f"liandong-test-cal-{uuid.uuid4().hex[:8]}", host.endswith("@127.0.0.1")) as vh:
        s = ClockStack(f"amqp://{host}:{port}/{quote(vh, safe='')}", tmp,
                       {"LIANDONG_CLOCK": CLOCK, "LIANDONG_CALENDAR_DIR": str(notices)})
        s.notices = notices
        try:
            from shared.cli import SERVICES
            for name in SERVICES:
                s.start(name)
            wait_for(lambda: _up(s.base_url), message="gateway HTTP")
            yield s
        finally:
            s.shutdown()


def _up(base):
    try:
        return requests.get(base + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def board_row(web: Client, case_number: str, step: int) -> dict:
    def found():
        rows = web.get("/api/v1/handoffs", q=case_number).json()
        return rows[0] if rows and rows[0]["step"] >= step else None
    return wait_for(found, message=f"board row of {case_number} at step {step}")


def test_console_banner_for_the_coordinator_while_2027_is_provisional(future, browser):  # noqa: F811
    """Runs first (the stack's 2027 is still provisional): the coordinator sees the
    warning at desktop and phone width; an enforcement unit does not."""
    c = Console(browser, future.base_url, "calendar")
    c.sign_in("coordinator")
    banner = c.visible("#calendar-banner")
    assert "2027" in banner.text and "liandong calendar apply" in banner.text
    c.screenshot("calendar-banner")
    browser.set_window_size(390, 844)
    try:
        c.open("#/board")
        banner = c.visible("#calendar-banner")
        assert banner.size["width"] <= 390 and "2027" in banner.text
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth")
        assert not overflow
    finally:
        browser.set_window_size(1440, 1000)
    c.sign_in("lucheng-team1")
    assert not c.css("#calendar-banner").is_displayed()
    assert c.js_errors() == []


def test_provisional_2027_then_the_notice_moves_the_open_deadline(future):
    web = Client(future.base_url, COORDINATOR)
    # a 3-day police review received Thu 2027-02-04: the last day Sun 02-07 is in the
    # Spring Festival (eve 02-05 .. 02-08, make-up days 02-09, 02-10) -> Thu 02-11
    with future.rpc() as rpc:
        flow = Flow(rpc)
        rec = flow.to_receipted()
    assert rec["deadline"]["id"] == "review_decision"
    assert datetime.fromisoformat(rec["deadline"]["due"]) == end_of(2027, 2, 11)
    case = rec["case_number"]
    row = board_row(web, case, rec["step"])
    assert datetime.fromisoformat(row["deadline"]["due"]) == end_of(2027, 2, 11)
    assert row["overdue"] is False

    # the warning: 2027 (this year, on the test clock) has no official arrangement
    status = web.get("/api/v1/calendar").json()
    assert status["provisional_years"] == [2027] and "2027" in status["warning"]
    assert status["years"][0]["source"] == "provisional"
    assert 'liandong_calendar_provisional_year{year="2027"} 1.0' in requests.get(
        future.base_url + "/metrics", timeout=30).text
    with future.rpc() as rpc:
        assert rpc.tracker.health()["calendar"]["provisional_years"] == [2027]
    assert Client(future.base_url).get("/api/v1/calendar").status_code == 401

    # the notice is published (fictitious fixture: rest 02-05 .. 02-12) and applied
    shutil.copy(FIXTURE_2027, future.notices / "2027.yaml")
    out = subprocess.run([sys.executable, "-m", "shared.cli", "calendar", "apply", "2027"],
                         cwd=ROOT, env=future.env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert case in out.stdout and "review_decision" in out.stdout
    assert "1 deadline change(s) recorded" in out.stdout

    row = board_row(web, case, rec["step"] + 1)
    assert datetime.fromisoformat(row["deadline"]["due"]) == end_of(2027, 2, 15)
    timeline = web.get(f"/api/v1/handoffs/{flow.id}").json()["timeline"]
    last = timeline[-1]
    assert last["command"] == "recompute_deadlines"
    assert last["type"] == "criminal_referral.deadline_recomputed.v1"
    details = last["data"]["details"]
    assert "国办发明电〔2026〕TEST号" in details["reason"]
    assert [c["deadline_id"] for c in details["changes"]] == ["review_decision"]
    assert last["data"]["state"] == rec["state"]       # a recomputation, not a transition

    # a second apply finds nothing to move; the warning is gone; no alert was raised
    again = subprocess.run([sys.executable, "-m", "shared.cli", "calendar", "apply"],
                           cwd=ROOT, env=future.env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0 and "0 deadline change(s)" in again.stdout
    wait_for(lambda: web.get("/api/v1/calendar").json()["provisional_years"] == [],
             message="tracker to see the notice file")
    from services.tracker.store import alerts
    with future.store("tracker").session() as s:
        # the 24-hour transfer clock may legitimately be 'approaching' if a sweep ran
        # between approval and transfer; the claim is about the deadline that moved
        raised = s.execute(select(alerts).where(
            alerts.c.handoff_id == flow.id,
            alerts.c.deadline_id == "review_decision")).all()
    assert raised == []
    with future.rpc() as rpc:
        assert rpc.police_handoff.verify_audit(token(COORDINATOR), flow.id)["problems"] == {}

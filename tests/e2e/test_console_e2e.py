"""The web console in a real headless Chromium (Debian's chromium and chromium-driver,
driven by selenium) against the real stack: an enforcement unit drafts a referral and
requests approval through the console (a bad field is reported next to it), the agency
head sees it arrive on the board and approves it, the coordinator's board shows the new
state and deadline, another county's police sees nothing; a county centre acknowledges a
joint action in the command view and dispatches one to its own enforcement teams; a
missed acknowledgement escalates on the city centre's open page (the command service on
a test clock); live updates reach 待办 and pages without a reload; the statistics charts
draw. Screenshots go to var/artifacts/ (desktop and 390 px phone for these flows).
Skipped only when chromium is not installed (`make debs` installs it)."""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pika
import pytest
import requests
import yaml

from services.police_handoff import domain
from services.police_handoff import store as ph_store
from shared import envelope as env
from shared import signing
from shared.auth import Actor
from tests.conftest import ROOT, wait_for
from tests.helpers import (
    CITY,
    COORDINATOR,
    HEAD,
    LUCHENG,
    OUHAI,
    RESULT,
    TRANSFER,
    UNIT,
    VALID_ID,
    attach_required_files,
    dispatch_payload,
    draft_payload,
    token,
)

pytestmark = pytest.mark.e2e
LUCHENG_TEAM_2 = Actor("officer-wang", "enforcement_unit", "lucheng-team-2", "lucheng")

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "var" / "artifacts"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1440,1000",
                  "--lang=zh-CN")
WAIT = 30
PHONE_WIDTH = 390
USERS = list(yaml.safe_load((ROOT / "deploy" / "users.demo.yaml").read_text())["users"])


def _up(base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _raw_get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def web(stack):
    wait_for(lambda: _up(stack.base_url), message="gateway HTTP")
    return stack


@pytest.fixture(scope="module")
def browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(f"Debian's chromium is not installed ({', '.join(missing)} missing); "
                    "`make debs` installs it (apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="liandong-chromium-")
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    downloads = Path(tempfile.mkdtemp(prefix="liandong-downloads-"))
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def row_of(case_number: str, state: str) -> str:
    """The board row's selector: the board re-renders as live updates arrive, so tests
    read and click the row through its selector (an element found earlier may be gone)."""
    return f'tr[data-case-number="{case_number}"][data-state="{state}"]'


class Console:
    """The console as a user drives it: sign in, click, fill, wait, screenshot."""

    def __init__(self, driver, base_url: str, backend: str):
        self.d = driver
        self.base = base_url
        self.backend = backend

    # ------------------------------------------------------------------ basics
    def css(self, selector, root=None):
        from selenium.webdriver.common.by import By
        return (root or self.d).find_element(By.CSS_SELECTOR, selector)

    def all(self, selector, root=None):
        from selenium.webdriver.common.by import By
        return (root or self.d).find_elements(By.CSS_SELECTOR, selector)

    def wait(self, predicate, message: str, timeout: float = WAIT):
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        def safe(driver):
            try:
                return predicate(driver)
            except StaleElementReferenceException:   # the view re-rendered meanwhile
                return False
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.2).until(safe, message)
        except TimeoutException:
            shot = self.screenshot(f"failure-{int(time.time())}")   # the page as it was
            page = self.d.execute_script("return document.body.innerText")[:3000]
            raise AssertionError(f"timed out waiting for {message}; screenshot {shot}; "
                                 f"page:\n{page}") from None

    def visible(self, selector: str, timeout: float = WAIT):
        return self.wait(lambda d: next((e for e in self.all(selector) if e.is_displayed()),
                                        False), f"{selector} visible", timeout)

    def click(self, selector: str, timeout: float = WAIT, text: str | None = None):
        """Click the visible element (with this text), again if the view re-rendered it
        in between (the element found, then replaced by the next render, is stale)."""
        def clicked(_):
            e = next((e for e in self.all(selector)
                      if e.is_displayed() and (text is None or e.text == text)), None)
            if e is None:
                return False
            e.click()
            return True
        self.wait(clicked, f"{selector} clicked", timeout)

    def open(self, route: str):
        self.d.get(f"{self.base}/{route}")

    def fill(self, element, value: str):
        element.clear()
        element.send_keys(value)

    def choose_value(self, element, value: str):
        from selenium.webdriver.support.ui import Select
        Select(element).select_by_value(value)

    def choose(self, element, text: str):
        from selenium.webdriver.support.ui import Select
        Select(element).select_by_visible_text(text)

    def phone(self, on: bool = True):
        """A 390 px wide phone (device metrics, as Chromium's device mode does) or back."""
        if on:
            self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": PHONE_WIDTH, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        else:
            self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"console-{self.backend}-{name}.png"
        height = self.d.execute_script("return document.documentElement.scrollHeight")
        self.d.set_window_size(1440, min(max(int(height) + 120, 900), 4000))
        time.sleep(0.3)
        self.d.save_screenshot(str(path))
        self.d.set_window_size(1440, 1000)
        return path

    def js_errors(self) -> list[str]:
        """Uncaught errors in the page (failed API calls answered 4xx are expected)."""
        return [e["message"] for e in self.d.get_log("browser")
                if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]

    # ------------------------------------------------------------------ session
    def sign_in(self, username: str):
        # the page may still be another stack's console (a module-scoped browser outlives
        # the previous backend's gateway): sign out only on this stack's own page
        here = self.d.current_url.startswith(self.base.rstrip("/") + "/")
        if here and self.all("#logout") and self.css("#logout").is_displayed():
            self.css("#logout").click()
        else:
            self.open("#/login")
        self.fill(self.visible("#username"), username)
        self.fill(self.css("#password"), "demo")
        self.css("#login-submit").click()
        self.visible("#nav a[data-nav=todo]")       # 待办 is the first page for everyone
        self.wait(lambda d: self.all("#todo-list .todo-item, #todo-empty"), "待办")

    def board_row(self, case_number: str, state: str | None = None, timeout: float = WAIT):
        """Wait for the board to show the case (in the state), refreshing as a user would."""
        selector = f'tr[data-case-number="{case_number}"]' + (
            f'[data-state="{state}"]' if state else "")
        if not self.all("#filter-q"):
            self.css("#nav a[data-nav=board]").click()
        self.fill(self.visible("#filter-q"), case_number)

        def shown(_):
            rows = self.all(selector)
            if rows:
                return rows[0]
            self.css("#board-refresh").click()
            time.sleep(0.3)
            return False
        return self.wait(shown, f"{selector} on the board", timeout)

    def action_form(self, command: str):
        details = self.visible(f'details[data-action="{command}"]')
        if details.get_attribute("open") is None:
            self.css("summary", details).click()
        return self.css("form", details)

    def field(self, form, name: str, tag: str = "input"):
        return self.css(f'[data-field="{name}"] {tag}', form)

    def create_form(self, command: str):
        """The form of a 指挥调度 creation panel (下达联合行动, 请求协查), opened."""
        box = self.visible(f'details[data-create="{command}"]')
        if box.get_attribute("open") is None:
            self.css("summary", box).click()
        return self.css("form", box)

    def mark(self) -> str:
        """Mark the loaded page: ``not_reloaded`` is true while the same page is on
        screen (a reload or navigation loses the mark)."""
        mark = uuid.uuid4().hex
        self.d.execute_script("window.__liandongMark = arguments[0]", mark)
        return mark

    def not_reloaded(self, mark: str) -> bool:
        return self.d.execute_script("return window.__liandongMark") == mark

    def shots(self, name: str) -> list[Path]:
        """The page at desktop width (whole page) and on a 390 px phone."""
        desktop = self.screenshot(name)
        self.phone(True)
        try:
            time.sleep(0.3)
            phone = ARTIFACTS / f"console-{self.backend}-{name}-phone.png"
            self.d.save_screenshot(str(phone))
            width = self.d.execute_script("return document.documentElement.scrollWidth")
            assert width <= PHONE_WIDTH, (name, width)      # nothing scrolls sideways
        finally:
            self.phone(False)
        return [desktop, phone]


@pytest.fixture(scope="module")
def console(browser, web):
    return Console(browser, web.base_url, web.backend)


def test_console_is_served_with_safe_static_routes(web):
    index = requests.get(web.base_url + "/", timeout=10)
    assert index.status_code == 200 and index.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in index.headers["Content-Security-Policy"]
    assert '<script type="module" src="/static/js/app.js">' in index.text
    types = {"/static/js/app.js": "text/javascript", "/static/console.css": "text/css",
             "/static/favicon.svg": "image/svg+xml"}
    for path, content_type in types.items():
        r = requests.get(web.base_url + path, timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(content_type), path
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/static/../service.py", "/static/js/../../api.py", "/static/..%2fservice.py",
                 "/static/%2e%2e/%2e%2e/requirements.txt", "/static/js/app.js%00.css",
                 "/static/.hidden.js", "/static/missing.js"):
        status, body = _raw_get(web.http_port, path)   # as sent: no client normalising
        error = json.loads(body)                          # a JSON error, never the file
        assert (status, error["code"]) in {(404, "not_found"), (422, "invalid_input")}, (
            path, body)                                   # 422: a NUL in the path
    payloads = requests.get(web.base_url + "/api/v1/procedures/criminal_referral/payloads",
                            timeout=10).json()["commands"]
    assert payloads["request_approval"]["required"] == ["transfer_report"]
    assert "DocumentSchema" in payloads["transfer"]["$defs"]
    paths = requests.get(web.base_url + "/api/v1/openapi.json", timeout=10).json()["paths"]
    assert {"/", "/static/{path}", "/api/v1/joint-actions/{id}",
            "/api/v1/procedures/{kind}/payloads"} <= set(paths)


@pytest.fixture(scope="module")
def overdue_referral(web) -> str:
    """A referral approved two days ago and never transferred (24 h, art. 5), told to the
    tracker by its events, one at a time (each applied before the next is sent): the
    board must show it overdue."""
    number = f"LATE-{uuid.uuid4().hex[:6].upper()}"
    then = datetime.now(timezone.utc) - timedelta(days=2)
    rec, s1 = domain.create("draft", UNIT, draft_payload(number), then)
    rec2, s2 = domain.act(rec, "request_approval", UNIT, {"transfer_report": "r"}, then)
    rec3, s3 = domain.act(rec2, "approve", HEAD, {}, then)
    channel = pika.BlockingConnection(pika.URLParameters(web.amqp_uri)).channel()
    try:
        for r, s in ((rec, s1), (rec2, s2), (rec3, s3)):
            e = signing.sign(env.make_envelope(
                event_type=s["event"], source=ph_store.SOURCE, subject=r["id"],
                data=domain.event_payload(r, s), sequence=r["step"]), web.tmp / "keys")
            channel.basic_publish(env.EXCHANGE, e["type"], env.encode(e))
            wait_for(lambda step=r["step"]: _tracked_step(web.base_url, rec["id"]) >= step,
                     message=f"the tracker at step {r['step']}")
    finally:
        channel.connection.close()
    return number


def _tracked_step(base: str, handoff_id: str) -> int:
    r = requests.get(f"{base}/api/v1/handoffs/{handoff_id}", timeout=10,
                     headers={"Authorization": f"Bearer {token(COORDINATOR)}"})
    return r.json()["step"] if r.status_code == 200 else 0


def test_referral_through_the_console_changes_every_board(console, overdue_referral):
    c = console
    number = f"WEB-{uuid.uuid4().hex[:6].upper()}"

    # the enforcement unit drafts the referral in the console
    c.sign_in("lucheng-team1")
    assert c.css(".who [data-role]").get_attribute("data-role") == "enforcement_unit"
    c.css("#nav a[data-nav=new]").click()
    draft = c.css("form", c.visible('details[data-create="draft"]'))
    c.fill(c.field(draft, "case_number"), number)
    c.fill(c.field(draft, "plate"), "浙C8W123")
    # the facts in typed fields of the chosen judgment rule (no JSON), the recommendation
    # beside them as the officer types: 50 seats, 63 aboard is under the filing standard
    # for a large bus (15 over), 65 is over it
    c.choose_value(c.css("#facts-rule", draft), "passenger_overcapacity")
    c.choose_value(c.visible("#fact-vehicle_category"), "passenger_bus")
    c.choose_value(c.css("#fact-service_type"), "passenger_transport")
    c.fill(c.css("#fact-rated_seats"), "50")
    c.fill(c.css("#fact-passengers"), "63")
    c.visible("#facts-advice #no-recommendation")
    c.fill(c.css("#fact-passengers"), "65")
    advice = c.visible('#facts-advice [data-rule="passenger_overcapacity"]')
    assert "危险驾驶罪" in advice.text and "第一百三十三条之一" in advice.text
    assert "15 >= 15" in advice.text                     # how the threshold was crossed
    assert not c.all('[data-field="facts"] textarea', draft)
    party = c.css('fieldset[data-field="parties"] .row', draft)
    c.fill(c.field(party, "name"), "张三")
    c.choose(c.field(party, "id_type", "select"), "居民身份证")
    c.fill(c.field(party, "id_number"), VALID_ID)
    for row, (name, badge) in zip(c.all('fieldset[data-field="team"] .row', draft),
                                  (("李明", "33030001"), ("王强", "33030002")), strict=True):
        c.fill(c.field(row, "name"), name)
        c.fill(c.field(row, "badge_number"), badge)
    # no summary: the API's 422 is shown next to the field, nothing is created
    c.css('button[type="submit"]', draft).click()
    error = c.wait(lambda d: c.css('[data-field="summary"] .field-error', draft).text,
                   "the summary's error")
    assert error and c.css(".form-error", draft).is_displayed()
    assert c.css('[data-field="summary"] textarea', draft).get_attribute("aria-invalid") == "true"
    c.fill(c.field(draft, "summary", "textarea"), "班线客车严重超员：核载50人，实载65人")
    c.css('button[type="submit"]', draft).click()
    c.wait(lambda d: c.all("#case-number") and c.css("#case-number").text == number,
           "the new referral's page")
    page = c.css(".handoff")
    assert page.get_attribute("data-state") == "draft"
    checklist = c.all("#documents li")
    assert len(checklist) == 5 and all("todo" in li.get_attribute("class") for li in checklist)

    # ... and requests approval with the action form of its next step
    form = c.action_form("request_approval")
    c.fill(c.field(form, "transfer_report", "textarea"), "专案组核实：涉嫌危险驾驶罪，建议移送公安")
    c.css('button[type="submit"]', form).click()
    c.wait(lambda d: c.all('.handoff[data-state="approval_requested"]'), "approval requested")
    assert c.visible("#flash").text
    handoff_id = c.css(".handoff").get_attribute("data-handoff-id")
    c.css("#nav a[data-nav=board]").click()
    c.board_row(number, "approval_requested")

    # the agency head sees it arrive, with the head's deadline, and approves it
    c.sign_in("lucheng-head")
    row = c.board_row(number, "approval_requested") and row_of(number, "approval_requested")
    c.wait(lambda d: "负责人审批" in c.css(row).text, "the head's step on the row")
    c.click(f"{row} a.case")
    form = c.action_form("approve")
    assert [d.get_attribute("data-action") for d in c.all("#actions details")] == [
        "approve", "refuse"]
    c.fill(c.field(form, "opinion", "textarea" if c.all('[data-field="opinion"] textarea', form)
                   else "input"), "同意移送")
    c.css('button[type="submit"]', form).click()
    c.wait(lambda d: c.all('.handoff[data-state="approved"]'), "approved")
    c.css("#nav a[data-nav=board]").click()
    c.board_row(number, "approved")

    # the coordinator's board shows the new state and the 24-hour transfer deadline
    c.sign_in("coordinator")
    row = c.board_row(number, "approved") and row_of(number, "approved")
    c.wait(lambda d: "批准后移送公安" in c.css(row).text and               # under 24 h left
           "soon" in c.css(f"{row} td.left").get_attribute("class"), "the transfer deadline")
    c.css("#filter-q").clear()
    c.css("#board-refresh").click()
    c.wait(lambda d: d.execute_script("return location.hash") == "#/board", "the whole board")
    late = c.board_row(overdue_referral, "approved") and row_of(overdue_referral, "approved")
    c.wait(lambda d: "overdue" in c.css(late).get_attribute("class") and   # in red, time
           "超期" in c.css(f"{late} td.left").text, "the overdue referral")  # past due
    c.css("#filter-q").clear()
    c.css("#board-refresh").click()
    c.wait(lambda d: len(c.all("#board-table tbody tr")) >= 2, "the whole board")
    c.screenshot("board")
    c.css('[data-export="csv"]').click()                 # export with the user's token
    export = c.wait(lambda d: next(d.downloads.glob("handoffs*.csv"), False), "the CSV export")
    assert number in export.read_text(encoding="utf-8-sig")
    c.open(f"#/handoff/criminal_referral/{handoff_id}")
    c.wait(lambda d: len(c.all("#timeline li")) == 3, "three steps on the timeline")
    assert c.all("#no-actions")                    # a coordinator watches, it does not act
    c.screenshot("handoff")

    # the same board in English
    c.css("#lang").click()
    c.wait(lambda d: c.css("#nav a[data-nav=board]").text == "Board", "English labels")
    c.open("#/board")
    row = c.board_row(number, "approved") and row_of(number, "approved")
    c.wait(lambda d: "Approved" in c.css(row).text and
           "Transfer after approval" in c.css(row).text, "the row in English")
    c.screenshot("board-en")
    c.css("#lang").click()
    c.wait(lambda d: c.css("#nav a[data-nav=board]").text == "案件看板", "Chinese again")

    # another county's police is shown nothing the API does not return
    c.sign_in("police-ouhai")
    c.css("#nav a[data-nav=board]").click()
    c.fill(c.visible("#filter-q"), number)
    c.css("#board-refresh").click()
    c.visible("#board-empty")
    c.open(f"#/handoff/criminal_referral/{handoff_id}")
    c.visible(".error-panel")
    assert "403" in c.css(".error-panel").text
    assert c.js_errors() == []


def test_joint_action_acknowledged_in_the_command_view(console, web):
    c = console
    with web.rpc() as rpc:
        action = rpc.command.create(token(CITY), "dispatch", dispatch_payload(
            datetime.now(timezone.utc), recipients=("lucheng-command", "ouhai-command"),
            title="温州南站周边非法营运整治（控制台测试）"))

    c.sign_in("lucheng-command")
    c.css("#nav a[data-nav=command]").click()
    # the command view re-renders as live updates arrive: every check is made on the
    # elements as they are now (a wait retries an element a re-render replaced)
    row = f'#joint-actions tr[data-handoff-id="{action["id"]}"]'
    c.wait(lambda d: "0/2" in c.visible(row).text, "the action, 0/2 acknowledged")
    c.click(f"{row} a.case")
    c.visible('#recipients tr[data-recipient="lucheng-command"][data-status="dispatched"]')
    form = c.action_form("acknowledge")
    c.fill(c.field(form, "note", "textarea" if c.all('[data-field="note"] textarea', form)
                   else "input"), "收到，已安排两个中队")
    c.css('button[type="submit"]', form).click()
    c.wait(lambda d: c.all('#recipients tr[data-recipient="lucheng-command"]'
                           '[data-status="acknowledged"]'), "acknowledged")

    c.sign_in("city")
    c.open(f"#/command/joint_action/{action['id']}")
    c.visible('#recipients tr[data-recipient="lucheng-command"][data-status="acknowledged"]')
    c.visible('#recipients tr[data-recipient="ouhai-command"][data-status="dispatched"]')
    c.screenshot("joint-action")
    c.open("#/command")
    c.wait(lambda d: "1/2" in c.visible(row).text, "the action, 1/2 acknowledged")
    assert c.js_errors() == []


def test_statistics_charts(console, overdue_referral):
    c = console
    c.sign_in("coordinator")
    c.css("#nav a[data-nav=stats]").click()
    c.wait(lambda d: len(c.all(".stats-body .panel")) == 4, "four chart panels")
    assert len(c.all("svg.chart")) >= 3             # the filing rate needs police decisions
    assert int(c.css("#stats-tiles .tile.overdue .tile-value").text) >= 1
    assert int(c.css("#stats-tiles .tile-value").text) >= 1
    assert c.all("svg.chart rect.bar-overdue")      # the overdue referral, in red
    c.screenshot("statistics")
    assert c.js_errors() == []


def test_second_factor_and_sign_out_in_the_console(console, web):
    """A coordinator with TOTP: the console asks for the code after the password, signs
    in with it, and signing out revokes the token (the API refuses it afterwards)."""
    import subprocess
    import sys

    import pyotp
    name = f"coord-{uuid.uuid4().hex[:8]}"
    env = {**web.env, "LIANDONG_NEW_PASSWORD": "Str0ng-enough-pass"}

    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "shared.cli", "users", *args], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout
    cli("add", name, "--role", "coordinator", "--unit", "wenzhou-coordination")
    secret = json.loads(cli("totp", name))["totp_secret"]
    if console.all("#logout") and console.css("#logout").is_displayed():
        console.css("#logout").click()
    else:
        console.open("#/login")
    console.fill(console.visible("#username"), name)
    console.fill(console.css("#password"), "Str0ng-enough-pass")
    console.css("#login-submit").click()
    console.fill(console.visible("#otp"), pyotp.TOTP(secret).now())
    console.css("#login-submit").click()
    console.visible("#nav a[data-nav=board]")
    bearer = json.loads(console.d.execute_script(
        "return sessionStorage.getItem('liandong.session')"))["token"]
    me = requests.get(f"{web.base_url}/api/v1/me", timeout=10,
                      headers={"Authorization": f"Bearer {bearer}"})
    assert me.status_code == 200 and me.json()["user_id"] == name
    console.screenshot("signed-in-with-totp")
    console.css("#logout").click()
    console.visible("#username")
    wait_for(lambda: requests.get(f"{web.base_url}/api/v1/me", timeout=10, headers={
        "Authorization": f"Bearer {bearer}"}).status_code == 401, message="token revoked")
    assert console.js_errors() == []


def test_case_file_upload_transfer_and_the_police_open_it(console, web):
    """The 案卷 panel: the enforcement unit uploads the transfer letter (PDF) with the
    progress bar, files a generated form, uploads the other papers the checklist asks for
    before a transfer, the case is transferred, the police sign in and
    open the letter inline; at desktop and at 390 px phone width."""
    from tests.helpers import TRANSFER
    c = console
    case_number = f"CF-{uuid.uuid4().hex[:6]}"
    with web.rpc() as rpc:
        rec = rpc.police_handoff.create(token(UNIT), "draft", draft_payload(case_number))
    pdf = Path(tempfile.mkdtemp()) / "移送书.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% console test\n" + os.urandom(20_000) + b"\n%%EOF\n")

    c.open("#/login")          # this stack's console (the browser outlives a stack)
    c.sign_in("lucheng-team1")
    c.open(f"#/handoff/criminal_referral/{rec['id']}")
    c.visible("#casefile")
    assert c.css('#casefile-checklist li[data-kind="transfer_letter"]').get_attribute(
        "class") == "todo"
    c.choose(c.css("#casefile-kind"), "涉嫌犯罪案件移送书")
    c.fill(c.css("#casefile-title"), "移送书（正式）")
    c.css("#casefile-file").send_keys(str(pdf))
    c.css('#casefile-upload button[type="submit"]').click()
    c.wait(lambda d: c.all('#casefile-checklist li.done[data-kind="transfer_letter"]'),
           "the transfer letter ticked")
    c.visible('#casefile-list li[data-kind="transfer_letter"]')
    c.css('#casefile-forms li[data-form="transfer_letter"] button.file-form').click()
    c.wait(lambda d: len(c.all('#casefile-list li[data-kind="transfer_letter"]')) == 2,
           "the generated form filed")
    c.screenshot("case-file")
    c.d.set_window_size(390, 844)
    c.visible("#casefile-upload")
    c.d.save_screenshot(str(ARTIFACTS / f"console-{c.backend}-case-file-phone.png"))
    c.d.set_window_size(1440, 1000)
    # the transfer needs the other art. 6 papers as files too: the checklist says so
    for kind, title in (("investigation_report", "涉嫌犯罪案件情况的调查报告"),
                        ("items_list", "涉案物品清单")):
        assert c.css(f'#casefile-checklist li[data-kind="{kind}"]').get_attribute(
            "class") == "todo"
        c.choose(c.css("#casefile-kind"), title)
        c.fill(c.css("#casefile-title"), title)
        c.css("#casefile-file").send_keys(str(pdf))
        c.css('#casefile-upload button[type="submit"]').click()
        c.wait(lambda d, k=kind: c.all(f'#casefile-checklist li.done[data-kind="{k}"]'),
               f"the {kind} ticked")

    with web.rpc() as rpc:
        rpc.police_handoff.act(token(UNIT), rec["id"], "request_approval",
                               {"transfer_report": "报告"})
        rpc.police_handoff.act(token(HEAD), rec["id"], "approve", {})
        rpc.police_handoff.act(token(UNIT), rec["id"], "transfer", TRANSFER)
    c.sign_in("police-lucheng")
    c.open(f"#/handoff/criminal_referral/{rec['id']}")
    first = c.visible('#casefile-list li[data-kind="transfer_letter"] button')
    assert "移送书（正式）" in first.text
    first.click()
    c.visible("#casefile-preview iframe")
    link = c.visible("#casefile-preview a.button")
    assert link.get_attribute("download") == "移送书.pdf"
    assert not c.all("#casefile-kind option[value=transfer_letter]")   # frozen for them
    c.screenshot("case-file-police")
    assert c.js_errors() == []
    c.css("#logout").click()


def _demo(web) -> None:
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "shared.cli", "demo", "--count", "14"],
                         cwd=ROOT, env=web.env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]


def _layout(c) -> dict:
    return c.d.execute_script("""
        const bar = document.querySelector('.topbar').getBoundingClientRect();
        const links = [...document.querySelectorAll('#nav a')]
          .map((a) => a.getBoundingClientRect());
        return {scroll: document.documentElement.scrollWidth, width: window.innerWidth,
                header: bar.height, navRows: new Set(links.map((r) => Math.round(r.top))).size,
                tallest: Math.max(...links.map((r) => r.height))};""")


def test_every_demo_user_starts_on_their_work_at_desktop_and_phone(console, web):
    """After `liandong demo`, each demo user's first page (待办) lists work, nearest
    deadline first, with its count in the navigation; on a 390 px phone the header stays
    a bar (one row of navigation, no letter-per-line column) and nothing scrolls sideways."""
    c = console
    _demo(web)
    for phone in (False, True):
        c.phone(phone)
        try:
            for username in USERS:
                c.sign_in(username)
                items = c.wait(lambda d: c.all("#todo-list .todo-item"), f"{username}'s work",
                               timeout=60)
                count = c.visible("#nav-todo-count").text
                assert int(count) == len(items), (username, count, len(items))
                if phone:
                    layout = _layout(c)
                    assert layout["scroll"] <= PHONE_WIDTH, (username, layout)
                    assert layout["navRows"] == 1 and layout["tallest"] < 60, (username, layout)
                    assert layout["header"] < 130, (username, layout)
                if username in ("city", "lucheng-command", "police-lucheng", "coordinator"):
                    c.d.save_screenshot(str(ARTIFACTS / f"console-{c.backend}-todo-{username}-"
                                            f"{'phone' if phone else 'desktop'}.png"))
            if phone:            # the board turns into cards, still no sideways scroll
                c.css("#nav a[data-nav=board]").click()
                c.wait(lambda d: c.all("#board-table tbody tr"), "the board's cards")
                assert _layout(c)["scroll"] <= PHONE_WIDTH
                c.d.save_screenshot(str(ARTIFACTS / f"console-{c.backend}-board-phone.png"))
        finally:
            c.phone(False)
    assert c.js_errors() == []


def test_command_centres_dispatch_acknowledge_and_ask_for_assistance(console, web):
    """The city centre dispatches a joint action to two county centres from the console;
    lucheng acknowledges it from 待办 in one click; lucheng asks its neighbour ouhai for
    assistance (neighbours offered first) and ouhai finds the request in its 待办."""
    c = console
    title = f"控制台下达-{uuid.uuid4().hex[:6]}"
    c.sign_in("city")
    c.css("#nav a[data-nav=command]").click()
    box = c.visible('details[data-create="dispatch"]')
    if box.get_attribute("open") is None:
        c.css("summary", box).click()
    form = c.css("form", box)
    c.fill(c.field(form, "title"), title)
    c.choose(c.field(form, "domain", "select"), "非法营运")
    for county in ("lucheng", "ouhai"):
        c.css(f'[data-field="area"] input[value="{county}"]', form).click()
    c.fill(c.field(form, "instructions", "textarea"), "温州南站周边非法营运联合整治")
    for unit in ("lucheng-command", "ouhai-command"):
        c.css(f'[data-choice="{unit}"] input', form).click()
    assert "鹿城区交通运输指挥中心" in c.css('[data-choice="lucheng-command"]', form).text
    c.css('button[type="submit"]', form).click()
    c.wait(lambda d: c.all('.command-detail[data-state="dispatched"]'), "the dispatched action")
    action_id = c.css(".command-detail").get_attribute("data-handoff-id")
    assert "鹿城区交通运输指挥中心" in c.css("#recipients").text      # names, not codes
    c.screenshot("dispatched")
    c.css("#nav a[data-nav=command]").click()      # the centres' ranking, table and chart
    c.visible("#assessment tbody tr")
    assert c.all(".command svg.chart")

    c.sign_in("lucheng-command")
    item = c.wait(lambda d: c.all(f'.todo-item[data-handoff-id="{action_id}"]'),
                  "the action in lucheng's 待办")[0]
    c.css('[data-todo="acknowledge"]', item).click()
    mine = f'.todo-item[data-handoff-id="{action_id}"]'
    form = c.visible(f'{mine} details[data-action="acknowledge"] form')
    c.css('button[type="submit"]', form).click()
    c.wait(lambda d: c.all(f'{mine} [data-todo="report_result"]'),
           "the action now waits for lucheng's result")

    c.css("#nav a[data-nav=command]").click()
    box = c.visible('details[data-create="request_assistance"]')
    if box.get_attribute("open") is None:
        c.css("summary", box).click()
    form = c.css("form", box)
    neighbours = '[data-field="to_county"] optgroup:first-of-type option'
    options = [o.text for o in c.all(neighbours, form)]
    assert options and set(options) <= {"瓯海区", "龙湾区", "永嘉县"}, options
    c.choose_value(c.field(form, "to_county", "select"), "ouhai")
    subject = f"协查浙C{uuid.uuid4().hex[:5].upper()}"
    c.fill(c.field(form, "subject"), subject)
    c.fill(c.field(form, "request", "textarea"), "请协查该车近三个月营运轨迹")
    c.css('button[type="submit"]', form).click()
    c.wait(lambda d: c.all('.command-detail[data-state="requested"]'), "the request sent")
    request_id = c.css(".command-detail").get_attribute("data-handoff-id")

    c.sign_in("ouhai-command")
    item = c.wait(lambda d: c.all(f'.todo-item[data-handoff-id="{request_id}"]'),
                  "the request in ouhai's 待办")[0]
    assert c.all('[data-todo="acknowledge"]', item)
    c.screenshot("assistance-todo")
    assert c.js_errors() == []


def test_police_see_a_new_transfer_appear_in_their_work_without_reloading(console, web):
    """Live updates: the police of lucheng keep 待办 open; a referral transferred to them
    by another user (over RPC, elsewhere) appears on that page by itself, with its count
    in the navigation -- no click, no reload."""
    c = console
    c.sign_in("police-lucheng")
    c.wait(lambda d: "live" in (c.css("#live-state").get_attribute("class") or "")
           and "off" not in c.css("#live-state").get_attribute("class"), "the live stream")
    before = len(c.all("#todo-list .todo-item"))
    mark = c.mark()
    number = f"LIVE-{uuid.uuid4().hex[:6].upper()}"
    with web.rpc() as rpc:
        svc = rpc.police_handoff
        rec = svc.create(token(UNIT), "draft", draft_payload(number))
        attach_required_files(svc, rec["id"])
        for actor, command, payload in ((UNIT, "request_approval", {"transfer_report": "r"}),
                                        (HEAD, "approve", {}), (UNIT, "transfer", TRANSFER)):
            rec = svc.act(token(actor), rec["id"], command, payload)
    item = c.wait(lambda d: c.all(f'.todo-item[data-case-number="{number}"]'),
                  "the transfer in 待办 without a reload")[0]
    assert c.all('[data-todo="sign_receipt"]', item)
    assert len(c.all("#todo-list .todo-item")) == before + 1
    assert int(c.css("#nav-todo-count").text) == before + 1
    assert c.not_reloaded(mark)
    c.shots("todo-live")
    assert c.js_errors() == []


def _live(c) -> None:
    c.wait(lambda d: "off" not in (c.css("#live-state").get_attribute("class") or "off"),
           "the live stream")


def test_county_centre_dispatches_to_its_own_enforcement_teams(console, web):
    """Issue 14, "county centre -> its own teams if the procedure allows": lucheng's
    centre is offered its own county's teams and agencies only (centres.yaml
    dispatched_by), dispatches to its two teams; team 1 finds the order in 待办 and
    acknowledges it in one click; the centre sees that on its screen without reloading."""
    c = console
    title = f"本辖区中队联合检查-{uuid.uuid4().hex[:6]}"
    c.sign_in("lucheng-command")
    c.css("#nav a[data-nav=command]").click()
    form = c.create_form("dispatch")
    offered = [e.get_attribute("data-choice")
               for e in c.all('[data-field="recipients"] [data-choice]', form)]
    assert {"lucheng-team-1", "lucheng-team-2", "lucheng-psb", "lucheng-amr"} <= set(offered)
    assert all(u.startswith("lucheng-") for u in offered), offered   # its own county only
    assert "lucheng-command" not in offered
    groups = [g.text for g in c.all('[data-field="recipients"] .group-title', form)]
    assert "执法中队" in groups, groups
    assert c.css('[data-field="area"] input[value="lucheng"]', form).is_selected()
    c.fill(c.field(form, "title"), title)
    c.choose(c.field(form, "domain", "select"), "超限超载")
    c.fill(c.field(form, "instructions", "textarea"), "两个中队在104国道治超点联合检查")
    for unit in ("lucheng-team-1", "lucheng-team-2"):
        c.css(f'[data-choice="{unit}"] input', form).click()
    c.css('button[type="submit"]', form).click()
    c.wait(lambda d: c.all('.command-detail[data-state="dispatched"]'), "the dispatched action")
    action_id = c.css(".command-detail").get_attribute("data-handoff-id")
    assert "鹿城区交通运输行政执法队一中队" in c.css("#recipients").text   # names, not codes
    c.shots("county-dispatch-teams")

    c.sign_in("lucheng-team1")
    mine = f'.todo-item[data-handoff-id="{action_id}"]'
    item = c.wait(lambda d: c.all(mine), "the order in team 1's 待办")[0]
    c.css('[data-todo="acknowledge"]', item).click()
    c.css('button[type="submit"]', c.visible(f'{mine} details[data-action="acknowledge"] form')
          ).click()
    c.wait(lambda d: c.all(f'{mine} [data-todo="report_result"]'),
           "the order now waits for team 1's result")
    c.shots("team-todo")

    c.sign_in("lucheng-command")
    c.open(f"#/command/joint_action/{action_id}")
    c.visible('#recipients tr[data-recipient="lucheng-team-1"][data-status="acknowledged"]')
    _live(c)
    mark = c.mark()
    with web.rpc() as rpc:     # team 2 acknowledges elsewhere: the centre's page follows
        rpc.command.act(token(LUCHENG_TEAM_2), action_id, "acknowledge", {"note": "二中队收到"})
    c.wait(lambda d: c.all('#recipients tr[data-recipient="lucheng-team-2"]'
                           '[data-status="acknowledged"]'), "team 2's ack without a reload")
    assert c.not_reloaded(mark)
    assert c.js_errors() == []


@contextlib.contextmanager
def command_clock(stack, ahead: timedelta):
    """The command service restarted on a development test clock ``ahead`` of real time
    (LIANDONG_CLOCK) sweeping every second: deadlines of the procedure's real length
    (30 minutes for an acknowledgement) are missed at once, nothing sleeps. Restarted
    on the real clock afterwards, for the module's other tests."""
    clock = (datetime.now(timezone.utc) + ahead).isoformat()
    stack.stop("command")
    try:
        stack.start("command", LIANDONG_CLOCK=clock, COMMAND_SWEEP_SECONDS="1")
        yield
    finally:
        if "command" in stack.procs:
            stack.stop("command")
        stack.start("command")


def test_missed_acknowledgement_escalates_on_the_city_centres_screen(console, web):
    """The issue's check: the city centre dispatches a joint action to three county
    centres from the console and keeps its page open; lucheng and ouhai acknowledge and
    report (elsewhere), longwan never acknowledges; when its 30 minutes are over (the
    command service's test clock, not a sleep) the sweep escalates to the city centre and
    the escalation appears on the city centre's screen without a reload."""
    c = console
    title = f"全市联合整治-{uuid.uuid4().hex[:6]}"
    c.sign_in("city")
    c.css("#nav a[data-nav=command]").click()
    form = c.create_form("dispatch")
    c.fill(c.field(form, "title"), title)
    c.choose(c.field(form, "domain", "select"), "非法营运")
    centres = {"lucheng": "lucheng-command", "ouhai": "ouhai-command",
               "longwan": "longwan-command"}
    for county, unit in centres.items():
        c.css(f'[data-field="area"] input[value="{county}"]', form).click()
        c.css(f'[data-choice="{unit}"] input', form).click()
    c.fill(c.field(form, "instructions", "textarea"), "机场、高铁站周边非法营运联合整治")
    c.css('button[type="submit"]', form).click()
    c.wait(lambda d: c.all('.command-detail[data-state="dispatched"]'), "the dispatched action")
    action_id = c.css(".command-detail").get_attribute("data-handoff-id")
    assert not c.all("#escalations tr")
    _live(c)
    mark = c.mark()

    with web.rpc() as rpc:
        for actor in (LUCHENG, OUHAI):
            rpc.command.act(token(actor), action_id, "acknowledge", {"note": "收到"})
            rpc.command.act(token(actor), action_id, "report_result", RESULT)
    c.wait(lambda d: {r.get_attribute("data-recipient") for r in c.all(
        '#recipients tr[data-status="reported"]')} == {"lucheng-command", "ouhai-command"},
        "two reports on the city centre's screen")
    assert c.css('#recipients tr[data-recipient="longwan-command"]').get_attribute(
        "data-status") == "dispatched"
    assert not c.all("#escalations tr")

    with command_clock(web, timedelta(minutes=31)):
        row = c.wait(lambda d: c.all("#escalations tbody tr"),
                     "the escalation on the city centre's screen", timeout=60)[0]
        assert "龙湾区交通运输指挥中心" in row.text
        assert "escalated" in c.css('#recipients tr[data-recipient="longwan-command"]'
                                    ).get_attribute("class")
        assert len(c.all("#escalations tbody tr")) == 1     # lucheng and ouhai acked
        assert c.not_reloaded(mark)                          # no reload, no navigation
        c.shots("escalation")
        c.css("#nav a[data-nav=command]").click()            # the list shows it too
        listed = c.visible(f'#joint-actions tr[data-handoff-id="{action_id}"]')
        assert "escalated" in listed.get_attribute("class")
    assert c.js_errors() == []

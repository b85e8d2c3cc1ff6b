"""The HTTP API end to end with real tokens: sign-in, JSON errors, what each role
may see, exports, statistics, metrics, and an overdue deadline alerting once."""
from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import pika
import pytest
import requests

from services.police_handoff import domain
from services.police_handoff import store as ph_store
from shared import envelope as env
from shared import signing
from tests.conftest import wait_for
from tests.helpers import (
    COORDINATOR,
    HEAD,
    MARKET,
    OTHER_HEAD,
    OTHER_UNIT,
    POLICE,
    POLICE_2,
    PROCURATORATE,
    TRANSFER,
    UNIT,
    draft_payload,
    token,
    upload_required_files,
)

pytestmark = pytest.mark.e2e


class Client:
    def __init__(self, base: str, actor=None, bearer: str | None = None):
        self.base = base
        self.headers = {}
        if actor is not None or bearer:
            self.headers["Authorization"] = f"Bearer {bearer or token(actor)}"

    def get(self, path, **params):
        return requests.get(self.base + path, params=params, headers=self.headers, timeout=30)

    def post(self, path, body=None, raw: str | None = None, **params):
        data = raw if raw is not None else json.dumps(body or {})
        return requests.post(self.base + path, data=data, params=params,
                             headers={**self.headers, "Content-Type": "application/json"},
                             timeout=30)


@pytest.fixture(scope="module")
def web(stack):
    wait_for(lambda: _up(stack.base_url), message="gateway HTTP")
    return stack


def _up(base):
    try:
        return requests.get(base + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_login_and_errors_are_json(web):
    anon = Client(web.base_url)
    ok = anon.post("/api/v1/login", {"username": "lucheng-team1", "password": "demo"})
    assert ok.status_code == 200 and ok.json()["role"] == "enforcement_unit"
    me = Client(web.base_url, bearer=ok.json()["token"]).get("/api/v1/me")
    assert me.json()["unit"] == "lucheng-team-1"
    bad = anon.post("/api/v1/login", {"username": "lucheng-team1", "password": "nope"})
    assert bad.status_code == 401 and bad.json()["code"] == "unauthenticated"
    assert anon.get("/api/v1/handoffs").status_code == 401
    forged = Client(web.base_url, bearer="eyJ1c2VyIjoiYSJ9.forged").get("/api/v1/handoffs")
    assert forged.status_code == 401 and "signature" in forged.json()["message"]
    unit = Client(web.base_url, UNIT)
    malformed = unit.post("/api/v1/criminal-referrals", raw="{not json")
    assert malformed.status_code == 422 and "body" in malformed.json()["errors"]
    missing = unit.get("/api/v1/unicorns")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    invalid = unit.post("/api/v1/criminal-referrals", {"case_number": "X"})
    assert invalid.status_code == 422
    assert {"county", "summary", "parties"} <= set(invalid.json()["errors"])
    for response in (malformed, missing, invalid, bad):
        assert "Traceback" not in response.text


def test_openapi_document(web):
    doc = Client(web.base_url).get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/handoffs" in doc["paths"] and "bearer" in doc["components"][
        "securitySchemes"]
    act = doc["paths"]["/api/v1/criminal-referrals/{id}/{command}"]["post"]
    assert "transfer" in act["x-commands"]


def test_each_role_sees_only_what_its_agency_may(web):
    unit = Client(web.base_url, UNIT)
    created = unit.post("/api/v1/criminal-referrals", draft_payload(f"HTTP-{uuid.uuid4().hex[:6]}"))
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert created.headers["Location"].endswith(rid)
    assert Client(web.base_url, POLICE).get(f"/api/v1/criminal-referrals/{rid}").status_code \
        == 403
    upload_required_files(web.base_url, rid)
    for actor, command, body in ((UNIT, "request_approval", {"transfer_report": "报告"}),
                                 (HEAD, "approve", {}), (UNIT, "transfer", TRANSFER)):
        r = Client(web.base_url, actor).post(f"/api/v1/criminal-referrals/{rid}/{command}", body)
        assert r.status_code == 200, r.text
    wrong = Client(web.base_url, POLICE).post(f"/api/v1/criminal-referrals/{rid}/approve", {})
    assert wrong.status_code == 409 and wrong.json()["code"] == "invalid_transition"
    role = Client(web.base_url, HEAD).post(f"/api/v1/criminal-referrals/{rid}/sign_receipt",
                                           {"receipt_number": "R", "receiving_officer": "x"})
    assert role.status_code == 403 and "role" in role.json()["errors"]

    def on_board(actor) -> bool:
        rows = Client(web.base_url, actor).get("/api/v1/handoffs", kind="criminal_referral")
        assert rows.status_code == 200
        return rid in [r["handoff_id"] for r in rows.json()]

    wait_for(lambda: on_board(COORDINATOR), message="the referral on the board")
    expected = {UNIT: True, HEAD: True, POLICE: True, PROCURATORATE: True, COORDINATOR: True,
                POLICE_2: False, MARKET: False, OTHER_HEAD: False, OTHER_UNIT: False}
    wait_for(lambda: on_board(PROCURATORATE), message="tracker at the transfer step")
    assert {a: on_board(a) for a in expected} == expected
    for actor, allowed in expected.items():
        status = Client(web.base_url, actor).get(f"/api/v1/handoffs/{rid}").status_code
        assert status == (200 if allowed else 403), (actor, status)


def test_exports_and_statistics(web):
    unit = Client(web.base_url, UNIT)
    number = f"EXP-{uuid.uuid4().hex[:6]}"
    rid = unit.post("/api/v1/criminal-referrals", draft_payload(number)).json()["id"]
    wait_for(lambda: rid in [r["handoff_id"] for r in unit.get("/api/v1/handoffs").json()],
             message="tracked")
    csv_response = unit.get("/api/v1/handoffs", format="csv", q=number.lower())
    assert csv_response.headers["Content-Type"].startswith("text/csv")
    lines = csv_response.content.decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("handoff_id,kind,case_number") and number in lines[1]
    assert len(lines) == 2
    xlsx = unit.get("/api/v1/handoffs", format="xlsx", q=number)
    from openpyxl import load_workbook
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    rows = list(sheet.values)
    assert rows[0][2] == "case_number" and rows[1][2] == number
    stats = Client(web.base_url, COORDINATOR).get("/api/v1/statistics", group_by="kind").json()
    by_kind = {s["kind"]: s for s in stats}
    assert by_kind["criminal_referral"]["count"] >= 1
    bad = unit.get("/api/v1/statistics", group_by="weather")
    assert bad.status_code == 422 and "group_by" in bad.json()["errors"]


def _alert_queue(uri: str) -> tuple:
    conn = pika.BlockingConnection(pika.URLParameters(uri))
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, env.EXCHANGE, "deadline.#")
    return conn, ch, q


def test_overdue_deadline_raises_exactly_one_alert(web):
    conn, ch, queue = _alert_queue(web.amqp_uri)
    try:
        # a referral approved two days ago and never transferred (24 h, art. 5)
        then = datetime.now(timezone.utc) - timedelta(days=2)
        rec, s1 = domain.create("draft", UNIT, draft_payload(f"LATE-{uuid.uuid4().hex[:6]}"),
                                then)
        rec2, s2 = domain.act(rec, "request_approval", UNIT, {"transfer_report": "r"}, then)
        rec3, s3 = domain.act(rec2, "approve", HEAD, {}, then)
        pub = pika.BlockingConnection(pika.URLParameters(web.amqp_uri)).channel()
        for r, s in ((rec, s1), (rec2, s2), (rec3, s3)):
            e = signing.sign(env.make_envelope(
                event_type=s["event"], source=ph_store.SOURCE, subject=r["id"],
                data=domain.event_payload(r, s), sequence=r["step"]), web.tmp / "keys")
            pub.basic_publish(env.EXCHANGE, e["type"], env.encode(e))
        pub.connection.close()
        coordinator = Client(web.base_url, COORDINATOR)
        wait_for(lambda: rec3["id"] in [r["handoff_id"] for r in coordinator.get(
            "/api/v1/handoffs", overdue="true").json()], message="overdue on the board")
        found = []

        def breached():
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            while method:
                event = json.loads(body)
                if event["data"]["handoff_id"] == rec3["id"]:
                    found.append(event)
                method, _props, body = ch.basic_get(queue, auto_ack=True)
            return [e for e in found if e["type"] == "deadline.breached.v1"]

        first = wait_for(breached, message="deadline.breached")
        assert first[0]["data"]["deadline"]["id"] == "transfer"
        import time
        time.sleep(4)                     # four more sweeps (TRACKER_SWEEP_SECONDS=1)
        assert len(breached()) == 1
        metrics = requests.get(web.base_url + "/metrics", timeout=30).text
        assert "liandong_handoffs_overdue" in metrics
        assert 'liandong_handoffs{kind="criminal_referral",state="approved"}' in metrics
    finally:
        conn.close()


def test_a_page_holds_what_the_caller_may_see(web):
    """limit counts visible handoffs: an ouhai unit asking for 2 gets 2 of its own even
    when the most recent (and nearest-deadline) handoffs are lucheng's."""
    mine = []
    for _ in range(2):
        r = Client(web.base_url, OTHER_UNIT).post(
            "/api/v1/criminal-referrals",
            draft_payload(f"PAGE-{uuid.uuid4().hex[:6]}", county="ouhai"))
        assert r.status_code == 201, r.text
        mine.append(r.json()["id"])
    for _ in range(3):
        r = Client(web.base_url, UNIT).post("/api/v1/criminal-referrals",
                                            draft_payload(f"PAGE-{uuid.uuid4().hex[:6]}"))
        assert r.status_code == 201, r.text
    listed = Client(web.base_url, OTHER_UNIT).get("/api/v1/criminal-referrals", limit=2)
    assert listed.status_code == 200
    assert [r["owner_unit"] for r in listed.json()] == ["ouhai-team-1"] * 2
    wait_for(lambda: set(mine) <= {r["handoff_id"] for r in Client(
        web.base_url, COORDINATOR).get("/api/v1/handoffs", all="true", q="PAGE-").json()},
        message="the ouhai referrals on the board")
    # (q= keeps out what other tests gave ouhai to see, e.g. an assistance request from
    # lucheng's command centre; lucheng's three PAGE- referrals stay invisible to ouhai)
    board = Client(web.base_url, OTHER_UNIT).get("/api/v1/handoffs", limit=2, q="PAGE-")
    assert board.status_code == 200
    assert [r["owner_unit"] for r in board.json()] == ["ouhai-team-1"] * 2

"""Trust at the boundaries (issue 23) over HTTP through the gateway, as an outside tester
would try it: identity binds data, named units must exist, exports carry no formulas,
a forged event type is dead-lettered, no input reaches a 500, bodies are bounded, times
carry their offset, pages and search behave."""
from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from stdnum.iso7064 import mod_11_2

from services.police_handoff import domain
from shared import envelope as env
from shared import signing
from shared.errors import NotFound
from tests.conftest import wait_for
from tests.e2e.test_gateway_e2e import Client
from tests.e2e.test_reliability_e2e import dead_letter, publish
from tests.helpers import (
    CITY,
    DOCUMENTS,
    HEAD,
    PROCURATORATE,
    UNIT,
    dispatch_payload,
    draft_payload,
    market_payload,
    token,
    upload_required_files,
)

pytestmark = pytest.mark.e2e
API = "/api/v1"


def _up(base):
    try:
        return requests.get(base + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def base(stack):
    wait_for(lambda: _up(stack.base_url), message="gateway HTTP")
    return stack.base_url


def _case() -> str:
    return f"WZ-B-{uuid.uuid4().hex[:8]}"


def _approved(base) -> str:
    unit, head = Client(base, UNIT), Client(base, HEAD)
    created = unit.post(f"{API}/criminal-referrals", draft_payload(_case()))
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    upload_required_files(base, rid)      # the papers a transfer needs (art. 6)
    assert unit.post(f"{API}/criminal-referrals/{rid}/request_approval",
                     {"transfer_report": "报告"}).status_code == 200
    assert head.post(f"{API}/criminal-referrals/{rid}/approve", {}).status_code == 200
    return rid


def _error(response, status, field=None):
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) >= {"code", "message", "errors"}
    if field:
        assert field in json.dumps(body["errors"], ensure_ascii=False), body
    return body


# ------------------------------------------------------------------ 1. identity binds data

def test_a_unit_files_only_under_its_own_county(base):
    unit = Client(base, UNIT)
    body = _error(unit.post(f"{API}/criminal-referrals", draft_payload(_case(), county="ouhai")),
                  403, "county")
    assert "lucheng" in json.dumps(body, ensure_ascii=False)
    _error(unit.post(f"{API}/market-referrals", market_payload(_case(), county="ouhai")),
           403, "county")
    created = unit.post(f"{API}/criminal-referrals", draft_payload(_case()))
    assert created.status_code == 201
    assert (created.json()["county"], created.json()["owner_unit"]) == ("lucheng", UNIT.unit)


# ------------------------------------------------------------------ 4. named units

@pytest.mark.parametrize("field, value", [("police_unit", "no-such-psb"),
                                          ("police_unit", "lucheng-team-1"),
                                          ("procuratorate_unit", "lucheng-psb")])
def test_a_transfer_to_a_unit_that_cannot_receive_it_is_a_422(base, field, value):
    rid = _approved(base)
    transfer = {"police_unit": "lucheng-psb", "procuratorate_unit": PROCURATORATE.unit,
                "procuratorate_copy": {"sent_on": "2026-03-02"}, "documents": DOCUMENTS}
    _error(Client(base, UNIT).post(f"{API}/criminal-referrals/{rid}/transfer",
                                   {**transfer, field: value}), 422, field)
    ok = Client(base, UNIT).post(f"{API}/criminal-referrals/{rid}/transfer", transfer)
    assert ok.status_code == 200 and ok.json()["state"] == "transferred"


@pytest.mark.parametrize("target", ["lucheng-team-1", "lucheng-psb", "no-such-amr"])
def test_a_market_referral_goes_only_to_market_regulation(base, target):
    _error(Client(base, UNIT).post(f"{API}/market-referrals",
                                   market_payload(_case(), target_unit=target)),
           422, "target_unit")


def test_units_are_listed_for_the_console(base):
    assert Client(base).get(f"{API}/units").status_code == 401
    found = Client(base, UNIT).get(f"{API}/units").json()
    ids = {u["id"]: u for u in found["units"]}
    assert ids["lucheng-psb"]["kind"] == "police" and len(ids) >= 100


# ------------------------------------------------------------------ 2. exports

def test_exports_carry_no_live_formula(base):
    evil = '=HYPERLINK("http://evil.example","x")'
    assert Client(base, UNIT).post(f"{API}/criminal-referrals",
                                   draft_payload(evil)).status_code == 201
    coordinator = Client(base, CITY)

    def exported():
        r = coordinator.get(f"{API}/handoffs", format="csv", q="hyperlink")
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        return rows[1:] or None
    rows = wait_for(exported, message="the referral on the board")
    assert all(row[2] == "'" + evil for row in rows)
    from openpyxl import load_workbook
    xlsx = coordinator.get(f"{API}/handoffs", format="xlsx", q="hyperlink").content
    cells = list(load_workbook(io.BytesIO(xlsx)).active.iter_rows())[1]
    assert cells[2].value == "'" + evil and all(c.data_type != "f" for c in cells)


# ------------------------------------------------------------------ 3. publisher binding

def test_an_event_type_signed_by_another_publisher_is_dead_lettered(stack):
    now = datetime.now(timezone.utc)
    rec, step = domain.create("draft", UNIT, draft_payload(_case()), now)
    forged = signing.sign(env.make_envelope(   # a genuine market_referral signature
        event_type=step["event"], source="/wenzhou/transport/market_referral",
        subject=rec["id"], data=domain.event_payload(rec, step), sequence=1, time=now),
        stack.tmp / "keys")
    message_id = f"forged-type-{uuid.uuid4().hex[:6]}"
    publish(stack.amqp_uri, env.encode(forged), forged["type"], message_id)
    letter = wait_for(lambda: dead_letter(stack.amqp_uri, message_id),
                      message="the forged event dead-lettered")
    assert "is not issued by 'market_referral'" in letter["reason"]
    with stack.rpc() as rpc, pytest.raises(NotFound):   # the tracker never applied it
        rpc.tracker.handoff(token(CITY), rec["id"])


# ------------------------------------------------------------------ 5, 6. no 500

def test_inputs_that_used_to_crash_are_clear_4xx(base):
    unit = Client(base, UNIT)
    r = requests.get(base + f"{API}/me", headers={"Authorization": "Bearer é€x".encode()},
                     timeout=30)
    _error(r, 401)
    _error(unit.post(f"{API}/criminal-referrals", {"opinion": "x"}, command="approve"),
           422, "command")
    _error(unit.post(f"{API}/criminal-referrals", raw="[" * 10000 + "]" * 10000), 422)
    deep = {"x": 1}
    for _ in range(500):
        deep = {"x": deep}
    _error(unit.post(f"{API}/criminal-referrals", draft_payload(_case(), facts=deep)), 422)
    _error(unit.post(f"{API}/criminal-referrals",
                     raw='{"case_number": ' + "9" * 5000 + "}"), 422, "body")
    city = Client(base, CITY)
    for collection in ("joint-actions", "assistance-requests"):
        _error(city.get(f"{API}/{collection}", limit="²"), 422, "limit")
        _error(city.get(f"{API}/{collection}", offset="-1"), 422, "offset")
        _error(city.get(f"{API}/{collection}", offset="abc"), 422, "offset")
    now = datetime.now(timezone.utc)
    _error(city.post(f"{API}/joint-actions",
                     dispatch_payload(now, window_end="9999-12-31T23:59:00+08:00")),
           422, "window_end")


def test_a_body_over_the_limit_is_a_413(base):
    r = Client(base, UNIT).post(f"{API}/criminal-referrals",
                                draft_payload(_case(), junk="x" * (20 * 1024 * 1024)))
    body = _error(r, 413, "body")
    assert body["code"] == "payload_too_large"


# ------------------------------------------------------------------ 7. times

def test_every_time_of_a_referral_carries_its_offset(base):
    unit = Client(base, UNIT)
    rid = unit.post(f"{API}/criminal-referrals", draft_payload(_case())).json()["id"]
    rec = unit.get(f"{API}/criminal-referrals/{rid}").json()
    for step in rec["timeline"]:
        assert datetime.fromisoformat(step["at"]).utcoffset() == timedelta(0), step["at"]
    assert datetime.fromisoformat(rec["created_at"]).utcoffset() == timedelta(0)


# ------------------------------------------------------------------ 8. pages

def test_offset_pages_the_command_lists(base):
    city = Client(base, CITY)
    now = datetime.now(timezone.utc)
    for _ in range(2):
        assert city.post(f"{API}/joint-actions", dispatch_payload(now)).status_code == 201
    first = city.get(f"{API}/joint-actions", limit=1, offset=0).json()
    second = city.get(f"{API}/joint-actions", limit=1, offset=1).json()
    assert len(first) == len(second) == 1 and first[0]["id"] != second[0]["id"]


# ------------------------------------------------------------------ 9. search

def test_search_is_literal(base):
    unit = Client(base, UNIT)
    assert unit.post(f"{API}/criminal-referrals", draft_payload(_case())).status_code == 201
    wait_for(lambda: unit.get(f"{API}/handoffs").json(), message="a referral on the board")
    assert unit.get(f"{API}/handoffs", q="%").json() == []
    assert unit.get(f"{API}/handoffs", q="_").json() == []


# ------------------------------------------------------------------ 10. access and routing

def test_procedures_need_a_token_and_unrouted_answers_are_json(base):
    _error(Client(base).get(f"{API}/procedures/criminal_referral"), 401)
    assert Client(base, UNIT).get(f"{API}/procedures/criminal_referral").status_code == 200
    body = _error(Client(base).get("/no/such/route"), 404)
    assert body["code"] == "not_found"
    r = requests.delete(base + f"{API}/login", timeout=30)
    body = _error(r, 405)
    assert body["code"] == "method_not_allowed" and "POST" in r.headers["Allow"]


# ------------------------------------------------------------------ 11. data validity

def test_codes_and_amounts_that_cannot_exist_are_422(base):
    unit = Client(base, UNIT)
    zero = {"name": "甲", "role": "operator", "id_type": "uscc", "id_number": "0" * 18}
    body = f"110105{20991231}002"
    unborn = {"name": "乙", "role": "driver", "id_type": "resident_id",
              "id_number": body + mod_11_2.calc_check_digit(body)}
    for party in (zero, unborn):
        _error(unit.post(f"{API}/criminal-referrals", draft_payload(_case(), parties=[party])),
               422, "parties")
    rid = unit.post(f"{API}/criminal-referrals", draft_payload(_case())).json()["id"]
    for fine in ("1e1000000", -1):
        _error(unit.post(f"{API}/criminal-referrals/{rid}/record_prior_penalty", {
            "penalties": [{"kind": "fine", "decision_number": "D-1", "fine_yuan": fine}]}),
            422, "penalties")
    _error(unit.post(f"{API}/criminal-referrals/{rid}/record_prior_penalty",
                     raw='{"penalties": [{"kind": "fine", "decision_number": "D-1", '
                         '"fine_yuan": 1e1000000}]}'), 422)

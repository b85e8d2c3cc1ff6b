"""以罚代刑 supervision end to end, through the gateway as users call it, on SQLite and
PostgreSQL: a 5,000-row XLSX with 20 bad rows and 30 decisions over a criminal threshold
(exactly those 30 listed, minus those a criminal referral already covers: by case
number, by plate and party), an idempotent re-import, the procuratorate's inquiry and
the agency's answer with its clocks, who sees what, bad input (never a 500), the case
system's JSON push and the CLI."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from services.supervision import samples
from shared.auth import Actor
from tests.conftest import wait_for
from tests.helpers import (
    COORDINATOR,
    HEAD,
    OTHER_HEAD,
    POLICE,
    PROCURATORATE,
    UNIT,
    draft_payload,
    token,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OTHER_PROCURATORATE = Actor("pro-ma", "procuratorate", "ouhai-procuratorate", "ouhai")


def _up(base):
    try:
        return requests.get(base + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def web(stack):
    wait_for(lambda: _up(stack.base_url), message="gateway HTTP")
    return stack


def call(stack, method, path, actor=None, body=None, data=None, content_type=None, **params):
    headers = {"Authorization": f"Bearer {token(actor)}"} if actor else {}
    if body is not None:
        data, content_type = json.dumps(body, ensure_ascii=False).encode(), "application/json"
    if content_type:
        headers["Content-Type"] = content_type
    return requests.request(method, stack.base_url + path, data=data, params=params,
                            headers=headers, timeout=300)


def candidates(stack, actor, prefix):
    rows = call(stack, "GET", "/api/v1/penalty-decisions", actor, limit=1000).json()
    return sorted(r["case_number"] for r in rows if r["case_number"].startswith(prefix))


def test_5000_row_xlsx_lists_exactly_the_decisions_over_a_threshold_not_referred(web):
    prefix = f"温交执罚〔{uuid.uuid4().hex[:6]}〕"
    rows, over, bad_lines = samples.decisions(prefix=prefix)
    index = {r["case_number"]: r for r in rows}
    by_number, by_plate_and_party = over[0], over[1]
    plate_only = over[2]     # same plate, another party: not covered
    with web.rpc() as rpc:
        rpc.police_handoff.create(token(UNIT), "draft", draft_payload(by_number))
        for number, name in ((by_plate_and_party, index[by_plate_and_party]["parties"]),
                             (plate_only, "另一人")):
            rpc.police_handoff.create(token(UNIT), "draft", draft_payload(
                f"WZ-LC-{uuid.uuid4().hex[:8]}", plate=index[number]["plate"],
                parties=[{"name": name, "role": "driver", "id_type": "other",
                          "id_number": "X-1"}]))

    done = call(web, "POST", "/api/v1/penalty-decisions", COORDINATOR,
                data=samples.to_xlsx(rows), content_type=XLSX, filename="decisions.xlsx")
    assert done.status_code == 201, done.text
    report = done.json()
    assert (report["rows"], report["inserted"], report["rejected"], report["suspects"]) == \
        (5000, 4980, 20, 30)
    assert sorted({e["line"] for e in report["errors"]}) == sorted(bad_lines)
    assert all(e["field"] and e["reason"] for e in report["errors"])
    assert done.headers["Location"] == f"/api/v1/penalty-imports/{report['id']}"

    expected = sorted(set(over) - {by_number, by_plate_and_party})
    wait_for(lambda: candidates(web, COORDINATOR, prefix) == expected,
             message="candidates without the two referred decisions")
    shown = call(web, "GET", f"/api/v1/penalty-decisions/{by_plate_and_party}",
                 COORDINATOR).json()
    assert shown["candidate"] is False
    assert shown["referred_by"][0]["matched_by"] == "plate_and_party"
    one = call(web, "GET", f"/api/v1/penalty-decisions/{expected[0]}", COORDINATOR).json()
    assert one["candidate"] and one["matches"][0]["threshold_crossed"]
    assert one["matches"][0]["legal_basis"] and one["matches"][0]["threshold_source"]

    again = call(web, "POST", "/api/v1/penalty-decisions", COORDINATOR,
                 data=samples.to_xlsx(rows), content_type=XLSX, filename="decisions.xlsx")
    assert (again.json()["inserted"], again.json()["unchanged"]) == (0, 4980)
    status = call(web, "GET", f"/api/v1/penalty-imports/{report['id']}", COORDINATOR).json()
    assert status["rejected"] == 20 and len(status["errors"]) == len(report["errors"])

    # the procuratorate of lucheng sees only its county's candidates
    mine = candidates(web, PROCURATORATE, prefix)
    assert mine and mine == [n for n in expected if index[n]["county"] == "lucheng"]
    for actor in (HEAD, POLICE, UNIT):
        assert call(web, "GET", "/api/v1/penalty-decisions", actor).status_code == 403


def test_inquiry_answer_transfer_and_who_sees_it(web):
    number = f"温鹿交执罚〔{uuid.uuid4().hex[:6]}〕1号"
    push = {"decisions": [{"case_number": number, "decided_on": "2026-03-02",
                           "county": "lucheng", "unit": HEAD.unit,
                           "parties": [{"name": "王某"}], "plate": "浙C8A101",
                           "facts": samples.OVER[0], "penalty": "罚款2000元",
                           "fine_yuan": 2000}]}
    pushed = call(web, "POST", "/api/v1/penalty-decisions", PROCURATORATE, body=push)
    assert pushed.status_code == 201 and pushed.json()["suspects"] == 1, pushed.text

    question = {"decision_id": number, "question": "实载65人已达立案标准，请说明未移送理由"}
    refused = call(web, "POST", "/api/v1/supervision-inquiries", HEAD, body=question)
    assert refused.status_code == 403
    opened = call(web, "POST", "/api/v1/supervision-inquiries", PROCURATORATE, body=question)
    assert opened.status_code == 201, opened.text
    inquiry = opened.json()
    path = f"/api/v1/supervision-inquiries/{inquiry['id']}"
    assert inquiry["counterpart_unit"] == HEAD.unit
    assert inquiry["deadline"]["id"] == "agency_answer" and inquiry["deadline"]["period"] == "15d"
    twice = call(web, "POST", "/api/v1/supervision-inquiries", PROCURATORATE, body=question)
    assert twice.status_code == 422 and "already open" in twice.json()["message"]

    # visibility: the procuratorate and the agency addressed; not another agency, the
    # police or an enforcement unit; nor another county's procuratorate
    assert call(web, "GET", path, HEAD).json()["next_actions"] == ["reply"]
    assert call(web, "GET", path, PROCURATORATE).json()["next_actions"] == []
    for actor in (OTHER_HEAD, POLICE, UNIT, OTHER_PROCURATORATE):
        assert call(web, "GET", path, actor).status_code == 403, actor.role
    listed = call(web, "GET", "/api/v1/supervision-inquiries", OTHER_HEAD).json()
    assert inquiry["id"] not in {r["id"] for r in listed}

    def on_board(actor):
        rows = call(web, "GET", "/api/v1/handoffs", actor, kind="supervision_inquiry").json()
        return {r["handoff_id"] for r in rows}
    wait_for(lambda: inquiry["id"] in on_board(HEAD), message="the inquiry on the head's board")
    assert inquiry["id"] in on_board(PROCURATORATE)
    assert inquiry["id"] not in on_board(OTHER_HEAD)
    assert inquiry["id"] not in on_board(POLICE)

    answered = call(web, "POST", f"{path}/reply", HEAD, body={"outcome": "transfer"})
    assert answered.status_code == 200, answered.text
    assert answered.json()["deadline"]["id"] == "transfer_after_answer"
    assert answered.json()["deadline"]["period"] == "24h"
    other = call(web, "POST", f"{path}/record_transfer", OTHER_HEAD, body={})
    assert other.status_code == 403
    bad = call(web, "POST", f"{path}/record_transfer", HEAD, body={})
    assert bad.status_code == 422 and "transfer_letter_number" in bad.json()["errors"]
    moved = call(web, "POST", f"{path}/record_transfer", HEAD, body={
        "transfer_letter_number": "温鹿交移〔2026〕9号", "transferred_on": "2026-03-04",
        "police_authority": "鹿城公安分局"})
    assert moved.status_code == 200 and moved.json()["state"] == "transferred"

    decision = call(web, "GET", f"/api/v1/penalty-decisions/{number}", PROCURATORATE).json()
    assert decision["inquiries"][0]["state"] == "transferred"
    stats = call(web, "GET", "/api/v1/statistics/supervision", PROCURATORATE).json()
    assert stats["transfers_followed"] >= 1 and stats["inquiries"] >= 1
    assert stats["decisions"] >= stats["matches"] >= stats["candidates"]
    assert call(web, "GET", "/api/v1/statistics/supervision", HEAD).status_code == 403


def test_bad_imports_are_clear_errors_never_a_500(web):
    def post(actor=COORDINATOR, **kw):
        return call(web, "POST", "/api/v1/penalty-decisions", actor, **kw)
    assert post(actor=None, body={"decisions": []}).status_code == 401
    assert post(actor=POLICE, body={"decisions": [{}]}).status_code == 403
    assert post(body={"decisions": []}).status_code == 422
    assert post(body={"rows": []}).status_code == 422
    assert post(data=b"{not json", content_type="application/json").status_code == 422
    header = post(data=b"case_number,county\nA,lucheng\n", content_type="text/csv")
    assert header.status_code == 422 and "decided_on" in header.json()["errors"]["header"][0]
    broken = post(data=b"PK\x03\x04garbage", content_type=XLSX)
    assert broken.status_code == 422
    pdf = post(data=b"%PDF-1.4", content_type="application/pdf", filename="x.pdf")
    assert pdf.status_code == 422
    rows = post(body={"decisions": [{"case_number": "X"}, "not an object"]})
    assert rows.status_code == 201
    assert {e["line"] for e in rows.json()["errors"]} == {1, 2}
    # past SUPERVISION_IMPORT_MAX_BYTES (20 MiB): refused from its length, before the body
    conn = http.client.HTTPConnection("127.0.0.1", web.http_port, timeout=30)
    conn.putrequest("POST", "/api/v1/penalty-decisions")
    conn.putheader("Authorization", f"Bearer {token(COORDINATOR)}")
    conn.putheader("Content-Type", "text/csv")
    conn.putheader("Content-Length", str(20 * 1024 * 1024 + 1))
    conn.endheaders()
    huge = conn.getresponse()
    assert huge.status == 413 and json.loads(huge.read())["code"] == "payload_too_large"
    conn.close()
    missing = call(web, "GET", "/api/v1/penalty-decisions/nope", COORDINATOR)
    assert missing.status_code == 404
    assert call(web, "GET", "/api/v1/penalty-decisions", COORDINATOR,
                show="everything").status_code == 422


def cli(stack, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT,
                          env=stack.env, capture_output=True, text=True, timeout=300)


def test_cli_import_status_list_show_stats(web, tmp_path):
    who = ["--as", "procuratorate", "--unit", "lucheng-procuratorate", "--county", "lucheng"]
    prefix = f"温鹿〔{uuid.uuid4().hex[:6]}〕"
    rows, over, bad_lines = samples.decisions(rows=60, bad=3, over=4, prefix=prefix,
                                              counties=["lucheng"])
    path = tmp_path / "decisions.csv"
    path.write_bytes(samples.to_csv(rows))
    out = cli(web, "penalties", "import", str(path), *who)
    assert out.returncode == 0, out.stderr
    assert "57 new" in out.stdout and "3 rejected" in out.stdout and "4 meet" in out.stdout
    for line in bad_lines:
        assert f"line {line}:" in out.stdout
    strict = cli(web, "penalties", "import", str(path), "--strict", *who)
    assert strict.returncode == 1 and "57 unchanged" in strict.stdout
    assert cli(web, "penalties", "status", *who).returncode == 0
    listed = cli(web, "penalties", "list", "--json", *who)
    numbers = {r["case_number"] for r in json.loads(listed.stdout)}
    assert set(over) <= numbers
    shown = cli(web, "penalties", "show", over[0], *who)
    assert json.loads(shown.stdout)["candidate"] is True
    stats = json.loads(cli(web, "penalties", "stats", *who).stdout)
    assert stats["candidates"] >= 4
    refused = cli(web, "penalties", "list", "--as", "police", "--unit", "lucheng-psb")
    assert refused.returncode == 2 and "forbidden" in refused.stdout
    assert cli(web, "penalties", "import", str(tmp_path / "missing.csv"), *who).returncode

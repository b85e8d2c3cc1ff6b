"""The case file end to end through the gateway: upload, list, download (ETag, Range),
who may see a file, the download audit, bad input, a blob altered on disk, the official
forms as PDF, and a gateway killed mid-upload."""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
import requests

from shared.demo import tiny_pdf
from tests.conftest import wait_for
from tests.helpers import (
    COORDINATOR,
    HEAD,
    MARKET,
    OTHER_UNIT,
    POLICE,
    POLICE_2,
    PROCURATORATE,
    REQUIRED_FILES,
    TRANSFER,
    UNIT,
    dispatch_payload,
    draft_payload,
    market_payload,
    token,
)

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n% a small test document\n" + os.urandom(50_000) + b"\n%%EOF\n"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(300_000)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2_000)


def auth(actor) -> dict:
    return {"Authorization": f"Bearer {token(actor)}"}


@pytest.fixture(scope="module")
def web(stack):
    wait_for(lambda: _up(stack.base_url), message="gateway HTTP")
    return stack


def _up(base):
    try:
        return requests.get(base + "/healthz", timeout=2).ok
    except requests.RequestException:
        return False


def pdf_text(content: bytes) -> str:
    """The text of a PDF without whitespace (titles are letter-spaced)."""
    from pypdf import PdfReader
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)
    return "".join(text.split())


def upload(base, actor, path, content, kind, filename="移送书.pdf", title="移送书",
           media_type="application/pdf"):
    return requests.post(base + path + "/documents", headers=auth(actor), timeout=60,
                         data={"kind": kind, "title": title},
                         files={"file": (filename, content, media_type)})


def new_referral(base) -> str:
    r = requests.post(base + "/api/v1/criminal-referrals", headers=auth(UNIT), timeout=30,
                      json=draft_payload(f"DOC-{uuid.uuid4().hex[:6]}"))
    assert r.status_code == 201, r.text
    return f"/api/v1/criminal-referrals/{r.json()['id']}"


def act(base, actor, path, command, body):
    r = requests.post(f"{base}{path}/{command}", headers=auth(actor), json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def upload_missing(base, path):
    """Upload the papers a transfer needs that are not in the case file yet."""
    present = {d["kind"] for d in requests.get(base + path + "/documents",
                                               headers=auth(UNIT), timeout=30).json()}
    for kind in REQUIRED_FILES:
        if kind not in present:
            up = upload(base, UNIT, path, tiny_pdf(path, kind), kind, f"{kind}.pdf", kind)
            assert up.status_code == 201, up.text


def transfer(base, path):
    upload_missing(base, path)
    act(base, UNIT, path, "request_approval", {"transfer_report": "报告"})
    act(base, HEAD, path, "approve", {})
    act(base, UNIT, path, "transfer", TRANSFER)


def test_upload_transfer_and_the_police_download_the_same_bytes(web):
    base = web.base_url
    path = new_referral(base)
    up = upload(base, UNIT, path, PDF, "transfer_letter")
    assert up.status_code == 201, up.text
    doc = up.json()
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert (doc["size"], doc["media_type"], doc["kind"]) == (len(PDF), "application/pdf",
                                                             "transfer_letter")
    assert doc["uploaded_by"]["user_id"] == UNIT.user_id and doc["filename"] == "移送书.pdf"
    assert up.headers["Location"].endswith(f"/documents/{doc['id']}")
    video = upload(base, UNIT, path, MP4, "other_materials", "现场视频.mp4", "现场视频",
                   "video/mp4")
    assert video.status_code == 201, video.text
    listing = requests.get(base + path + "/documents", headers=auth(UNIT), timeout=30)
    assert [d["id"] for d in listing.json()] == [doc["id"], video.json()["id"]]
    # the step is in the handoff's timeline and hash chain, with the SHA-256
    rec = requests.get(base + path, headers=auth(UNIT), timeout=30).json()
    step = [s for s in rec["timeline"] if s["command"] == "attach_file"][0]
    assert step["details"]["sha256"] == doc["sha256"]

    # the police see nothing before the transfer, everything after it
    one = f"{base}{path}/documents/{doc['id']}"
    assert requests.get(one, headers=auth(POLICE), timeout=30).status_code == 403
    transfer(base, path)
    got = requests.get(one, headers=auth(POLICE), timeout=30)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["ETag"] == f'"{doc["sha256"]}"'
    assert f"filename*=UTF-8''{quote('移送书.pdf')}" in got.headers["Content-Disposition"]
    assert requests.get(one, headers={**auth(POLICE), "If-None-Match": got.headers["ETag"]},
                        timeout=30).status_code == 304
    # a video is played with ranges
    vid = f"{base}{path}/documents/{video.json()['id']}"
    part = requests.get(vid, headers={**auth(POLICE), "Range": "bytes=100-1099"}, timeout=30)
    assert part.status_code == 206 and part.content == MP4[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(MP4)}"
    tail = requests.get(vid, headers={**auth(POLICE), "Range": "bytes=-10"}, timeout=30)
    assert tail.status_code == 206 and tail.content == MP4[-10:]
    beyond = requests.get(vid, headers={**auth(POLICE), "Range": f"bytes={len(MP4)}-"},
                          timeout=30)
    assert beyond.status_code == 416 and beyond.json()["code"] == "range_not_satisfiable"

    # who may see a file is who may see the handoff
    for actor, allowed in ((UNIT, True), (HEAD, True), (POLICE, True), (PROCURATORATE, True),
                           (COORDINATOR, True), (POLICE_2, False), (OTHER_UNIT, False),
                           (MARKET, False)):
        listed = requests.get(base + path + "/documents", headers=auth(actor), timeout=30)
        fetched = requests.get(one, headers=auth(actor), timeout=30)
        want = 200 if allowed else 403
        assert (listed.status_code, fetched.status_code) == (want, want), actor
        if allowed:
            assert fetched.content == PDF

    # the sending side's documents are frozen after the transfer; the police add theirs
    frozen = upload(base, UNIT, path, PDF, "investigation_report")
    assert frozen.status_code == 409 and "kind" in frozen.json()["errors"]
    receipt = upload(base, POLICE, path, PNG, "receipt", "回执.png", "签收回执", "image/png")
    assert receipt.status_code == 201, receipt.text
    assert receipt.json()["media_type"] == "image/png"

    # every download is an audit record
    with web.rpc() as rpc:
        rows = rpc.documents.downloads(token(COORDINATOR), path.rsplit("/", 1)[1])
    police_rows = [r for r in rows if r["user_id"] == POLICE.user_id]
    assert {r["document_id"] for r in police_rows} == {doc["id"], video.json()["id"]}
    assert "bytes=100-1099" in {r["byte_range"] for r in police_rows}
    assert not [r for r in rows if r["user_id"] == POLICE_2.user_id]   # refused: no bytes


def test_bad_uploads_are_named_and_leave_nothing_behind(web):
    base = web.base_url
    path = new_referral(base)
    blobs = web.tmp / "blobs" / "sha256"
    before = set(blobs.glob("*/*")) if blobs.exists() else set()
    cases = [
        (dict(content=PDF, kind="no_such_kind"), 422, "kind"),
        (dict(content=b"", kind="items_list"), 422, "file"),
        (dict(content=b"just some text, not a document\n" * 10, kind="items_list",
              filename="a.txt", media_type="text/plain"), 422, "file"),
        (dict(content=PDF, kind="items_list", media_type="image/png"), 422, "file"),
        (dict(content=PDF, kind="receipt"), 403, "kind"),      # the police's kind
    ]
    for kw, status, field in cases:
        r = upload(base, UNIT, path, **kw)
        assert r.status_code == status, (kw.get("kind"), r.text)
        assert field in r.json()["errors"], r.text
    not_multipart = requests.post(base + path + "/documents", headers=auth(UNIT), json={},
                                  timeout=30)
    assert not_multipart.status_code == 422
    assert requests.get(base + path + "/documents", headers=auth(UNIT), timeout=30).json() == []
    assert (set(blobs.glob("*/*")) if blobs.exists() else set()) == before
    assert not list((web.tmp / "blobs" / "tmp").glob("*"))


def test_a_file_over_the_limit_is_refused_before_its_body_is_read(web):
    base = web.base_url
    path = new_referral(base)
    conn = http.client.HTTPConnection("127.0.0.1", web.http_port, timeout=30)
    conn.putrequest("POST", path + "/documents")
    conn.putheader("Authorization", auth(UNIT)["Authorization"])
    conn.putheader("Content-Type", "multipart/form-data; boundary=xyz")
    conn.putheader("Content-Length", str(600 * 1024 * 1024))
    conn.endheaders()
    conn.send(b"--xyz\r\n")          # a few bytes of the 600 MiB announced
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["code"] == "payload_too_large"
    conn.close()


def test_a_chunked_upload_arrives_whole(web, tmp_path):
    """A body without Content-Length (Transfer-Encoding: chunked, as a streaming client
    sends it) is read to its end: werkzeug's request.stream read it as empty."""
    from shared.clidocs import multipart
    base = web.base_url
    path = new_referral(base)
    source = tmp_path / "现场录像.mp4"
    source.write_bytes(MP4 + os.urandom(3 * 1024 * 1024 + 17))
    content_type, _length, body = multipart({"kind": "other_materials", "title": "录像"},
                                            "file", source, "video/mp4")
    r = requests.post(base + path + "/documents", timeout=60, data=iter(body),
                      headers={**auth(UNIT), "Content-Type": content_type})
    assert r.status_code == 201, r.text
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    doc = r.json()
    assert doc["size"] == source.stat().st_size
    assert doc["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    got = requests.get(f"{base}{path}/documents/{doc['id']}", headers=auth(UNIT), timeout=60)
    assert got.content == source.read_bytes()


def test_an_altered_blob_is_never_served(web):
    base = web.base_url
    path = new_referral(base)
    content = b"%PDF-1.4\n" + os.urandom(10_000)
    doc = upload(base, UNIT, path, content, "items_list", "清单.pdf").json()
    blob = web.tmp / "blobs" / "sha256" / doc["sha256"][:2] / doc["sha256"]
    assert blob.read_bytes() == content
    blob.chmod(0o640)
    blob.write_bytes(content[:-1] + b"X")
    r = requests.get(f"{base}{path}/documents/{doc['id']}", headers=auth(UNIT), timeout=30)
    assert r.status_code == 409 and "incident" in r.json()["message"], r.text
    assert "blob_altered" in web.log("gateway")
    with web.rpc() as rpc:
        result = rpc.documents.verify(token(COORDINATOR))
    assert doc["sha256"] in result["altered"]
    blob.write_bytes(content)      # repaired: later checks of the store pass again


def test_official_forms_as_pdf_and_filed_with_one_action(web):
    base = web.base_url
    path = new_referral(base)
    case_number = requests.get(base + path, headers=auth(UNIT), timeout=30).json()[
        "case_number"]
    r = requests.get(base + path + "/forms/transfer_letter.pdf", headers=auth(UNIT),
                     timeout=120)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"] == "application/pdf"
    text = pdf_text(r.content)
    assert case_number in text and "张三" in text and "第六条" in text
    assert "涉嫌犯罪案件移送书" in text
    assert requests.get(base + path + "/forms/nonsense.pdf", headers=auth(UNIT),
                        timeout=30).status_code == 404
    assert requests.get(base + path + "/forms/transfer_letter.pdf", headers=auth(POLICE_2),
                        timeout=30).status_code == 403
    filed = requests.post(base + path + "/forms/transfer_letter.pdf", headers=auth(UNIT),
                          timeout=120)
    assert filed.status_code == 201, filed.text
    doc = filed.json()
    assert (doc["kind"], doc["media_type"], doc["form"]) == ("transfer_letter",
                                                             "application/pdf",
                                                             "transfer_letter")
    got = requests.get(f"{base}{path}/documents/{doc['id']}", headers=auth(UNIT), timeout=30)
    assert hashlib.sha256(got.content).hexdigest() == doc["sha256"]
    # filing it again (a double click, a retry) is a 409 naming the first, not a copy
    again = requests.post(base + path + "/forms/transfer_letter.pdf", headers=auth(UNIT),
                          timeout=120)
    assert again.status_code == 409 and again.json()["code"] == "already_filed", again.text
    assert doc["id"] in again.json()["errors"]["form"][0]
    listing = requests.get(base + path + "/documents", headers=auth(UNIT), timeout=30).json()
    assert [d["id"] for d in listing if d.get("form") == "transfer_letter"] == [doc["id"]]
    transfer(base, path)
    receipt = requests.get(base + path + "/forms/receipt.pdf", headers=auth(POLICE),
                           timeout=120)
    text = pdf_text(receipt.content)
    assert "移送回执" in text and "第八条" in text and case_number in text


def test_market_referral_and_joint_action_case_files(web):
    base = web.base_url
    r = requests.post(base + "/api/v1/market-referrals", headers=auth(UNIT), timeout=30,
                      json=market_payload(f"MR-{uuid.uuid4().hex[:6]}"))
    assert r.status_code == 201, r.text
    path = f"/api/v1/market-referrals/{r.json()['id']}"
    sent = upload(base, UNIT, path, PNG, "photos_video", "照片.png", "现场照片", "image/png")
    assert sent.status_code == 201, sent.text
    got = requests.get(f"{base}{path}/documents/{sent.json()['id']}", headers=auth(MARKET),
                       timeout=30)
    assert got.status_code == 200 and got.content == PNG
    answered = upload(base, MARKET, path, PDF, "result_report", "结果.pdf", "处理结果")
    assert answered.status_code == 201, answered.text
    assert upload(base, UNIT, path, PDF, "transfer_letter").status_code == 422

    from tests.helpers import CITY, LUCHENG, RUIAN
    j = requests.post(base + "/api/v1/joint-actions", headers=auth(CITY), timeout=30,
                      json=dispatch_payload(datetime.now(UTC)))
    assert j.status_code == 201, j.text
    jpath = f"/api/v1/joint-actions/{j.json()['id']}"
    filed = upload(base, LUCHENG, jpath, PDF, "result_report", "行动报告.pdf", "行动报告")
    assert filed.status_code == 201, filed.text
    assert requests.get(f"{base}{jpath}/documents", headers=auth(RUIAN),
                        timeout=30).status_code == 403
    # the same id under the other command collection is not found
    assert requests.get(f"{base}/api/v1/assistance-requests/{j.json()['id']}/documents",
                        headers=auth(CITY), timeout=30).status_code == 404


def test_gateway_killed_mid_upload_leaves_no_record_and_no_temp_file(web):
    base = web.base_url
    path = new_referral(base)
    tmp = web.tmp / "blobs" / "tmp"
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\n"
            f"items_list\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\n").encode()
    conn = http.client.HTTPConnection("127.0.0.1", web.http_port, timeout=30)
    conn.putrequest("POST", path + "/documents")
    conn.putheader("Authorization", auth(UNIT)["Authorization"])
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(100 * 1024 * 1024))
    conn.endheaders()
    conn.send(head)
    for _ in range(8):
        conn.send(os.urandom(1024 * 1024))
    wait_for(lambda: list(tmp.glob("upload-*")), message="the upload's temp file")
    web.stop("gateway", kill=True)
    conn.close()
    assert list(tmp.glob("upload-*"))            # the crash left it
    web.start("gateway")
    wait_for(lambda: _up(base), message="gateway back")
    assert not list(tmp.glob("upload-*"))        # cleaned up on start
    listing = requests.get(base + path + "/documents", headers=auth(UNIT), timeout=30)
    assert listing.status_code == 200 and listing.json() == []
    time.sleep(0)


def test_cli_documents_put_list_get_and_forms(web, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=tmp_path,
                              env={**web.env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                              text=True, timeout=300)
    base = web.base_url
    path = new_referral(base)
    rid = path.rsplit("/", 1)[1]
    me = ["--as", "enforcement_unit", "--unit", UNIT.unit, "--county", "lucheng",
          "--url", base]
    source = tmp_path / "清单.pdf"
    source.write_bytes(PDF)
    put = cli("documents", "put", *me, rid, str(source), "--kind", "items_list")
    assert put.returncode == 0, put.stderr
    doc = json.loads(put.stdout)
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest()
    listed = cli("documents", "list", *me, rid)
    assert listed.returncode == 0 and doc["id"] in listed.stdout and "清单.pdf" in listed.stdout
    got = cli("documents", "get", *me, rid, doc["id"], "-o", str(tmp_path / "back.pdf"))
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "back.pdf").read_bytes() == PDF
    bad = cli("documents", "put", *me, rid, str(source), "--kind", "nonsense")
    assert bad.returncode == 2 and "invalid_input" in bad.stderr
    form = cli("forms", *me, rid, "transfer_letter", "-o", str(tmp_path / "letter.pdf"))
    assert form.returncode == 0, form.stderr
    assert "涉嫌犯罪案件移送书" in pdf_text((tmp_path / "letter.pdf").read_bytes())
    police = cli("documents", "list", "--as", "police", "--unit", POLICE_2.unit, "--url",
                 base, rid)
    assert police.returncode == 2 and "forbidden" in police.stderr


def test_the_transfer_needs_the_files_and_a_forward_moves_them(web):
    """Decree art. 6 (1)-(3) as uploaded files: the transfer is refused with 422 naming
    each missing kind. A forwarded case's files go to the new police unit; the former one
    keeps the timeline but no longer sees the files. The download audit over HTTP."""
    base = web.base_url
    path = new_referral(base)
    handoff_id = path.rsplit("/", 1)[1]
    assert upload(base, UNIT, path, PDF, "transfer_letter").status_code == 201
    act(base, UNIT, path, "request_approval", {"transfer_report": "报告"})
    act(base, HEAD, path, "approve", {})
    refused = requests.post(f"{base}{path}/transfer", headers=auth(UNIT), json=TRANSFER,
                            timeout=30)
    assert refused.status_code == 422, refused.text
    missing = refused.json()["errors"]["files"]
    assert [m.split()[1] for m in missing] == ["investigation_report", "items_list"]
    assert "涉案物品清单" in missing[1]
    upload_missing(base, path)
    act(base, UNIT, path, "transfer", TRANSFER)

    one = f"{base}{path}/documents"
    letter = requests.get(one, headers=auth(POLICE), timeout=30).json()[0]
    assert requests.get(f"{one}/{letter['id']}", headers=auth(POLICE), timeout=30).content \
        == PDF
    act(base, POLICE, path, "sign_receipt", {"receipt_number": "R-1", "receiving_officer": "王"})
    act(base, POLICE, path, "forward", {"competent_authority": POLICE_2.unit,
                                        "reason": "不属本局管辖"})
    got = requests.get(f"{one}/{letter['id']}", headers=auth(POLICE_2), timeout=30)
    assert got.status_code == 200 and got.content == PDF
    assert requests.get(one, headers=auth(POLICE_2), timeout=30).status_code == 200
    for url in (one, f"{one}/{letter['id']}", f"{base}{path}/forms/receipt.pdf"):
        assert requests.get(url, headers=auth(POLICE), timeout=30).status_code == 403, url
    former = requests.get(base + path, headers=auth(POLICE), timeout=30)
    assert former.status_code == 200 and former.json()["files"] == []   # the timeline stays
    assert "forward" in [s["command"] for s in former.json()["timeline"]]
    assert len(requests.get(base + path, headers=auth(POLICE_2), timeout=30).json()[
        "files"]) == 3

    # who downloaded what: coordinators and operators, over HTTP
    audit = requests.get(f"{base}{path}/downloads", headers=auth(COORDINATOR), timeout=30)
    assert audit.status_code == 200, audit.text
    rows = audit.json()
    assert {(r["user_id"], r["document_id"]) for r in rows} == {
        (POLICE.user_id, letter["id"]), (POLICE_2.user_id, letter["id"])}
    assert rows[0]["user_id"] == POLICE_2.user_id and rows[0]["at"] >= rows[-1]["at"]
    assert all(r["handoff_id"] == handoff_id for r in rows)
    for actor in (UNIT, POLICE_2):
        assert requests.get(f"{base}{path}/downloads", headers=auth(actor),
                            timeout=30).status_code == 403
    unknown = requests.get(f"{base}/api/v1/criminal-referrals/{uuid.uuid4()}/downloads",
                           headers=auth(COORDINATOR), timeout=30)
    assert unknown.status_code == 404

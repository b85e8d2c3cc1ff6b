"""The gateway's multipart upload parser (services/gateway/uploads.receive) on request
bodies built by hand: the fields, the kind checked before the file is stored, refusals
that name the problem and leave no temp file behind."""
from __future__ import annotations

import io
import os

import pytest

from services.gateway import uploads
from shared import blobstore
from shared.errors import InvalidInput

BOUNDARY = "----liandong-test-boundary"


class Request:
    def __init__(self, body: bytes, content_type: str | None = None):
        self.headers = {"Content-Type": content_type
                        or f"multipart/form-data; boundary={BOUNDARY}"}
        self.stream = io.BytesIO(body)
        self.content_length = len(body)


def part(name: str, value: bytes, filename: str | None = None,
         content_type: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def body(*parts: bytes, end: bool = True) -> bytes:
    return b"".join(parts) + (f"--{BOUNDARY}--\r\n".encode() if end else b"")


@pytest.fixture
def store(tmp_path, monkeypatch):
    s = blobstore.FileBlobStore(tmp_path / "blobs")
    monkeypatch.setattr(blobstore, "_store", s)
    return s


def test_fields_then_a_file_of_several_chunks(store):
    data = os.urandom(3 * uploads.READ + 123)
    checked = []
    fields, upload = uploads.receive(Request(body(
        part("kind", b"transfer_letter"), part("title", "移送书\x00 ".encode()),
        part("file", data, "移送书.pdf", "application/pdf"))), checked.append)
    assert checked == ["transfer_letter"]        # once, before the file was stored
    assert fields == {"kind": "transfer_letter", "title": "移送书", "filename": "移送书.pdf",
                      "declared": "application/pdf"}
    assert upload.size == len(data)
    sha = upload.commit()
    assert store.path(sha).read_bytes() == data


def test_kind_after_the_file_is_checked_at_the_end(store):
    checked = []
    fields, upload = uploads.receive(Request(body(
        part("file", b"%PDF-1.4 x", "a.pdf", "application/pdf"),
        part("kind", b"items_list"))), checked.append)
    assert checked == ["items_list"] and fields["kind"] == "items_list"
    upload.abort()


@pytest.mark.parametrize("raw, field", [
    (body(part("kind", b"x")), "file"),                                     # no file
    (body(part("file", b"abc", "a.pdf")), "kind"),                          # no kind
    (body(part("kind", b"x"), part("file", b"", "a.pdf")), "file"),          # empty
    (body(part("kind", b"x"), part("title", b"t" * 5000), part("file", b"a", "a")), "title"),
    (body(part("kind", b"x"), part("file", b"a", "a"), part("file", b"b", "b")), "file"),
    # cut off inside the file: refused as truncated, or (werkzeug's decoder drops a part
    # it never saw end) as having no file — either way nothing is kept
    (body(part("kind", b"x")) + part("file", b"abc" * 1000, "a.pdf")[:-200], "body|file"),
])
def test_refusals_name_the_field_and_leave_no_temp_file(store, raw, field):
    with pytest.raises(InvalidInput) as refused:
        uploads.receive(Request(raw), lambda kind: None)
    assert set(field.split("|")) & set(refused.value.errors), refused.value.errors
    assert not list(store.tmp.iterdir()) if store.tmp.exists() else True


def test_a_refused_kind_stores_nothing(store):
    def check(kind):
        raise InvalidInput("no such kind", {"kind": ["unknown"]})
    with pytest.raises(InvalidInput):
        uploads.receive(Request(body(part("kind", b"nope"), part("file", b"abc", "a"))), check)
    assert not store.tmp.exists() or not list(store.tmp.iterdir())


def test_not_multipart_is_refused():
    with pytest.raises(InvalidInput) as refused:
        uploads.receive(Request(b"{}", "application/json"), lambda kind: None)
    assert "body" in refused.value.errors


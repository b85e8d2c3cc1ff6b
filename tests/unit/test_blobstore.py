"""The blob store of the case files: content addressing, atomic writes, the check of a
blob's bytes, the clean-up of an interrupted upload — on the file store and on an
S3-compatible store (moto's in-process S3)."""
from __future__ import annotations

import hashlib
import os

import pytest

from shared import blobstore, casefile
from shared.errors import InvalidInput


def test_file_store_writes_atomically_and_checks_bytes(tmp_path):
    store = blobstore.FileBlobStore(tmp_path)
    data = os.urandom(3 * blobstore.CHUNK + 17)
    with store.upload() as up:
        for i in range(0, len(data), 100_000):
            up.write(data[i:i + 100_000])
        sha = up.commit()
    assert sha == hashlib.sha256(data).hexdigest() and up.created
    assert store.path(sha).read_bytes() == data
    assert list(store.all()) == [sha] and not list(store.tmp.iterdir())
    assert b"".join(store.open_verified(sha, 10, 19)) == data[10:20]
    assert store.put_bytes(data) == (sha, False)          # stored once
    store.path(sha).chmod(0o640)
    store.path(sha).write_bytes(data[:-1] + b"!")
    with pytest.raises(blobstore.BlobAltered):
        store.verify(sha)
    assert store.check(sha) == "altered"
    store.delete(sha)
    assert store.check(sha) == "missing"


def test_cleanup_removes_interrupted_uploads_but_not_running_ones(tmp_path):
    store = blobstore.FileBlobStore(tmp_path)
    running = store.upload()
    running.write(b"%PDF-")
    store.tmp.joinpath("upload-crashed").write_bytes(b"half")
    assert store.cleanup() == 1
    assert running.path.exists()
    running.abort()
    assert not list(store.tmp.iterdir())


def test_media_types_are_sniffed_and_must_match_the_declared_one():
    assert casefile.sniff(b"%PDF-1.7\n...", "application/pdf", "a.pdf") == "application/pdf"
    assert casefile.sniff(b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "", "x") == "image/png"
    assert casefile.sniff(blobstore_ole2(), "application/octet-stream", "a.doc") == \
        "application/msword"
    for head, declared in ((b"plain text", "text/plain"), (b"%PDF-1.4", "image/png"),
                           (b"MZ\x90\x00", "application/pdf")):
        with pytest.raises(InvalidInput):
            casefile.sniff(head, declared, "x")


def blobstore_ole2() -> bytes:
    return casefile.OLE2 + b"\0" * 100


def test_s3_store_with_moto(tmp_path, monkeypatch):
    moto = pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="case-files")
        store = blobstore.S3BlobStore("case-files", prefix="lt/", spool=tmp_path,
                                      client=client)
        data = os.urandom(2 * blobstore.CHUNK + 5)
        with store.upload() as up:
            up.write(data)
            sha = up.commit()
        assert up.created and not list(store.tmp.iterdir())
        key = f"lt/sha256/{sha[:2]}/{sha}"
        assert client.get_object(Bucket="case-files", Key=key)["Body"].read() == data
        assert b"".join(store.open_verified(sha)) == data
        assert b"".join(store.read(sha, 5, 9)) == data[5:10]
        assert list(store.all()) == [sha] and store.size(sha) == len(data)
        assert store.put_bytes(data) == (sha, False)
        client.put_object(Bucket="case-files", Key=key, Body=data + b"x")
        assert store.check(sha) == "altered"
        with pytest.raises(blobstore.BlobAltered):
            store.verify(sha)
        store.delete(sha)
        assert store.check(sha) == "missing"

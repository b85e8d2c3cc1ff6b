"""Content-addressed blob storage of the case files: each file is stored once under its
SHA-256, streamed in and out in chunks (never whole in memory).

Two backends, chosen by configuration:

* ``LIANDONG_BLOB_STORE=file`` (default): a directory, ``LIANDONG_BLOB_DIR`` (default
  ``<LIANDONG_DATA_DIR>/blobs``). An upload is written to ``tmp/`` while being hashed,
  fsync'd, then renamed to ``sha256/ab/<sha256>`` (the directory fsync'd too): a crash
  leaves at most a temp file, which ``cleanup()`` removes at the next start.
* ``LIANDONG_BLOB_STORE=s3``: any S3-compatible object store through boto3
  (``LIANDONG_S3_BUCKET``, ``LIANDONG_S3_ENDPOINT``, ``LIANDONG_S3_PREFIX``; credentials
  from boto3's usual chain: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` or a role).
  The upload is spooled to a local temp file while hashed, then sent with a multipart
  upload under ``<prefix>sha256/ab/<sha256>`` (the file store's layout).

Reading verifies: ``open_verified`` re-hashes a blob before serving it (once per file
version in a process) and raises ``BlobAltered`` when the bytes no longer match their
name, so altered bytes are never served.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1024 * 1024
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BlobMissing(Exception):
    """No blob stored under this SHA-256."""


class BlobAltered(Exception):
    """The stored bytes no longer hash to their name."""


def _check(sha: str) -> str:
    if not isinstance(sha, str) or not SHA256.match(sha):
        raise ValueError(f"not a SHA-256: {sha!r}")
    return sha


class Upload:
    """One blob being written: ``write`` chunks, then ``commit`` (or ``abort``)."""

    def __init__(self, store: FileBlobStore):
        self.store = store
        self.sha = hashlib.sha256()
        self.size = 0
        store.tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", dir=store.tmp)
        self.path = Path(name)
        fcntl.flock(fd, fcntl.LOCK_EX)     # held while written: cleanup() skips it
        self.file = os.fdopen(fd, "wb")
        self.head = b""          # the first bytes, for sniffing the media type
        self.created = False     # commit made a new blob (not already stored)
        self.digest: str | None = None

    def write(self, chunk: bytes) -> None:
        if len(self.head) < 8192:
            self.head += chunk[: 8192 - len(self.head)]
        self.sha.update(chunk)
        self.size += len(chunk)
        self.file.write(chunk)

    def finish(self) -> str:
        """Flush and fsync the temp file; return the SHA-256 (not yet stored)."""
        if self.digest is None:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            self.digest = self.sha.hexdigest()
        return self.digest

    def commit(self) -> str:
        digest = self.finish()
        self.created = self.store._adopt(self.path, digest)
        return digest

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None or self.path.exists():
            self.abort()   # committed files were renamed away; anything left is temp


class FileBlobStore:
    backend = "file"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self._verified: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"file:{self.root}"

    def path(self, sha: str) -> Path:
        _check(sha)
        return self.root / "sha256" / sha[:2] / sha

    def upload(self) -> Upload:
        return Upload(self)

    def _adopt(self, temp: Path, sha: str) -> bool:
        """Rename a finished temp file to its content address; False if already there."""
        target = self.path(sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            temp.unlink(missing_ok=True)
            return False
        os.chmod(temp, 0o440)
        os.replace(temp, target)
        st = target.stat()     # just hashed while written: the first download needs no re-read
        with self._lock:
            self._verified[sha] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return True

    def put_file(self, source: str | os.PathLike) -> tuple[str, int]:
        """Store a local file (forms, CLI, tests); returns (sha256, size)."""
        with self.upload() as up, open(source, "rb") as f:
            while chunk := f.read(CHUNK):
                up.write(chunk)
            return up.commit(), up.size

    def put_bytes(self, data: bytes) -> tuple[str, bool]:
        with self.upload() as up:
            up.write(data)
            return up.commit(), up.created

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def size(self, sha: str) -> int:
        try:
            return self.path(sha).stat().st_size
        except FileNotFoundError:
            raise BlobMissing(sha) from None

    def delete(self, sha: str) -> None:
        self.path(sha).unlink(missing_ok=True)
        self._verified.pop(sha, None)

    def hash_of(self, sha: str) -> str:
        h = hashlib.sha256()
        try:
            with open(self.path(sha), "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            raise BlobMissing(sha) from None
        return h.hexdigest()

    def check(self, sha: str) -> str:
        """'ok', 'missing' or 'altered' (re-hashes the whole blob)."""
        try:
            return "ok" if self.hash_of(sha) == sha else "altered"
        except BlobMissing:
            return "missing"

    def verify(self, sha: str) -> None:
        """Raise BlobMissing/BlobAltered unless the blob hashes to its name; a file
        version (inode, size, mtime) already verified in this process is not re-read."""
        try:
            st = self.path(sha).stat()
        except FileNotFoundError:
            raise BlobMissing(sha) from None
        version = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if self._verified.get(sha) == version:
            return
        if self.hash_of(sha) != sha:
            raise BlobAltered(sha)
        with self._lock:
            self._verified[sha] = version

    def read(self, sha: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes [start, end] (inclusive, as HTTP ranges), in chunks."""
        path = self.path(sha)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise BlobMissing(sha) from None

        def chunks():
            with f:
                f.seek(start)
                left = (end - start + 1) if end is not None else None
                while left is None or left > 0:
                    chunk = f.read(CHUNK if left is None else min(CHUNK, left))
                    if not chunk:
                        return
                    if left is not None:
                        left -= len(chunk)
                    yield chunk
        return chunks()

    def open_verified(self, sha: str, start: int = 0, end: int | None = None):
        self.verify(sha)
        return self.read(sha, start, end)

    def all(self) -> Iterator[str]:
        base = self.root / "sha256"
        if base.is_dir():
            for p in sorted(base.glob("??/*")):
                if SHA256.match(p.name):
                    yield p.name

    def cleanup(self) -> int:
        """Remove temp files a crash left behind (at start); returns how many."""
        removed = 0
        if self.tmp.is_dir():
            for p in self.tmp.iterdir():
                try:
                    fd = os.open(p, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue          # a running upload's
                finally:
                    os.close(fd)
                p.unlink(missing_ok=True)
                removed += 1
        return removed


class S3BlobStore(FileBlobStore):
    """S3-compatible storage (boto3). Uploads are spooled to a local temp directory
    while hashed, then sent under their SHA-256; reads stream the object's body."""

    backend = "s3"

    def __init__(self, bucket: str, *, endpoint: str | None = None, prefix: str = "",
                 spool: str | os.PathLike | None = None, client=None):
        super().__init__(spool or Path(tempfile.gettempdir()) / f"liandong-s3-{os.getuid()}")
        import boto3
        self.bucket = bucket
        self.prefix = prefix
        self.client = client or boto3.client("s3", endpoint_url=endpoint or None)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, sha: str) -> str:
        return f"{self.prefix}sha256/{_check(sha)[:2]}/{sha}"   # the file store's layout

    def _adopt(self, temp: Path, sha: str) -> bool:
        try:
            if self.exists(sha):
                return False
            self.client.upload_file(str(temp), self.bucket, self.key(sha))
            return True
        finally:
            temp.unlink(missing_ok=True)

    def exists(self, sha: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(sha))
            return True
        except self.client.exceptions.ClientError:
            return False

    def size(self, sha: str) -> int:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(sha))[
                "ContentLength"]
        except self.client.exceptions.ClientError:
            raise BlobMissing(sha) from None

    def delete(self, sha: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(sha))
        self._verified.pop(sha, None)

    def read(self, sha: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(sha), **extra)[
                "Body"]
        except self.client.exceptions.ClientError:
            raise BlobMissing(sha) from None
        return body.iter_chunks(CHUNK)

    def hash_of(self, sha: str) -> str:
        h = hashlib.sha256()
        for chunk in self.read(sha):
            h.update(chunk)
        return h.hexdigest()

    def verify(self, sha: str) -> None:
        try:
            etag = self.client.head_object(Bucket=self.bucket, Key=self.key(sha))["ETag"]
        except self.client.exceptions.ClientError:
            raise BlobMissing(sha) from None
        if self._verified.get(sha) == etag:
            return
        if self.hash_of(sha) != sha:
            raise BlobAltered(sha)
        with self._lock:
            self._verified[sha] = etag

    def all(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}sha256/")
        for page in pages:
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if SHA256.match(name):
                    yield name


_store = None


def from_environment():
    """The blob store this deployment configured (see the module docstring)."""
    from shared.db import data_dir
    backend = os.environ.get("LIANDONG_BLOB_STORE", "file")
    if backend == "file":
        return FileBlobStore(os.environ.get("LIANDONG_BLOB_DIR") or data_dir() / "blobs")
    if backend == "s3":
        bucket = os.environ.get("LIANDONG_S3_BUCKET")
        if not bucket:
            raise SystemExit("LIANDONG_BLOB_STORE=s3 needs LIANDONG_S3_BUCKET")
        return S3BlobStore(bucket, endpoint=os.environ.get("LIANDONG_S3_ENDPOINT"),
                           prefix=os.environ.get("LIANDONG_S3_PREFIX", ""),
                           spool=os.environ.get("LIANDONG_BLOB_DIR") or None)
    raise SystemExit(f"LIANDONG_BLOB_STORE={backend!r}: use 'file' or 's3'")


def store():
    global _store
    if _store is None:
        _store = from_environment()
    return _store


def file_bytes(data: bytes, attach, register) -> dict:
    """File a small document held in memory (a generated form, the demo's papers) the
    way an upload is filed: the blob stored first, then ``attach(sha256)`` records the
    step and returns the record; if that refuses, a blob this call created goes again
    (nothing half-written). ``register(sha256)`` notes the blob afterwards."""
    sha, created = store().put_bytes(data)
    try:
        filed = attach(sha)
    except Exception:
        if created:
            store().delete(sha)
        raise
    register(sha)
    return filed


def new_id() -> str:
    return uuid.uuid4().hex

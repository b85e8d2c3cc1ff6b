"""Case-file uploads and downloads through the gateway, streamed.

An upload (``multipart/form-data``: ``kind``, ``title``, ``file``) is read from
eventlet's ``wsgi.input`` (``body_stream``) and parsed as it arrives with werkzeug's
incremental multipart decoder; the file part goes into the blob store
(shared/blobstore.py) while it is hashed, both in a native thread while the hub reads the
next chunk (``WriteBehind``), so the gateway holds at most a few chunks (1 MiB each) of
it in memory. The request is refused with 413 before the body is read when its
Content-Length says it is too big, and before a byte past the limit is stored otherwise
(a chunked body).
The blob is stored (renamed to its SHA-256) before the handoff's service records the
step; if that refuses, a blob this upload created is removed again.

A download checks the blob's SHA-256 before serving it, answers ``If-None-Match`` with
304 and a single ``Range`` with 206 (video players seek with it).
"""
from __future__ import annotations

import contextlib
import re
import unicodedata
import uuid
from urllib.parse import quote

import eventlet
import eventlet.wsgi
import structlog
from eventlet import tpool
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import (
    NEED_DATA,
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
)
from werkzeug.wrappers import Response

from shared import blobstore, casefile
from shared.errors import InvalidInput, Rejected

log = structlog.get_logger(__name__)

READ = 1024 * 1024
FORM_OVERHEAD = 64 * 1024          # the multipart framing and the small fields
FIELD_MAX = 1000                   # characters of kind / title


class TooLarge(Rejected):
    code = "too_large"
    http_status = 413


class Conflict(Rejected):
    code = "blob_integrity"
    http_status = 409


def max_request_bytes() -> int:
    return casefile.MAX_BYTES + FORM_OVERHEAD


def safe_filename(name: str | None) -> str:
    """The client's file name without a path, control characters or more than 255
    characters; 'file' if nothing is left."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    return name[:255] or "file"


def _too_large():
    mib = casefile.MAX_BYTES // (1024 * 1024)
    return TooLarge(f"a case-file document may be at most {mib} MiB",
                    {"file": [f"at most {casefile.MAX_BYTES} bytes"]})


def body_stream(request):
    """What the body is read from: eventlet's own ``wsgi.input`` when the request came
    through eventlet's server. It stops at Content-Length and decodes a chunked body
    itself, and each read is one buffer filled from the socket; werkzeug's
    ``request.stream`` copies every chunk twice more (LimitedStream.readinto, then
    RawIOBase.read) and is empty for a chunked body. Anything else (a test's request):
    ``request.stream``."""
    environ = getattr(request, "environ", None) or {}
    raw = environ.get("wsgi.input")
    return raw if isinstance(raw, eventlet.wsgi.Input) else request.stream


class WriteBehind:
    """``upload.write`` (SHA-256 and the file write, both of which release the GIL on
    large buffers) in a native thread of eventlet's pool, one chunk in flight while the
    hub reads and parses the next: the two overlap on two cores. ``wait`` before the
    upload is used or aborted (a write never runs on a closed file)."""

    def __init__(self, upload: blobstore.Upload):
        self.upload = upload
        self.size = 0
        self._pending = None

    def write(self, data: bytes) -> None:
        self.wait()
        self.size += len(data)
        self._pending = eventlet.spawn(tpool.execute, self.upload.write, data)

    def wait(self) -> None:
        """The chunk in flight written (its error raised here)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.wait()

    def abort(self) -> None:
        with contextlib.suppress(Exception):   # the upload is dropped anyway
            self.wait()
        self.upload.abort()


def receive(request, check_kind) -> tuple[dict, blobstore.Upload]:
    """Parse the multipart body, streaming the file into a new blob upload (not yet
    committed). ``check_kind(kind)`` is called once the ``kind`` field is known, before
    any file byte is stored when the client sends the fields first (the console and
    the CLI do). Returns ({kind, title, filename, declared}, upload)."""
    mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
    boundary = options.get("boundary") or ""
    if mimetype != "multipart/form-data" or not boundary.isascii() or \
            not 0 < len(boundary) <= 70:
        raise InvalidInput("upload as multipart/form-data with the fields file, kind, title",
                           {"body": ["multipart/form-data expected"]})
    length = request.content_length
    if length is not None and length > max_request_bytes():
        raise _too_large()
    decoder = MultipartDecoder(boundary.encode("ascii"),
                               max_form_memory_size=2 * READ + FORM_OVERHEAD,
                               max_parts=10)
    stream = body_stream(request)
    received = 0
    fields: dict[str, str] = {}
    current: str | None = None
    buffer = b""
    upload: blobstore.Upload | None = None
    writer: WriteBehind | None = None
    checked = False
    done = False
    try:
        while not done:
            chunk = stream.read(READ)
            received += len(chunk)
            if received > max_request_bytes():     # a chunked body: no Content-Length
                raise _too_large()
            decoder.receive_data(chunk or None)
            event = decoder.next_event()
            while event is not NEED_DATA:
                if isinstance(event, File):
                    if event.name != "file" or upload is not None:
                        raise InvalidInput("one file part, named 'file'",
                                           {"file": ["one file part"]})
                    if "kind" in fields and not checked:
                        check_kind(fields["kind"])
                        checked = True
                    current = "file"
                    fields["filename"] = safe_filename(event.filename)
                    fields["declared"] = event.headers.get("Content-Type", "")
                    upload = blobstore.store().upload()
                    writer = WriteBehind(upload)
                elif isinstance(event, Field):
                    current, buffer = event.name, b""
                elif isinstance(event, Data):
                    if current == "file":
                        if writer.size + len(event.data) > casefile.MAX_BYTES:
                            raise _too_large()
                        writer.write(event.data)
                    elif current in ("kind", "title"):
                        buffer += event.data
                        if len(buffer) > FIELD_MAX * 4:
                            raise InvalidInput(f"{current} is too long",
                                               {current: ["too long"]})
                        if not event.more_data:
                            text = buffer.decode("utf-8", "replace")
                            fields[current] = "".join(   # no NUL or control characters
                                c for c in text if unicodedata.category(c)[0] != "C").strip()
                elif isinstance(event, Epilogue):
                    done = True
                    break
                event = decoder.next_event()
            if not chunk and not done:
                raise InvalidInput("the upload ended before its last part",
                                   {"body": ["truncated multipart body"]})
        if upload is None:
            raise InvalidInput("no file in the upload", {"file": ["required"]})
        writer.wait()
        if not fields.get("kind"):
            raise InvalidInput("say which document this is", {"kind": ["required"]})
        if upload.size == 0:
            raise InvalidInput("the file is empty", {"file": ["empty file"]})
        if not checked:
            check_kind(fields["kind"])
        return fields, upload
    except (ValueError, RequestEntityTooLarge) as exc:
        if writer is not None:
            writer.abort()
        raise InvalidInput("the multipart body is malformed", {"body": [str(exc)[:200]]}) \
            from None
    except BaseException:   # the worker killed mid-upload: no temp file left behind
        if writer is not None:
            writer.abort()
        raise


def content_disposition(filename: str, inline: bool) -> str:
    """RFC 6266 with RFC 5987's UTF-8 name, and an ASCII fallback for old clients."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r'[^A-Za-z0-9._ -]', "_", ascii_name).strip() or "document"
    return (f'{"inline" if inline else "attachment"}; filename="{ascii_name}"; '
            f"filename*=UTF-8''{quote(filename, safe='')}")


RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single byte range as (first, last), None for the whole file; raises 416 as a
    Rejected for one that cannot be satisfied. Several ranges: served whole."""
    if not header:
        return None
    m = RANGE.match(header.strip())
    if not m:
        return None
    first, last = m.groups()
    if first == "" and last == "":
        return None
    if first == "":                      # the last N bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - n), size - 1
    a = int(first)
    b = size - 1 if last == "" else min(int(last), size - 1)
    if a >= size or b < a:
        raise RangeNotSatisfiable(size)
    return a, b


class RangeNotSatisfiable(Rejected):
    code = "range_not_satisfiable"
    http_status = 416

    def __init__(self, size: int):
        super().__init__("the requested range is outside the file",
                         {"Range": [f"the file has {size} bytes"]})
        self.size = size


def etag_matches(header: str | None, sha: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or f'"{sha}"' in tags


def serve(record: dict, request, *, audit) -> Response:
    """The bytes of a document record (already checked visible), or 304/206/416.
    ``audit(range)`` records the download before any byte is sent."""
    sha, size = record["sha256"], record["size"]
    headers = {"ETag": f'"{sha}"', "Accept-Ranges": "bytes",
               "Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff",
               "Content-Disposition": content_disposition(
                   record["filename"], inline=request.args.get("download") not in ("1", "true"))}
    if etag_matches(request.headers.get("If-None-Match"), sha):
        return Response(status=304, headers=headers)
    store = blobstore.store()
    try:
        rng = parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        raise
    try:
        tpool.execute(store.verify, sha)   # re-hash off the hub (once per file version)
    except (blobstore.BlobAltered, blobstore.BlobMissing) as exc:
        incident = uuid.uuid4().hex[:12]
        problem = "altered" if isinstance(exc, blobstore.BlobAltered) else "missing"
        log.error("blob_" + problem, incident=incident, sha256=sha,
                  document_id=record["id"], handoff_kind=record.get("handoff_kind"),
                  store=store.describe())
        raise Conflict(f"the stored file is {problem}; it is not served (incident "
                       f"{incident}, logged)", {"document_id": [f"blob {problem}"]}) from None
    audit(f"bytes={rng[0]}-{rng[1]}" if rng else None)
    start, end = rng if rng else (0, size - 1)
    body = store.read(sha, start, end)
    headers["Content-Type"] = record["media_type"]
    headers["Content-Length"] = str(end - start + 1)
    status = 200
    if rng:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(body, status=status, headers=headers, direct_passthrough=True)

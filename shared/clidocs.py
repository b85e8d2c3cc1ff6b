"""``liandong documents list|get|put`` and ``liandong forms``: the case file from a
terminal, through the gateway's HTTP API (the same routes and checks as the console),
files streamed both ways. The token is signed for ``--as ROLE --unit U`` like every
other CLI command (see shared/cli.py)."""
from __future__ import annotations

import json
import mimetypes
import os
import sys
import uuid
from pathlib import Path
from urllib.parse import unquote

COLLECTIONS = ["criminal-referrals", "market-referrals", "joint-actions",
               "assistance-requests"]
CHUNK = 1024 * 1024


def _base(args) -> str:
    url = args.url or os.environ.get("LIANDONG_URL") or \
        "http://" + os.environ.get("WEB_SERVER_ADDRESS", "127.0.0.1:8000")
    return url.rstrip("/")


def _path(args) -> str:
    return f"/api/v1/{args.collection}/{args.handoff_id}"


def _fail(response) -> int:
    try:
        body = response.json()
    except ValueError:
        body = {"code": "http", "message": response.text[:500]}
    print(json.dumps({"status": response.status_code, "error": body}, ensure_ascii=False,
                     indent=2), file=sys.stderr)
    return 2


def _filename(response, fallback: str) -> str:
    header = response.headers.get("Content-Disposition", "")
    for part in header.split(";"):
        part = part.strip()
        if part.lower().startswith("filename*=utf-8''"):
            return Path(unquote(part[len("filename*=UTF-8''"):])).name
    return fallback


def _save(response, out: str | None, fallback: str) -> int:
    target = out or _filename(response, fallback)
    size = 0
    if target == "-":
        for chunk in response.iter_content(CHUNK):
            sys.stdout.buffer.write(chunk)
        return 0
    tmp = Path(f"{target}.part")
    with open(tmp, "wb") as f:
        for chunk in response.iter_content(CHUNK):
            f.write(chunk)
            size += len(chunk)
    tmp.replace(target)
    print(f"saved {target} ({size} bytes, sha256 {response.headers.get('ETag', '?')})",
          file=sys.stderr)
    return 0


class _Body:
    """An iterable body with a length: requests sends it with Content-Length (not
    chunked), a chunk at a time."""

    def __init__(self, parts, length: int):
        self.parts, self.length = parts, length

    def __iter__(self):
        return iter(self.parts)

    def __len__(self):
        return self.length


def multipart(fields: dict, name: str, path: Path, media_type: str):
    """(content type, length, body): the file streamed, never read whole."""
    boundary = uuid.uuid4().hex
    head = b""
    for key, value in fields.items():
        head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n"
                 f"{value}\r\n").encode()
    quoted = path.name.replace('"', "%22")
    head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
             f"filename=\"{quoted}\"\r\nContent-Type: {media_type}\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
        yield tail
    length = len(head) + path.stat().st_size + len(tail)
    return f"multipart/form-data; boundary={boundary}", length, _Body(body(), length)


def cmd_documents(args, token) -> int:
    import requests
    headers = {"Authorization": f"Bearer {token}"}
    base = _base(args) + _path(args) + "/documents"
    if args.action == "list":
        r = requests.get(base, headers=headers, timeout=60)
        if not r.ok:
            return _fail(r)
        for d in r.json():
            print(f"{d['id']}  {d['kind']:22s} {d['size']:>11d}  {d['media_type']:28s} "
                  f"{d['sha256'][:12]}  {d['uploaded_at'][:19]}  {d['filename']}")
        return 0
    if args.action == "get":
        r = requests.get(f"{base}/{args.document_id}", headers=headers, stream=True,
                         timeout=60)
        if not r.ok:
            return _fail(r)
        return _save(r, args.output, args.document_id)
    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"liandong documents put: no file {path}")
    media = args.media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    fields = {"kind": args.kind, **({"title": args.title} if args.title else {})}
    content_type, length, body = multipart(fields, "file", path, media)
    r = requests.post(base, data=body, timeout=3600, headers={
        **headers, "Content-Type": content_type,
        "Idempotency-Key": args.idempotency_key or str(uuid.uuid4())})
    if not r.ok:
        return _fail(r)
    print(json.dumps(r.json(), ensure_ascii=False, indent=2))
    return 0


def cmd_forms(args, token) -> int:
    import requests
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{_base(args)}{_path(args)}/forms/{args.form}.pdf"
    if args.file:
        r = requests.post(url, headers=headers, timeout=300)
        if not r.ok:
            return _fail(r)
        print(json.dumps(r.json(), ensure_ascii=False, indent=2))
        return 0
    r = requests.get(url, headers=headers, stream=True, timeout=300)
    if not r.ok:
        return _fail(r)
    return _save(r, args.output, f"{args.form}.pdf")


def add_parsers(sub, identity, key_option, token_of) -> None:
    def common(p):
        identity(p)
        p.add_argument("handoff_id", metavar="ID", help="the handoff's id")
        p.add_argument("--collection", default="criminal-referrals", choices=COLLECTIONS,
                       help="which kind of handoff (default criminal-referrals)")
        p.add_argument("--url", help="the gateway (default LIANDONG_URL, else "
                                     "http://$WEB_SERVER_ADDRESS, http://127.0.0.1:8000)")

    p = sub.add_parser("documents", help="a handoff's case file: list, get, put files",
                       description="The case file (卷宗) of a handoff through the gateway: "
                       "who may see it is who may see the handoff; every get is audited.")
    dsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    d = dsub.add_parser("list", help="the documents filed (id, kind, size, type, SHA-256)")
    common(d)
    d = dsub.add_parser("get", help="download a document (streamed; checked against its "
                                    "SHA-256 by the gateway)")
    common(d)
    d.add_argument("document_id")
    d.add_argument("-o", "--output", help="file to write ('-' = stdout; default: the "
                                          "document's own file name)")
    d = dsub.add_parser("put", help="upload a file (PDF, JPEG/PNG, Office, MP4; ≤ 512 MiB)")
    common(d)
    d.add_argument("file")
    d.add_argument("--kind", required=True,
                   help="document kind of the procedure (see GET /api/v1/procedures/KIND: "
                        "case_file.kinds), e.g. transfer_letter")
    d.add_argument("--title", help="title shown in the case file (default: the kind's)")
    d.add_argument("--media-type", help="declared type (default: from the file name; the "
                                        "gateway checks it against the content)")
    key_option(d)
    for d in dsub.choices.values():
        d.set_defaults(fn=lambda a: cmd_documents(a, token_of(a)))

    p = sub.add_parser("forms", help="an official form of a handoff as PDF (移送书, 回执 ...)",
                       description="Render an official form from the case data (A4 PDF). "
                       "Criminal referrals: transfer_letter, receipt, filing_notice, "
                       "not_filing_notice, reconsideration_request; market referrals: "
                       "referral_letter.")
    common(p)
    p.add_argument("form", help="e.g. transfer_letter")
    p.add_argument("-o", "--output", help="file to write (default: the form's file name)")
    p.add_argument("--file", action="store_true",
                   help="instead: file the generated form into the case file")
    p.set_defaults(fn=lambda a: cmd_forms(a, token_of(a)))

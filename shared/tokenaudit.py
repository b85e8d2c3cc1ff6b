"""The token audit: every token the operator CLI issues, who ran it and for whom.

One JSON line per token in ``<LIANDONG_DATA_DIR>/audit/tokens.jsonl``: when, the OS user
and host that ran the command, the command, the identity in the token, issuer, ``kid``,
``jti`` and expiry — never the token itself (it is a credential). The file is only ever
appended to (under an exclusive lock, synced to disk) and is a hash chain like the
handoffs' audit trail (shared/audit.py): each line holds ``prev`` and
``hash = sha256(prev + canonical JSON of the line)``, so an edited, removed or
reordered line is reported by ``liandong audit --tokens``.
"""
from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from shared.audit import GENESIS, link


def audit_path() -> Path:
    return Path(os.environ.get("LIANDONG_DATA_DIR", "var")) / "audit" / "tokens.jsonl"


def _body(record: dict) -> bytes:
    facts = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(facts, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):          # no passwd entry (containers): the uid says who
        return f"uid:{os.getuid()}"


def _last_hash(fd: int) -> str:
    size = os.fstat(fd).st_size
    if not size:
        return GENESIS
    os.lseek(fd, max(0, size - 8192), os.SEEK_SET)
    tail = os.read(fd, 8192).decode("utf-8", "replace").rstrip("\n").rsplit("\n", 1)[-1]
    try:
        return json.loads(tail)["hash"]
    except (ValueError, KeyError):
        return "unreadable-previous-line"   # the chain shows the break; keep recording


def record(issued, command: str, path: Path | None = None) -> dict:
    """Append the audit record of ``issued`` (shared.auth.Issued); return it."""
    path = path or audit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    claims = issued.claims
    entry = {"at": _iso(claims["iat"]), "os_user": os_user(), "host": socket.gethostname(),
             "command": command, "sub": claims["sub"], "role": claims["role"],
             "unit": claims["unit"], "county": claims.get("county"),
             "issuer": claims["iss"], "kid": issued.kid, "jti": claims["jti"],
             "expires": _iso(claims["exp"])}
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        entry["prev"] = _last_hash(fd)
        entry["hash"] = link(entry["prev"], _body(entry))
        os.write(fd, json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)                      # releases the lock
    return entry


def read(path: Path | None = None) -> list[dict]:
    path = path or audit_path()
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"line": n, "unreadable": line})
    return out


def verify(records: list[dict]) -> list[str]:
    """Problems of the chain (empty when intact)."""
    problems, prev = [], GENESIS
    for n, entry in enumerate(records, 1):
        if "unreadable" in entry:
            problems.append(f"line {n} is not JSON")
            prev = None
            continue
        if prev is not None and entry.get("prev") != prev:
            problems.append(f"line {n} ({entry.get('jti')}): link to the previous line is "
                            f"broken (a line was removed, inserted or reordered)")
        if link(str(entry.get("prev")), _body(entry)) != entry.get("hash"):
            problems.append(f"line {n} ({entry.get('jti')}): content does not match its hash")
        prev = entry.get("hash")
    return problems

"""Idempotency keys: a request sent twice does its work once.

An RPC caller whose reply was lost (the service committed, then died before replying;
the broker or the network dropped the reply; the caller timed out) cannot know whether
its ``create`` happened. Retrying it blindly would open a second referral for the same
case. So the caller names the attempt: the same ``idempotency_key`` on a retry returns
the result stored with the first success instead of doing the work again.

* The key is stored in the same transaction as the work, so "done" and "remembered"
  cannot be separated by a crash.
* Keys are scoped to the caller (user id): one user cannot read another's result by
  guessing a key.
* The same key with a different request (another command, another payload) is a
  client bug and is refused (409 ``idempotency_conflict``), never silently answered
  with the first result.
* Two attempts racing with one key: the second insert of the key fails on the primary
  key, its transaction rolls back (its outbox row with it) and it answers with the
  winner's result.

Keys are kept (a few hundred bytes each, ~20,000 a year at the bureau's volume); a
purge of keys older than the longest client retry window is an operator's choice.
"""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, insert, select

from shared.errors import IdempotencyConflict, InvalidInput

MAX_KEY = 200


def table(metadata: MetaData) -> Table:
    """The ``idempotency_keys`` table in a service's metadata (once)."""
    if "idempotency_keys" in metadata.tables:
        return metadata.tables["idempotency_keys"]
    return Table(
        "idempotency_keys", metadata,
        Column("scope", String(120), primary_key=True),      # who: the caller's user id
        Column("key", String(MAX_KEY), primary_key=True),
        Column("fingerprint", String(64), nullable=False),   # what: operation + request
        Column("result", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


def check_key(key) -> str | None:
    """None (no key) or a non-empty printable string of at most MAX_KEY characters."""
    if key is None or key == "":
        return None
    if not isinstance(key, str) or len(key) > MAX_KEY or not key.isprintable() \
            or not key.strip():
        raise InvalidInput("invalid idempotency key",
                           {"idempotency_key": [f"1 to {MAX_KEY} printable characters"]})
    return key


def fingerprint(*request) -> str:
    """A digest of what was asked (operation and its arguments), key order ignored."""
    blob = json.dumps(request, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def recall(session, keys: Table, scope: str, key: str, digest: str):
    """The result stored under (scope, key), None if none; a different request under
    the same key raises IdempotencyConflict."""
    row = session.execute(select(keys.c.fingerprint, keys.c.result).where(
        keys.c.scope == scope, keys.c.key == key)).first()
    if row is None:
        return None
    if row.fingerprint != digest:
        raise IdempotencyConflict(
            "this idempotency key was used for a different request",
            {"idempotency_key": ["already used with another command or payload; "
                                 "use a new key for a new request"]})
    return row.result


def remember(session, keys: Table, scope: str, key: str, digest: str, result) -> None:
    """Store the result in the caller's transaction (a second insert of the same key
    fails on the primary key and rolls that transaction back)."""
    session.execute(insert(keys).values(scope=scope, key=key, fingerprint=digest,
                                        result=result, created_at=datetime.now(UTC)))

"""Tamper-evident audit trail: every handoff's steps form a hash chain.

``hash(step n) = sha256(hash(step n-1) + canonical JSON of step n)``, the first step
chained to 64 zeros. Changing, removing or reordering any recorded step breaks every
hash after it, which ``verify`` reports. The steps table is also append-only in the
database itself (triggers refuse UPDATE and DELETE), so tampering needs the database
owner and still shows.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from sqlalchemy import DDL, event

GENESIS = "0" * 64


def canonical(step: dict) -> bytes:
    """The recorded facts of a step, in a form that hashes the same on every database."""
    at = step["at"]
    if isinstance(at, datetime):
        at = (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        at = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    facts = {k: step[k] for k in ("handoff_id", "step", "command", "from_state", "to_state",
                                  "actor", "details", "event_id")}
    facts["at"] = at
    return json.dumps(facts, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str).encode("utf-8")


def link(prev_hash: str, body: bytes) -> str:
    """The hash of a record chained to the one before it (also the token audit's)."""
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def chain(prev_hash: str, step: dict) -> str:
    return link(prev_hash, canonical(step))


def verify(steps: list[dict]) -> list[str]:
    """Problems in one handoff's steps (ordered by step); empty when intact."""
    problems = []
    prev = GENESIS
    for expected_no, step in enumerate(steps, 1):
        if step["step"] != expected_no:
            problems.append(f"step {expected_no} is missing (found {step['step']})")
        if step["prev_hash"] != prev:
            problems.append(f"step {step['step']}: link to the previous step is broken")
        if chain(step["prev_hash"], step) != step["hash"]:
            problems.append(f"step {step['step']}: content does not match its hash")
        prev = step["hash"]
    return problems


def append_only(table) -> None:
    """Database triggers that refuse UPDATE and DELETE on ``table``."""
    name = table.name
    event.listen(table, "after_create", DDL(
        f"CREATE TRIGGER {name}_no_update BEFORE UPDATE ON {name} "
        f"BEGIN SELECT RAISE(ABORT, '{name} is append-only'); END").execute_if(dialect="sqlite"))
    event.listen(table, "after_create", DDL(
        f"CREATE TRIGGER {name}_no_delete BEFORE DELETE ON {name} "
        f"BEGIN SELECT RAISE(ABORT, '{name} is append-only'); END").execute_if(dialect="sqlite"))
    event.listen(table, "after_create", DDL(
        f"CREATE OR REPLACE FUNCTION {name}_append_only() RETURNS trigger AS $$ "
        f"BEGIN RAISE EXCEPTION '{name} is append-only'; END $$ LANGUAGE plpgsql; "
        f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {name} "
        f"FOR EACH ROW EXECUTE FUNCTION {name}_append_only();").execute_if(dialect="postgresql"))

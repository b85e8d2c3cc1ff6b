"""One import of penalty decisions (file rows or the case system's push), plain
SQLAlchemy on the service's store: check and evaluate every row, then write every good
one and the import's record in ONE transaction (the unit of atomicity: after any
failure nothing of the import is there). Used by the service and by ``make bench``."""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.supervision import penalties
from services.supervision import store as st
from shared.errors import InvalidTransition

CHUNK = 500                    # keys per IN (...) query
MAX_ERRORS = 1000              # row errors kept and returned per import


def chunks(items: list, size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def digest(decision: dict) -> str:
    return hashlib.sha256(json.dumps(decision, sort_keys=True, ensure_ascii=False,
                                     default=str).encode()).hexdigest()


def check_rows(rows) -> tuple[dict, list[dict], set]:
    """(case number -> (line, decision with its matches), errors, rejected lines)."""
    errors, good, rejected = [], {}, set()
    for line, data in rows:
        decision, problems = penalties.check(data)
        if problems:
            rejected.add(line)
            errors += [{"line": line, **p} for p in problems]
            continue
        first = good.get(decision["case_number"])
        if first:
            rejected.add(line)
            errors.append({"line": line, "field": "case_number",
                           "reason": f"repeats line {first[0]} of this import"})
            continue
        decision["matches"] = penalties.evaluate(decision["facts"])
        good[decision["case_number"]] = (line, decision)
    return good, errors, rejected


def run(store, actor, source: str, filename: str | None, sha: str, rows,
        now: datetime) -> dict:
    """Check ``rows`` ((line, data) pairs) and write the import; its report."""
    return write(store, actor, source, filename, sha, len(rows), check_rows(rows), now)


def write(store, actor, source: str, filename: str | None, sha: str, total: int,
          checked: tuple[dict, list[dict], set], now: datetime) -> dict:
    """Write checked rows and the import's record in one transaction."""
    good, errors, rejected = checked
    report = {"id": str(uuid.uuid4()), "filename": filename, "source": source,
              "sha256": sha, "actor": actor.to_dict(), "at": now, "rows": total,
              "inserted": 0, "updated": 0, "unchanged": 0, "rejected": len(rejected),
              "suspects": sum(bool(d["matches"]) for _l, d in good.values()),
              "errors": errors[:MAX_ERRORS]}
    d = st.decisions
    try:
        with store.transaction() as s:
            known = {}
            for keys in chunks(list(good)):
                known.update(s.execute(select(d.c.case_number, d.c.fingerprint).where(
                    d.c.case_number.in_(keys))).all())
            new, changed = [], []
            for case_number, (_line, decision) in good.items():
                fingerprint = digest(decision)
                if known.get(case_number) == fingerprint:
                    report["unchanged"] += 1
                    continue
                row = {"county": decision["county"], "unit": decision["unit"],
                       "decided_on": decision["decided_on"],
                       "plate_key": penalties.plate_key(decision.get("plate")),
                       "party_keys": penalties.party_keys(decision["parties"]),
                       "doc": decision, "matches": decision["matches"],
                       "suspect": bool(decision["matches"]), "fingerprint": fingerprint,
                       "import_id": report["id"], "updated_at": now}
                if case_number in known:
                    changed.append({**row, "_key": case_number})
                else:
                    new.append({**row, "case_number": case_number, "imported_at": now})
            if new:
                s.execute(insert(d), new)
            if changed:
                s.execute(update(d).where(d.c.case_number == bindparam("_key")), changed)
            report["inserted"], report["updated"] = len(new), len(changed)
            s.execute(insert(st.imports), report)
    except IntegrityError:
        raise InvalidTransition("another import of the same decisions ran meanwhile; "
                                "send it again", {"file": ["retry"]}) from None
    return {**report, "at": now.isoformat(), "errors_total": len(errors)}

"""Tracker read model: every handoff's current status, deadline and timeline, built
only from events on the bus (so it can be reset and rebuilt from them), plus the
deadline alerts it has raised (one row each: raised exactly once)."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    DDL,
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)

from services.tracker import domain
from services.tracker import outcomes as oc
from shared import envelope as env
from shared.db import Store
from shared.messaging import claim_many, messaging_tables, stage
from shared.procedure import Procedure

SERVICE = "tracker"
SOURCE = "/wenzhou/coordination/tracker"
KIND_AGENCY = {"criminal_referral": "police", "market_referral": "market_regulation",
               "joint_action": "command", "assistance_request": "command",
               "alert_task": "command"}

metadata = MetaData()
handoffs = Table(
    "handoffs", metadata,
    Column("handoff_id", String(64), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("case_number", String(60), nullable=False),
    Column("county", String(20)),
    Column("domain", String(40)),
    Column("owner_unit", String(100), nullable=False),
    Column("counterpart_unit", String(100)),
    Column("counterpart_agency", String(40)),
    Column("units", JSON, nullable=False),
    Column("state", String(40), nullable=False),
    Column("open", Boolean, nullable=False),
    Column("step", Integer, nullable=False),
    Column("deadline", JSON),
    Column("deadline_due", DateTime(timezone=True)),
    Column("search", String(1000), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_tracker_open_due", handoffs.c.open, handoffs.c.deadline_due)
# the board's order (nearest deadline first, undated last) over open handoffs only:
# PostgreSQL reads the first page off this index instead of sorting every open row
Index("ix_tracker_board", handoffs.c.deadline_due.asc().nulls_last(),
      handoffs.c.updated_at.desc(), postgresql_where=handoffs.c.open.is_(True)
      ).ddl_if(dialect="postgresql")
Index("ix_tracker_case_number", handoffs.c.case_number)
# the board's text search (q: case number, plate, party name) is a substring match:
# a trigram index answers it on PostgreSQL without reading every row
Index("ix_tracker_search_trgm", handoffs.c.search, postgresql_using="gin",
      postgresql_ops={"search": "gin_trgm_ops"}).ddl_if(dialect="postgresql")
event.listen(metadata, "before_create", DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm")
             .execute_if(dialect="postgresql"))
timeline = Table(
    "timeline", metadata,
    Column("handoff_id", String(64), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("type", String(120), nullable=False),
    Column("command", String(40), nullable=False),
    Column("state", String(40), nullable=False),
    Column("actor", String(100)),
    Column("actor_role", String(40)),
    Column("actor_unit", String(100)),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("data", JSON, nullable=False),
)
alerts = Table(
    "alerts", metadata,
    Column("handoff_id", String(64), primary_key=True),
    Column("deadline_id", String(60), primary_key=True),
    Column("due", String(40), primary_key=True),
    Column("level", String(20), primary_key=True),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("event_id", String(64), nullable=False),
)
messaging_tables(metadata)

store = Store(SERVICE, metadata)


parked = Table(
    "parked", metadata,   # events that arrived before an earlier step of their subject
    Column("subject", String(64), primary_key=True),
    Column("sequence", Integer, primary_key=True),
    Column("envelope", JSON, nullable=False),
    Column("parked_at", DateTime(timezone=True), nullable=False),
)
handoff_units = Table(
    "handoff_units", metadata,   # the units each handoff's events named as parties
    Column("handoff_id", String(64), primary_key=True),
    Column("unit", String(100), primary_key=True),
)
# "what may this unit see": the board filters in SQL, so a page holds `limit` visible rows
Index("ix_tracker_units_unit", handoff_units.c.unit, handoff_units.c.handoff_id)
subject_locks = Table(
    "subject_locks", metadata,   # serializes the events of one subject (PostgreSQL)
    Column("subject", String(64), primary_key=True),
)
outcomes = oc.define(metadata)   # criminal referrals' milestones (services/tracker/outcomes.py)


def _is_open(kind: str, state: str) -> bool:
    try:
        return not Procedure.load(kind).is_final(state)
    except (FileNotFoundError, KeyError, OSError):
        return state != "closed"


def _search_text(data: dict) -> str:
    details = data.get("details") or {}
    words = [data.get("case_number"), details.get("plate"), details.get("police_case_number")]
    words += [p.get("name") for p in details.get("parties") or [] if isinstance(p, dict)]
    return " ".join(w for w in words if w).lower()[:1000]


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:   # SQLite gives naive UTC back
        return value.replace(tzinfo=timezone.utc)
    return value


def _lock_subjects(session, subjects: list[str]) -> None:
    """Workers (or replicas) handling events of the same subjects take turns
    (PostgreSQL row locks, taken in one order so two batches cannot deadlock). SQLite
    serializes writers itself: a stale read fails to commit and the batch retries."""
    if session.bind.dialect.name != "postgresql" or not subjects:
        return
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    session.execute(pg_insert(subject_locks).on_conflict_do_nothing(),
                    [{"subject": s} for s in subjects])
    session.execute(select(subject_locks.c.subject).where(
        subject_locks.c.subject.in_(subjects)).order_by(subject_locks.c.subject)
        .with_for_update())


def _now() -> datetime:
    return datetime.now(timezone.utc)


# statements built once; executions pass parameters (executemany for a batch)
_INSERT_HANDOFFS, _INSERT_TIMELINE, _INSERT_PARKED, _INSERT_UNITS = (
    insert(handoffs), insert(timeline), insert(parked), insert(handoff_units))
_UPDATE_HANDOFFS = update(handoffs).where(handoffs.c.handoff_id == bindparam("_subject"))
_DELETE_PARKED = delete(parked).where(parked.c.subject == bindparam("_subject"),
                                      parked.c.sequence == bindparam("_sequence"))


def apply_batch(session, envelopes: list[dict], consumer: str) -> dict[str, int]:
    """Apply a batch of handoff events in the caller's transaction, each in its
    subject's order, with a constant number of statements whatever the batch size.

    Each event is 'duplicate' (in the inbox already: a redelivery), 'stale' (the
    subject is already past it), 'parked' (an earlier step is missing: kept until that
    step arrives, then applied) or 'applied' (with any parked successors)."""
    counts = {"applied": 0, "duplicate": 0, "stale": 0, "parked": 0}
    subjects = sorted({e["subject"] for e in envelopes})
    _lock_subjects(session, subjects)         # before the inbox: a copy waits, then dedups
    fresh = claim_many(session, metadata, consumer, envelopes)
    counts["duplicate"] = len(envelopes) - len(fresh)
    if not fresh:
        return counts
    subjects = sorted({e["subject"] for e in fresh})
    state = {r.handoff_id: {"step": r.step, "units": set(r.units or []), "search": r.search,
                            "domain": r.domain, "exists": True,
                            "named_before": set(r.units or [])}
             for r in session.execute(select(handoffs.c.handoff_id, handoffs.c.step,
                                             handoffs.c.units, handoffs.c.search,
                                             handoffs.c.domain)
                                      .where(handoffs.c.handoff_id.in_(subjects)))}
    waiting = {(r.subject, r.sequence): r.envelope for r in session.execute(
        select(parked.c.subject, parked.c.sequence, parked.c.envelope)
        .where(parked.c.subject.in_(subjects)))}
    stored_parked = set(waiting)
    rows: dict[str, dict] = {}
    steps: list[dict] = []
    new_parked: dict[tuple, dict] = {}
    for e in fresh:
        subject, seq = e["subject"], e["sequence"]
        cur = state.setdefault(subject, {"step": 0, "units": set(), "search": "",
                                         "domain": None, "exists": False,
                                         "named_before": set()})
        if cur["step"] >= seq:
            counts["stale"] += 1
            continue
        if seq != cur["step"] + 1:
            if (subject, seq) not in waiting:
                waiting[(subject, seq)] = new_parked[(subject, seq)] = e
            counts["parked"] += 1
            continue
        _apply_in_memory(cur, rows, steps, e)
        counts["applied"] += 1
        while (subject, cur["step"] + 1) in waiting:   # successors that came early
            key = (subject, cur["step"] + 1)
            _apply_in_memory(cur, rows, steps, waiting.pop(key))
            new_parked.pop(key, None)
    _write(session, state, rows, steps, new_parked,
           [k for k in stored_parked if k not in waiting])
    oc.write(session, outcomes, steps)
    return counts


def _apply_in_memory(cur: dict, rows: dict, steps: list, envelope: dict) -> None:
    data, seq, subject = envelope["data"], envelope["sequence"], envelope["subject"]
    at = datetime.fromisoformat(data["at"])
    deadline = data.get("deadline")
    cur["units"] |= domain.units_of(data)
    cur["search"] = " ".join(filter(None, [cur["search"], _search_text(data)]))[:1000]
    cur["domain"] = (data.get("details") or {}).get("domain") or cur["domain"]
    cur["step"] = seq
    row = rows.setdefault(subject, {"created_at": at})
    row.update({"kind": data["kind"], "case_number": data["case_number"],
                "county": data.get("county"), "domain": cur["domain"],
                "owner_unit": data["owner_unit"],
                "counterpart_unit": data.get("counterpart_unit"),
                "counterpart_agency": KIND_AGENCY.get(data["kind"]),
                "units": sorted(cur["units"]), "state": data["state"],
                "open": _is_open(data["kind"], data["state"]), "step": seq,
                "deadline": deadline,
                "deadline_due": datetime.fromisoformat(deadline["due"]) if deadline else None,
                "search": cur["search"], "updated_at": at})
    steps.append({"handoff_id": subject, "step": seq, "event_id": envelope["id"],
                  "type": envelope["type"], "command": data["command"],
                  "state": data["state"], "actor": envelope.get("actor"),
                  "actor_role": envelope.get("actorrole"),
                  "actor_unit": envelope.get("actorunit"), "at": at, "data": data})


def _write(session, state, rows, steps, new_parked, unparked) -> None:
    inserts = [{**row, "handoff_id": subject} for subject, row in rows.items()
               if not state[subject]["exists"]]
    updates = [{**{k: v for k, v in row.items() if k != "created_at"}, "_subject": subject}
               for subject, row in rows.items() if state[subject]["exists"]]
    if inserts:
        session.execute(_INSERT_HANDOFFS, inserts)
    if updates:
        session.execute(_UPDATE_HANDOFFS, updates)
    if steps:
        session.execute(_INSERT_TIMELINE, steps)
    named = [{"handoff_id": subject, "unit": unit} for subject in rows
             for unit in sorted(state[subject]["units"] - state[subject]["named_before"])]
    if named:
        session.execute(_INSERT_UNITS, named)
    if new_parked:
        now = _now()
        session.execute(_INSERT_PARKED, [
            {"subject": s, "sequence": q, "envelope": e, "parked_at": now}
            for (s, q), e in new_parked.items()])
    if unparked:
        session.execute(_DELETE_PARKED, [{"_subject": s, "_sequence": q} for s, q in unparked])


def _plain(row, now: datetime | None = None) -> dict:
    out = {k: (_utc(v).isoformat() if isinstance(v, datetime) else v)
           for k, v in dict(row).items() if k != "search"}
    if now is not None and "deadline_due" in out:
        due = _utc(row["deadline_due"])
        out["time_left_seconds"] = int((due - now).total_seconds()) if due else None
        out["overdue"] = bool(due and row["open"] and due < now
                              and (row["deadline"] or {}).get("obligation", "must") == "must")
    return out


def get(session, handoff_id: str, now: datetime) -> dict | None:
    row = session.execute(select(handoffs).where(handoffs.c.handoff_id == handoff_id)
                          ).mappings().first()
    if row is None:
        return None
    events = session.execute(select(timeline).where(timeline.c.handoff_id == handoff_id)
                             .order_by(timeline.c.step)).mappings().all()
    return {**_plain(row, now), "timeline": [_plain(e) for e in events]}


def visible_to(actor):
    """``domain.can_view`` as a SQL condition on ``handoffs`` (None: sees everything),
    so that a page of the board is a page of what the actor may see."""
    if actor.role in domain.ALL_SEEING:
        return None
    parts = []
    if actor.role in domain.COUNTY_ROLES:
        county_wide = handoffs.c.kind.in_(domain.COUNTY_WIDE_KINDS)
        parts.append(county_wide if actor.county is None
                     else and_(county_wide, handoffs.c.county == actor.county))
    # a correlated scalar subquery, not IN/EXISTS: PostgreSQL turns those into a hash
    # semi-join over every handoff a busy unit was ever named in (~40 ms at 1M); this
    # form stays a per-row probe of handoff_units' primary key while it walks the
    # board's index in order, and stops after one page
    named = select(handoff_units.c.unit).where(
        handoff_units.c.handoff_id == handoffs.c.handoff_id,
        handoff_units.c.unit == actor.unit).limit(1).scalar_subquery().is_not(None)
    if actor.role != "county_command":
        named = and_(named, handoffs.c.kind != "assistance_request")
    parts.append(named)
    return or_(*parts)


def board(session, now: datetime, *, kind=None, county=None, agency=None, domain_=None,
          state=None, q=None, open_only=True, overdue_only=False, limit=200,
          offset=0, actor=None) -> list[dict]:
    """Handoffs by nearest deadline first, with the board's filters; only those
    ``actor`` may see when one is given."""
    query = select(handoffs)
    visible = visible_to(actor) if actor is not None else None
    if visible is not None:
        query = query.where(visible)
    if open_only:
        query = query.where(handoffs.c.open.is_(True))
    for column, value in ((handoffs.c.kind, kind), (handoffs.c.county, county),
                          (handoffs.c.counterpart_agency, agency),
                          (handoffs.c.domain, domain_), (handoffs.c.state, state)):
        if value:
            query = query.where(column == value)
    if q:
        query = query.where(or_(handoffs.c.search.contains(q.lower()),
                                handoffs.c.handoff_id == q))
    if overdue_only:
        query = query.where(handoffs.c.deadline_due < now)
    query = query.order_by(handoffs.c.deadline_due.asc().nulls_last(),
                           handoffs.c.updated_at.desc()).limit(limit).offset(offset)
    return [_plain(r, now) for r in session.execute(query).mappings()]


def open_with_deadline(session, until: datetime) -> list[dict]:
    query = select(handoffs).where(handoffs.c.open.is_(True),
                                   handoffs.c.deadline_due.is_not(None),
                                   handoffs.c.deadline_due <= until)
    return [dict(r) for r in session.execute(query).mappings()]


def raise_alert(session, row: dict, level: str, now: datetime) -> dict | None:
    """Record and stage one deadline alert; None if it was raised before."""
    deadline = row["deadline"]
    key = {"handoff_id": row["handoff_id"], "deadline_id": deadline["id"],
           "due": deadline["due"], "level": level}
    if session.execute(select(alerts.c.event_id).filter_by(**key)).first():
        return None
    count = session.execute(select(func.count()).where(
        alerts.c.handoff_id == row["handoff_id"])).scalar()
    due = datetime.fromisoformat(deadline["due"])
    envelope = env.make_envelope(
        event_type=f"deadline.{level}.v1", source=SOURCE,
        subject=f"{row['handoff_id']}/deadlines", sequence=count + 1, time=now,
        data={"handoff_id": row["handoff_id"], "kind": row["kind"],
              "case_number": row["case_number"], "county": row["county"],
              "owner_unit": row["owner_unit"], "counterpart_unit": row["counterpart_unit"],
              "state": row["state"], "level": level, "deadline": deadline,
              "seconds_left": int((due - now).total_seconds())})
    session.execute(insert(alerts).values(**key, raised_at=now, event_id=envelope["id"]))
    stage(session, metadata, envelope)
    return envelope


def all_for_statistics(session, start=None, end=None) -> tuple[list[dict], list[dict]]:
    query = select(handoffs)
    if start:
        query = query.where(handoffs.c.created_at >= start)
    if end:
        query = query.where(handoffs.c.created_at < end)
    rows = [_plain(r) for r in session.execute(query).mappings()]
    now = datetime.now(timezone.utc)
    for r in rows:
        due = r.get("deadline_due")
        r["overdue"] = bool(r["open"] and due and datetime.fromisoformat(due) < now)
    ids = [r["handoff_id"] for r in rows]
    steps = []
    for i in range(0, len(ids), 500):
        q = select(timeline.c.handoff_id, timeline.c.step, timeline.c.command, timeline.c.at
                   ).where(timeline.c.handoff_id.in_(ids[i:i + 500]))
        steps += [_plain(s) for s in session.execute(q).mappings()]
    return rows, steps


def counts_by_state(session) -> list[tuple[str, str, int]]:
    q = select(handoffs.c.kind, handoffs.c.state, func.count()).group_by(
        handoffs.c.kind, handoffs.c.state)
    return [tuple(r) for r in session.execute(q)]


def overdue_count(session, now: datetime) -> int:
    return session.execute(select(func.count()).where(
        handoffs.c.open.is_(True), handoffs.c.deadline_due < now)).scalar()


def reset(session) -> None:
    """Forget the read model (alerts stay: an alert raised once is never raised again)."""
    inbox = messaging_tables(metadata)["inbox"]
    for table in (timeline, handoff_units, handoffs, parked, inbox, outcomes):
        session.execute(delete(table))

"""Tracker read model: every handoff's current status, deadline and timeline, built
only from events on the bus (so it can be reset and rebuilt from them), plus the
deadline alerts it has raised (one row each: raised exactly once)."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from services.tracker import domain
from shared import envelope as env
from shared.db import Store
from shared.messaging import messaging_tables, stage
from shared.procedure import Procedure

SERVICE = "tracker"
SOURCE = "/wenzhou/coordination/tracker"
KIND_AGENCY = {"criminal_referral": "police", "market_referral": "market_regulation",
               "joint_action": "command", "assistance_request": "command"}

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
subject_locks = Table(
    "subject_locks", metadata,   # serializes the events of one subject (PostgreSQL)
    Column("subject", String(64), primary_key=True),
)


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


def _lock_subject(session, subject: str) -> None:
    """Concurrent workers handling events of one subject take turns (PostgreSQL row
    lock). SQLite serializes writers itself: a stale read fails to commit and retries."""
    if session.bind.dialect.name != "postgresql":
        return
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    session.execute(pg_insert(subject_locks).values(subject=subject).on_conflict_do_nothing())
    session.execute(select(subject_locks.c.subject).where(
        subject_locks.c.subject == subject).with_for_update())


def apply(session, envelope: dict) -> str:
    """Apply one handoff event in its subject's order: 'applied' (with any parked
    successors), 'stale' (already past it) or 'parked' (an earlier step is missing; it
    is applied as soon as that step arrives)."""
    subject, seq = envelope["subject"], envelope["sequence"]
    _lock_subject(session, subject)
    have = session.execute(select(handoffs.c.step).where(
        handoffs.c.handoff_id == subject)).scalar() or 0
    if have >= seq:
        return "stale"
    if seq != have + 1:
        session.execute(insert(parked).values(subject=subject, sequence=seq,
                                              envelope=envelope, parked_at=_now()))
        return "parked"
    _apply_in_order(session, envelope)
    while True:   # successors that came early
        nxt = session.execute(select(parked.c.envelope).where(
            parked.c.subject == subject, parked.c.sequence == seq + 1)).scalar()
        if nxt is None:
            return "applied"
        _apply_in_order(session, nxt)
        session.execute(delete(parked).where(parked.c.subject == subject,
                                             parked.c.sequence == seq + 1))
        seq += 1


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _apply_in_order(session, envelope: dict) -> None:
    data, seq, subject = envelope["data"], envelope["sequence"], envelope["subject"]
    current = session.execute(select(handoffs.c.step, handoffs.c.units, handoffs.c.search)
                              .where(handoffs.c.handoff_id == subject)).first()
    at = datetime.fromisoformat(data["at"])
    deadline = data.get("deadline")
    units = set(current.units if current else []) | domain.units_of(data)
    search = " ".join(filter(None, [current.search if current else "", _search_text(data)]))
    row = {"kind": data["kind"], "case_number": data["case_number"],
           "county": data.get("county"),
           "domain": (data.get("details") or {}).get("domain"),
           "owner_unit": data["owner_unit"], "counterpart_unit": data.get("counterpart_unit"),
           "counterpart_agency": KIND_AGENCY.get(data["kind"]), "units": sorted(units),
           "state": data["state"], "open": _is_open(data["kind"], data["state"]), "step": seq,
           "deadline": deadline,
           "deadline_due": datetime.fromisoformat(deadline["due"]) if deadline else None,
           "search": search[:1000], "updated_at": at}
    if current is None:
        session.execute(insert(handoffs).values(handoff_id=subject, created_at=at, **row))
    else:
        if row["domain"] is None:
            row.pop("domain")
        session.execute(update(handoffs).where(handoffs.c.handoff_id == subject).values(**row))
    session.execute(insert(timeline).values(
        handoff_id=subject, step=seq, event_id=envelope["id"], type=envelope["type"],
        command=data["command"], state=data["state"], actor=envelope.get("actor"),
        actor_role=envelope.get("actorrole"), actor_unit=envelope.get("actorunit"), at=at,
        data=data))


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


def board(session, now: datetime, *, kind=None, county=None, agency=None, domain_=None,
          state=None, q=None, open_only=True, overdue_only=False, limit=200,
          offset=0) -> list[dict]:
    """Handoffs by nearest deadline first, with the board's filters."""
    query = select(handoffs)
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
    for table in (timeline, handoffs, parked, inbox):
        session.execute(delete(table))

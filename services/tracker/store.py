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
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    delete,
    event,
    extract,
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
KIND_AGENCY = domain.AGENCY

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

# The deadline sweep's work list (issue 21): one row per open handoff whose current
# deadline is binding and has an alert still to raise, with the level it raises next.
# The sweep reads only the rows whose next alert is due (an index range on the level and
# the due time), so its cost is the number of new alerts, not the backlog of overdue cases.
alert_clocks = Table(
    "alert_clocks", metadata,
    Column("handoff_id", String(64), primary_key=True),
    Column("deadline_id", String(60), nullable=False),
    Column("due", DateTime(timezone=True), nullable=False),
    Column("deadline", JSON, nullable=False),
    Column("next_level", String(20), nullable=False),   # approaching | breached
)
Index("ix_tracker_alert_clocks", alert_clocks.c.next_level, alert_clocks.c.due)

# Statistics kept as counters while events are applied (issue 21), so a statistics view
# reads a few thousand counter rows instead of every handoff and step of all years.
# Keys: the day the handoff was created (UTC, 'YYYY-MM-DD'), its county, domain and kind
# ('' where a handoff has none: key columns cannot be NULL).
_STATS_KEY = ("day", "county", "domain", "kind")
stats_cases = Table(
    "stats_cases", metadata,   # handoffs by key and current state
    *(Column(c, String(40), primary_key=True) for c in _STATS_KEY),
    Column("state", String(40), primary_key=True),
    Column("open", Boolean, primary_key=True),
    Column("n", Integer, nullable=False),
)
stats_steps = Table(
    "stats_steps", metadata,   # steps by key and command, with hours since the previous one
    *(Column(c, String(40), primary_key=True) for c in _STATS_KEY),
    Column("command", String(40), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("timed", Integer, nullable=False),      # steps that have a previous step
    Column("hours", Float, nullable=False),        # sum of their hours since it
)
tracker_meta = Table(
    "tracker_meta", metadata,   # which derived tables this database has been filled for
    Column("key", String(60), primary_key=True),
    Column("value", String(200), nullable=False),
)
DERIVED_VERSION = ("derived", "issue-21/1")   # alert clocks + statistics counters


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
                            "named_before": set(r.units or []),
                            "counted": (_stats_key(r.created_at, r.county, r.domain, r.kind),
                                        r.state, r.open),
                            "created_at": _utc(r.created_at), "last_at": _utc(r.updated_at)}
             for r in session.execute(select(handoffs.c.handoff_id, handoffs.c.step,
                                             handoffs.c.units, handoffs.c.search,
                                             handoffs.c.domain, handoffs.c.created_at,
                                             handoffs.c.county, handoffs.c.kind,
                                             handoffs.c.state, handoffs.c.open,
                                             handoffs.c.updated_at)
                                      .where(handoffs.c.handoff_id.in_(subjects)))}
    waiting = {(r.subject, r.sequence): r.envelope for r in session.execute(
        select(parked.c.subject, parked.c.sequence, parked.c.envelope)
        .where(parked.c.subject.in_(subjects)))}
    stored_parked = set(waiting)
    rows: dict[str, dict] = {}
    steps: list[dict] = []
    step_counts: dict[tuple, list] = {}
    new_parked: dict[tuple, dict] = {}
    for e in fresh:
        subject, seq = e["subject"], e["sequence"]
        cur = state.setdefault(subject, {"step": 0, "units": set(), "search": "",
                                         "domain": None, "exists": False,
                                         "named_before": set(), "counted": None,
                                         "created_at": None, "last_at": None})
        if cur["step"] >= seq:
            counts["stale"] += 1
            continue
        if seq != cur["step"] + 1:
            if (subject, seq) not in waiting:
                waiting[(subject, seq)] = new_parked[(subject, seq)] = e
            counts["parked"] += 1
            continue
        _apply_in_memory(cur, rows, steps, e, step_counts)
        counts["applied"] += 1
        while (subject, cur["step"] + 1) in waiting:   # successors that came early
            key = (subject, cur["step"] + 1)
            _apply_in_memory(cur, rows, steps, waiting.pop(key), step_counts)
            new_parked.pop(key, None)
    _write(session, state, rows, steps, new_parked,
           [k for k in stored_parked if k not in waiting])
    oc.write(session, outcomes, steps)
    _count(session, state, rows, step_counts)
    _set_clocks(session, rows)
    return counts


def _apply_in_memory(cur: dict, rows: dict, steps: list, envelope: dict,
                     step_counts: dict) -> None:
    data, seq, subject = envelope["data"], envelope["sequence"], envelope["subject"]
    at = datetime.fromisoformat(data["at"])
    created_at = cur["created_at"] = cur["created_at"] or at
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
    key = (*_stats_key(created_at, data.get("county"), cur["domain"], data["kind"]),
           data["command"])
    counter = step_counts.setdefault(key, [0, 0, 0.0])
    counter[0] += 1
    if cur["last_at"] is not None:
        counter[1] += 1
        counter[2] += (at - cur["last_at"]).total_seconds() / 3600
    cur["last_at"] = at
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


def _stats_key(created_at: datetime, county, domain_, kind) -> tuple[str, str, str, str]:
    return (_utc(created_at).astimezone(timezone.utc).date().isoformat(), county or "",
            domain_ or "", kind or "")


def _add(session, table: Table, keys: tuple[str, ...], deltas: dict[tuple, list],
         values: tuple[str, ...]) -> None:
    """Add ``deltas`` (key -> amounts) to the counters of ``table`` in one statement,
    in key order (two batches touching the same counters lock them in the same order)."""
    if not deltas:
        return
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    statement = upsert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={v: table.c[v] + statement.excluded[v] for v in values})
    session.execute(statement, [
        {**dict(zip(keys, key, strict=True)), **dict(zip(values, amounts, strict=True))}
        for key, amounts in sorted(deltas.items())])


def _count(session, state: dict, rows: dict, step_counts: dict) -> None:
    """Move each changed handoff from its old (key, state, open) counter to its new one,
    and add this batch's steps."""
    cases: dict[tuple, list] = {}
    for subject, row in rows.items():
        new = (*_stats_key(state[subject]["created_at"], row["county"], row["domain"],
                           row["kind"]), row["state"], row["open"])
        old = state[subject]["counted"]
        old = (*old[0], old[1], old[2]) if old else None
        if old == new:
            continue
        if old is not None:
            cases.setdefault(old, [0])[0] -= 1
        cases.setdefault(new, [0])[0] += 1
    _add(session, stats_cases, (*_STATS_KEY, "state", "open"),
         {k: v for k, v in cases.items() if v[0]}, ("n",))
    _add(session, stats_steps, (*_STATS_KEY, "command"), step_counts,
         ("n", "timed", "hours"))


def _binding(row: dict) -> dict | None:
    deadline = row.get("deadline")
    if row.get("open") and deadline and deadline.get("obligation", "must") == "must":
        return deadline
    return None


def _set_clocks(session, rows: dict) -> None:
    """Keep each changed handoff's alert clock on its current binding deadline: a new
    deadline starts at 'approaching', the same deadline keeps its level, none removes it."""
    if not rows:
        return
    current = {r.handoff_id: (r.deadline_id, r.due) for r in session.execute(
        select(alert_clocks.c.handoff_id, alert_clocks.c.deadline_id, alert_clocks.c.due)
        .where(alert_clocks.c.handoff_id.in_(list(rows))))}
    gone, new = [], []
    for subject, row in rows.items():
        deadline = _binding(row)
        due = datetime.fromisoformat(deadline["due"]) if deadline else None
        old = current.get(subject)
        if old is not None and deadline is not None and old[0] == deadline["id"] \
                and _utc(old[1]) == due:
            continue
        if old is not None:
            gone.append(subject)
        if deadline is not None:
            new.append({"handoff_id": subject, "deadline_id": deadline["id"], "due": due,
                        "deadline": deadline, "next_level": "approaching"})
    if gone:
        session.execute(delete(alert_clocks).where(alert_clocks.c.handoff_id.in_(gone)))
    if new:
        session.execute(insert(alert_clocks), new)


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


def due_clocks(session, now: datetime, window, limit: int = 5000) -> list[dict]:
    """The handoffs whose next deadline alert is due (at most ``limit``, earliest first):
    'approaching' clocks due within ``window``, 'breached' clocks past due. Each row has
    the handoff's fields an alert carries and its deadline."""
    query = (select(alert_clocks.c.handoff_id, alert_clocks.c.deadline,
                    alert_clocks.c.next_level, handoffs.c.kind, handoffs.c.case_number,
                    handoffs.c.county, handoffs.c.owner_unit, handoffs.c.counterpart_unit,
                    handoffs.c.state, handoffs.c.open)
             .join(handoffs, handoffs.c.handoff_id == alert_clocks.c.handoff_id)
             .where(or_(and_(alert_clocks.c.next_level == "approaching",
                             alert_clocks.c.due <= now + window),
                        and_(alert_clocks.c.next_level == "breached",
                             alert_clocks.c.due <= now)))
             .order_by(alert_clocks.c.due).limit(limit))
    return [dict(r) for r in session.execute(query).mappings()]


def advance_clocks(session, raised: list[tuple[dict, str]]) -> None:
    """After alerts of ``raised`` (row, level): a breach ends the clock, an approach
    leaves the breach to come."""
    ended = [row["handoff_id"] for row, level in raised if level == "breached"]
    waiting = [row["handoff_id"] for row, level in raised if level == "approaching"]
    if ended:
        session.execute(delete(alert_clocks).where(alert_clocks.c.handoff_id.in_(ended)))
    if waiting:
        session.execute(update(alert_clocks).where(alert_clocks.c.handoff_id.in_(waiting))
                        .values(next_level="breached"))


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


def _day(session, column):
    """SQL: the UTC day ('YYYY-MM-DD') of a timestamp column."""
    if session.bind.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)    # SQLite keeps UTC text 'YYYY-MM-DD HH:MM:SS'


def _hours(session, later, earlier):
    if session.bind.dialect.name == "postgresql":
        return extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def _group(column, group_by: str):
    """The grouping expression over a 'YYYY-MM-DD' day column or a key column."""
    if group_by == "month":
        return func.substr(column, 1, 7)
    return column


def _counter_parts(session, group_by: str, start, end, where) -> tuple[list, list]:
    """(cases, steps) from the counters: (group, state, open, n) and
    (group, command, n, timed, hours), for the days in [start, end) and ``where``."""
    def ranged(table, query):
        if start:
            query = query.where(table.c.day >= start.date().isoformat())
        if end:
            query = query.where(table.c.day < end.date().isoformat())
        return query.where(*where(table))

    column = "day" if group_by == "month" else ("kind" if group_by == "agency" else group_by)
    g = _group(stats_cases.c[column], group_by)
    cases = session.execute(ranged(stats_cases, select(
        g, stats_cases.c.state, stats_cases.c.open, func.sum(stats_cases.c.n))
        .group_by(g, stats_cases.c.state, stats_cases.c.open))).all()
    g = _group(stats_steps.c[column], group_by)
    steps = session.execute(ranged(stats_steps, select(
        g, stats_steps.c.command, func.sum(stats_steps.c.n), func.sum(stats_steps.c.timed),
        func.sum(stats_steps.c.hours)).group_by(g, stats_steps.c.command))).all()
    return [tuple(r) for r in cases], [tuple(r) for r in steps]


def _live_parts(session, group_by: str, start, end, visible) -> tuple[list, list]:
    """The same (cases, steps) computed from the handoffs and timeline themselves, for
    the few handoffs a unit sees (``visible``: a condition on handoffs)."""
    column = _day(session, handoffs.c.created_at) if group_by == "month" else (
        handoffs.c.kind if group_by == "agency" else handoffs.c[group_by])
    g = _group(column, group_by) if group_by == "month" else func.coalesce(column, "")
    ranged = [visible]
    if start:
        ranged.append(handoffs.c.created_at >= start)
    if end:
        ranged.append(handoffs.c.created_at < end)
    cases = session.execute(select(g, handoffs.c.state, handoffs.c.open, func.count())
                            .where(*ranged).group_by(g, handoffs.c.state, handoffs.c.open)).all()
    previous = timeline.alias("previous")
    hours = _hours(session, timeline.c.at, previous.c.at)
    steps = session.execute(
        select(g, timeline.c.command, func.count(), func.count(previous.c.step),
               func.coalesce(func.sum(hours), 0.0))
        .select_from(timeline.join(handoffs, handoffs.c.handoff_id == timeline.c.handoff_id)
                     .outerjoin(previous, and_(previous.c.handoff_id == timeline.c.handoff_id,
                                               previous.c.step == timeline.c.step - 1)))
        .where(*ranged).group_by(g, timeline.c.command)).all()
    return [tuple(r) for r in cases], [tuple(r) for r in steps]


def statistics(session, group_by: str, start, end, now: datetime, actor=None) -> dict:
    """The parts of the statistics view ``group_by`` over the handoffs created in
    [start, end) that ``actor`` may see: {"cases", "steps", "overdue"} rows for
    ``domain.statistics_from``. All-seeing roles read the counters; a county centre or
    agency head reads them for its county's county-wide kinds and the rest live; a unit
    reads its own handoffs live (few: those that name it)."""
    visible = visible_to(actor) if actor is not None else None
    cases, steps = [], []
    if visible is None:
        cases, steps = _counter_parts(session, group_by, start, end, lambda t: ())
    else:
        live = visible
        if actor.role in domain.COUNTY_ROLES:
            def county_wide(t):   # never NULL (NOT of NULL would drop a row): coalesce
                out = [t.c.kind.in_(domain.COUNTY_WIDE_KINDS)]
                return out + ([func.coalesce(t.c.county, "") == actor.county]
                              if actor.county else [])
            cases, steps = _counter_parts(session, group_by, start, end, county_wide)
            live = and_(visible, ~and_(*county_wide(handoffs)))
        more_cases, more_steps = _live_parts(session, group_by, start, end, live)
        cases, steps = cases + more_cases, steps + more_steps
    column = _day(session, handoffs.c.created_at) if group_by == "month" else (
        handoffs.c.kind if group_by == "agency" else handoffs.c[group_by])
    g = _group(column, group_by) if group_by == "month" else func.coalesce(column, "")
    late = [handoffs.c.open.is_(True), handoffs.c.deadline_due < now]
    if visible is not None:
        late.append(visible)
    if start:
        late.append(handoffs.c.created_at >= start)
    if end:
        late.append(handoffs.c.created_at < end)
    overdue = session.execute(select(g, func.count()).where(*late).group_by(g)).all()
    return {"cases": cases, "steps": steps, "overdue": [tuple(r) for r in overdue]}


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
    for table in (timeline, handoff_units, handoffs, parked, inbox, outcomes, alert_clocks,
                  stats_cases, stats_steps):
        session.execute(delete(table))
    mark_derived(session)


def derived_ready(session) -> bool:
    """Whether this database's counters and alert clocks were filled by this version's
    code from the first event on (a new or reset database) — else a rebuild fills them."""
    found = session.execute(select(tracker_meta.c.value).where(
        tracker_meta.c.key == DERIVED_VERSION[0])).scalar()
    if found == DERIVED_VERSION[1]:
        return True
    if found is None and session.execute(select(handoffs.c.handoff_id).limit(1)).first() is None:
        mark_derived(session)          # nothing applied yet: counted from the start
        return True
    return False


def mark_derived(session) -> None:
    session.execute(delete(tracker_meta).where(tracker_meta.c.key == DERIVED_VERSION[0]))
    session.execute(insert(tracker_meta).values(key=DERIVED_VERSION[0],
                                                value=DERIVED_VERSION[1]))

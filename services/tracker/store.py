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
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from services.tracker import domain
from services.tracker import outcomes as oc
from shared import calendar
from shared import envelope as env
from shared.db import Store, dialect_insert, insert_rows, utc
from shared.messaging import claim_many, messaging_tables, stage_many
from shared.procedure import Procedure
from shared.schemas.handoff import RECOMPUTE_COMMAND

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
    # who must act next (services/tracker/domain.py waiting_after): the 待办 of each unit
    Column("waiting", String(2000), nullable=False, default=""),
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
_inbox = messaging_tables(metadata)["inbox"]
# "has anything changed?" (the gateway's live updates ask once a second): the newest
# event applied, read off an index
Index("ix_tracker_inbox_received", _inbox.c.received_at)

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


def _counters(name: str, per_unit: bool, keys: tuple[Column, ...],
              values: tuple[Column, ...]) -> Table:
    """A counter table: (unit,) day, county, domain, kind, ``keys`` -> ``values``."""
    unit = (Column("unit", String(100), primary_key=True),) if per_unit else ()
    return Table(name, metadata, *unit,
                 *(Column(c, String(40), primary_key=True) for c in _STATS_KEY),
                 *keys, *values)


def _case_counters(name: str, per_unit: bool) -> Table:   # handoffs by current state
    return _counters(name, per_unit, (Column("state", String(40), primary_key=True),
                                      Column("open", Boolean, primary_key=True)),
                     (Column("n", Integer, nullable=False),))


def _step_counters(name: str, per_unit: bool) -> Table:   # steps by command
    return _counters(name, per_unit, (Column("command", String(40), primary_key=True),),
                     (Column("n", Integer, nullable=False),
                      Column("timed", Integer, nullable=False),   # steps with a previous one
                      Column("hours", Float, nullable=False)))    # sum of hours since it


stats_cases = _case_counters("stats_cases", per_unit=False)
stats_steps = _step_counters("stats_steps", per_unit=False)
# the same per unit named in the handoff (handoff_units): what a unit, and a county
# centre beyond its county's referrals, sees is counted without reading history
unit_stats_cases = _case_counters("unit_stats_cases", per_unit=True)
unit_stats_steps = _step_counters("unit_stats_steps", per_unit=True)
tracker_meta = Table(
    "tracker_meta", metadata,   # which derived tables this database has been filled for
    Column("key", String(60), primary_key=True),
    Column("value", String(200), nullable=False),
)
DERIVED_VERSION = ("derived", "issue-21/2")   # alert clocks + statistics counters


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


# one transaction-scoped advisory lock per subject (a 64-bit hash of it), taken in key
# order so two batches cannot deadlock: nothing is written, and the locks go with the
# commit (issue 16: the lock rows were a third of a drain's statement time)
_SUBJECT_LOCKS = text(
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(s, 0) AS k "
    "FROM unnest(CAST(:subjects AS text[])) AS s ORDER BY k) AS locks")


def _lock_subjects(session, subjects: list[str]) -> None:
    """Workers (or replicas) handling events of the same subjects take turns
    (PostgreSQL advisory locks; two subjects sharing a hash merely take turns too).
    SQLite serializes writers itself: a stale read fails to commit and the batch retries."""
    if session.bind.dialect.name != "postgresql" or not subjects:
        return
    session.execute(_SUBJECT_LOCKS, {"subjects": list(subjects)})


def _now() -> datetime:
    return calendar.now()   # a development test clock may shift it


# statements built once; executions pass parameters (executemany for a batch)
_INSERT_PARKED = insert(parked)
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
    fresh = claim_many(session, metadata, consumer, envelopes, bulk=True)  # locked
    counts["duplicate"] = len(envelopes) - len(fresh)
    if not fresh:
        return counts
    subjects = sorted({e["subject"] for e in fresh})
    state = {r.handoff_id: {"step": r.step, "units": set(r.units or []), "search": r.search,
                            "domain": r.domain, "exists": True, "waiting": r.waiting,
                            "named_before": set(r.units or []),
                            "counted": (_stats_key(r.created_at, r.county, r.domain, r.kind),
                                        r.state, r.open),
                            "created_at": utc(r.created_at), "last_at": utc(r.updated_at),
                            "stored_step": r.step}
             for r in session.execute(select(handoffs.c.handoff_id, handoffs.c.step,
                                             handoffs.c.units, handoffs.c.search,
                                             handoffs.c.domain, handoffs.c.created_at,
                                             handoffs.c.county, handoffs.c.kind,
                                             handoffs.c.state, handoffs.c.open,
                                             handoffs.c.updated_at, handoffs.c.waiting)
                                      .where(handoffs.c.handoff_id.in_(subjects)))}
    waiting = {(r.subject, r.sequence): r.envelope for r in session.execute(
        select(parked.c.subject, parked.c.sequence, parked.c.envelope)
        .where(parked.c.subject.in_(subjects)))}
    stored_parked = set(waiting)
    rows: dict[str, dict] = {}
    steps: list[dict] = []
    step_counts: dict[str, list] = {}      # subject -> [(key, timed, hours)] of this batch
    new_parked: dict[tuple, dict] = {}
    for e in fresh:
        subject, seq = e["subject"], e["sequence"]
        cur = state.setdefault(subject, {"step": 0, "units": set(), "search": "",
                                         "domain": None, "exists": False, "waiting": "",
                                         "named_before": set(), "counted": None,
                                         "created_at": None, "last_at": None,
                                         "stored_step": 0})
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
    cur["waiting"] = domain.waiting_after(data, cur["waiting"])
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
                "search": cur["search"], "waiting": cur["waiting"], "updated_at": at})
    if data["command"] == RECOMPUTE_COMMAND and cur["last_at"]:
        # a recomputed deadline is no work step: the statistics' hours per step and the
        # handoff's last activity stay with the last real step
        row["updated_at"] = cur["last_at"]
    else:
        key = (*_stats_key(created_at, data.get("county"), cur["domain"], data["kind"]),
               data["command"])
        hours = (at - cur["last_at"]).total_seconds() / 3600 if cur["last_at"] else None
        step_counts.setdefault(subject, []).append((key, hours))
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
    insert_rows(session, handoffs, inserts)
    if updates:
        session.execute(_UPDATE_HANDOFFS, updates)
    insert_rows(session, timeline, steps)
    named = [{"handoff_id": subject, "unit": unit} for subject in rows
             for unit in sorted(state[subject]["units"] - state[subject]["named_before"])]
    insert_rows(session, handoff_units, named)
    if new_parked:
        now = _now()
        session.execute(_INSERT_PARKED, [
            {"subject": s, "sequence": q, "envelope": e, "parked_at": now}
            for (s, q), e in new_parked.items()])
    if unparked:
        session.execute(_DELETE_PARKED, [{"_subject": s, "_sequence": q} for s, q in unparked])


def _stats_key(created_at: datetime, county, domain_, kind) -> tuple[str, str, str, str]:
    return (utc(created_at).astimezone(timezone.utc).date().isoformat(), county or "",
            domain_ or "", kind or "")


def _add(session, table: Table, keys: tuple[str, ...], deltas: dict[tuple, list],
         values: tuple[str, ...]) -> None:
    """Add ``deltas`` (key -> amounts) to the counters of ``table`` in one statement,
    in key order (two batches touching the same counters lock them in the same order)."""
    if not deltas:
        return
    statement = dialect_insert(session)(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={v: table.c[v] + statement.excluded[v] for v in values})
    session.execute(statement, [
        {**dict(zip(keys, key, strict=True)), **dict(zip(values, amounts, strict=True))}
        for key, amounts in sorted(deltas.items())])


def _step_deltas(contributions, units=(None,)) -> dict[tuple, list]:
    """Counter deltas of steps ((key, hours since the previous step or None)), for each
    of ``units`` (None: the city-wide counters)."""
    deltas: dict[tuple, list] = {}
    for key, hours in contributions:
        for unit in units:
            counter = deltas.setdefault(key if unit is None else (unit, *key), [0, 0, 0.0])
            counter[0] += 1
            if hours is not None:
                counter[1] += 1
                counter[2] += hours
    return deltas


def _stored_steps(session, state: dict, rows: dict, subjects: list[str]) -> dict[str, list]:
    """The contributions of the steps stored before this batch, for handoffs that name
    a new unit (it sees their whole history). Keyed as the handoff is keyed now."""
    if not subjects:
        return {}
    found: dict[str, list] = {}
    last: dict[str, datetime] = {}
    query = (select(timeline.c.handoff_id, timeline.c.step, timeline.c.command, timeline.c.at)
             .where(timeline.c.handoff_id.in_(subjects)).order_by(timeline.c.handoff_id,
                                                                  timeline.c.step))
    for r in session.execute(query):
        if r.step > state[r.handoff_id]["stored_step"] or r.command == RECOMPUTE_COMMAND:
            continue
        at = utc(r.at)
        hours = (at - last[r.handoff_id]).total_seconds() / 3600 \
            if r.handoff_id in last else None
        last[r.handoff_id] = at
        row = rows[r.handoff_id]
        key = _stats_key(state[r.handoff_id]["created_at"], row["county"], row["domain"],
                         row["kind"])
        found.setdefault(r.handoff_id, []).append(((*key, r.command), hours))
    return found


def _count(session, state: dict, rows: dict, step_counts: dict) -> None:
    """Keep the counters: move each changed handoff from its old (key, state, open) to
    its new one, city-wide and for every unit it names; add this batch's steps; and give
    a newly named unit the handoff's earlier steps too (it now sees them)."""
    cases: dict[tuple, list] = {}
    unit_cases: dict[tuple, list] = {}
    for subject, row in rows.items():
        cur = state[subject]
        new = (*_stats_key(cur["created_at"], row["county"], row["domain"], row["kind"]),
               row["state"], row["open"])
        old = cur["counted"]
        old = (*old[0], old[1], old[2]) if old else None
        for unit in sorted(cur["units"]):
            if unit in cur["named_before"]:
                if old == new:
                    continue
                unit_cases.setdefault((unit, *old), [0])[0] -= 1
            unit_cases.setdefault((unit, *new), [0])[0] += 1
        if old == new:
            continue
        if old is not None:
            cases.setdefault(old, [0])[0] -= 1
        cases.setdefault(new, [0])[0] += 1
    renamed = sorted(s for s in rows if state[s]["exists"]
                     and state[s]["units"] - state[s]["named_before"])
    unit_steps: dict[tuple, list] = {}
    for subject, contributions in _stored_steps(session, state, rows, renamed).items():
        new_units = sorted(state[subject]["units"] - state[subject]["named_before"])
        _merge(unit_steps, _step_deltas(contributions, new_units))
    steps: dict[tuple, list] = {}
    for subject, contributions in step_counts.items():
        _merge(steps, _step_deltas(contributions))
        _merge(unit_steps, _step_deltas(contributions, sorted(state[subject]["units"])))
    case_keys, step_keys = (*_STATS_KEY, "state", "open"), (*_STATS_KEY, "command")
    _add(session, stats_cases, case_keys, {k: v for k, v in cases.items() if v[0]}, ("n",))
    _add(session, stats_steps, step_keys, steps, ("n", "timed", "hours"))
    _add(session, unit_stats_cases, ("unit", *case_keys),
         {k: v for k, v in unit_cases.items() if v[0]}, ("n",))
    _add(session, unit_stats_steps, ("unit", *step_keys), unit_steps, ("n", "timed", "hours"))


def _merge(into: dict[tuple, list], deltas: dict[tuple, list]) -> None:
    for key, amounts in deltas.items():
        counter = into.setdefault(key, [0] * len(amounts))
        for i, amount in enumerate(amounts):
            counter[i] += amount


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
                and utc(old[1]) == due:
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
    out = {k: (utc(v).isoformat() if isinstance(v, datetime) else v)
           for k, v in dict(row).items() if k != "search"}
    if now is not None and "deadline_due" in out:
        due = utc(row["deadline_due"])
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
        query = query.where(or_(handoffs.c.search.contains(q.lower(), autoescape=True),
                                handoffs.c.handoff_id == q))
    if overdue_only:
        query = query.where(handoffs.c.deadline_due < now)
    query = query.order_by(handoffs.c.deadline_due.asc().nulls_last(),
                           handoffs.c.updated_at.desc()).limit(limit).offset(offset)
    return [_plain(r, now) for r in session.execute(query).mappings()]


def todo(session, now: datetime, actor, limit: int = 500) -> list[dict]:
    """The open handoffs waiting for ``actor``'s unit (or role, where any unit of the
    role that sees it must act), nearest deadline first, within what it may see; for
    those who act on nothing (coordinator, operator): the overdue ones, to chase."""
    query = select(handoffs).where(handoffs.c.open.is_(True))
    visible = visible_to(actor)
    if visible is not None:
        query = query.where(visible)
    if actor.role in domain.OBSERVERS:
        query = query.where(handoffs.c.deadline_due < now)
    else:
        query = query.where(or_(handoffs.c.waiting.contains(f" r:{actor.role} ",
                                                            autoescape=True),
                                handoffs.c.waiting.contains(f" u:{actor.unit}=",
                                                            autoescape=True)))
    query = query.order_by(handoffs.c.deadline_due.asc().nulls_last(),
                           handoffs.c.updated_at.desc()).limit(limit)
    return [_plain(r, now) for r in session.execute(query).mappings()]


def change_marker(session) -> str | None:
    """When the read model last took in an event (real time, whatever the event's own)."""
    latest = session.execute(select(func.max(_inbox.c.received_at))).scalar()
    return utc(latest).isoformat() if latest else None


def due_clocks(session, now: datetime, window, limit: int = 5000) -> list[dict]:
    """The handoffs whose next deadline alert is due (at most ``limit``, earliest first):
    'approaching' clocks due within ``window``, 'breached' clocks past due. Each row has
    the handoff's fields an alert carries and its deadline. Two index ranges (one per
    level), not an OR that PostgreSQL may answer by reading every clock."""
    out: list[dict] = []
    for level, until in (("breached", now), ("approaching", now + window)):
        query = (select(alert_clocks.c.handoff_id, alert_clocks.c.deadline,
                        alert_clocks.c.next_level, alert_clocks.c.due, handoffs.c.kind,
                        handoffs.c.case_number, handoffs.c.county, handoffs.c.owner_unit,
                        handoffs.c.counterpart_unit, handoffs.c.state, handoffs.c.open)
                 .join(handoffs, handoffs.c.handoff_id == alert_clocks.c.handoff_id)
                 .where(alert_clocks.c.next_level == level, alert_clocks.c.due <= until)
                 .order_by(alert_clocks.c.due).limit(limit - len(out)))
        out += [dict(r) for r in session.execute(query).mappings()]
        if len(out) >= limit:
            break
    return sorted(out, key=lambda r: utc(r["due"]))


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


def sweep(session, now: datetime, window, limit: int = 5000) -> int:
    """Raise the deadline alerts now due (at most ``limit``; the rest next time): the
    rule is ``domain.due_alerts``, the rows only those whose alert clock is due."""
    due = domain.due_alerts(due_clocks(session, now, window, limit), now, window)
    raised = raise_alerts(session, due, now)
    advance_clocks(session, due)
    return len(raised)


def raise_alerts(session, due: list[tuple[dict, str]], now: datetime) -> list[dict]:
    """Record and stage the deadline alerts of ``due`` ((row, level)) not raised before
    (one alert per handoff, deadline, due time and level, ever), in a constant number of
    statements; their envelopes."""
    if not due:
        return []
    ids = sorted({row["handoff_id"] for row, _ in due})
    seen, count = set(), {}
    for i in range(0, len(ids), 1000):
        chunk = ids[i:i + 1000]
        for r in session.execute(select(alerts.c.handoff_id, alerts.c.deadline_id,
                                        alerts.c.due, alerts.c.level)
                                 .where(alerts.c.handoff_id.in_(chunk))):
            seen.add(tuple(r))
            count[r.handoff_id] = count.get(r.handoff_id, 0) + 1
    records, envelopes = [], []
    for row, level in due:
        deadline = row["deadline"]
        key = (row["handoff_id"], deadline["id"], deadline["due"], level)
        if key in seen:
            continue
        seen.add(key)
        count[row["handoff_id"]] = sequence = count.get(row["handoff_id"], 0) + 1
        seconds_left = int((datetime.fromisoformat(deadline["due"]) - now).total_seconds())
        envelope = env.make_envelope(
            event_type=f"deadline.{level}.v1", source=SOURCE,
            subject=f"{row['handoff_id']}/deadlines", sequence=sequence, time=now,
            data={"handoff_id": row["handoff_id"], "kind": row["kind"],
                  "case_number": row["case_number"], "county": row["county"],
                  "owner_unit": row["owner_unit"],
                  "counterpart_unit": row["counterpart_unit"], "state": row["state"],
                  "level": level, "deadline": deadline, "seconds_left": seconds_left})
        records.append(dict(zip(("handoff_id", "deadline_id", "due", "level"), key,
                                strict=True), raised_at=now, event_id=envelope["id"]))
        envelopes.append(envelope)
    if records:
        session.execute(insert(alerts), records)
        stage_many(session, metadata, envelopes)
    return envelopes


def _day(session, column):
    """SQL: the UTC day ('YYYY-MM-DD') of a timestamp column."""
    if session.bind.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)    # SQLite keeps UTC text 'YYYY-MM-DD HH:MM:SS'


def _group(column, group_by: str):
    """The grouping expression over a 'YYYY-MM-DD' day column or a key column."""
    if group_by == "month":
        return func.substr(column, 1, 7)
    return column


def _counter_parts(session, group_by: str, start, end, cases_table, steps_table,
                   where) -> tuple[list, list]:
    """(cases, steps) from counters: (group, state, open, n) and
    (group, command, n, timed, hours), for the days in [start, end) and ``where``."""
    def ranged(table, query):
        if start:
            query = query.where(table.c.day >= start.date().isoformat())
        if end:
            query = query.where(table.c.day < end.date().isoformat())
        return query.where(*where(table))

    column = "day" if group_by == "month" else ("kind" if group_by == "agency" else group_by)
    g = _group(cases_table.c[column], group_by)
    cases = session.execute(ranged(cases_table, select(
        g, cases_table.c.state, cases_table.c.open, func.sum(cases_table.c.n))
        .group_by(g, cases_table.c.state, cases_table.c.open))).all()
    g = _group(steps_table.c[column], group_by)
    steps = session.execute(ranged(steps_table, select(
        g, steps_table.c.command, func.sum(steps_table.c.n), func.sum(steps_table.c.timed),
        func.sum(steps_table.c.hours)).group_by(g, steps_table.c.command))).all()
    return [tuple(r) for r in cases], [tuple(r) for r in steps]


def statistics(session, group_by: str, start, end, now: datetime, actor=None) -> dict:
    """The parts of the statistics view ``group_by`` over the handoffs created in
    [start, end) that ``actor`` may see (``domain.can_view``'s rule, on counters):
    {"cases", "steps", "overdue"} rows for ``domain.statistics_from``. All-seeing roles
    read the city-wide counters; a unit its own (the handoffs that name it); a county
    centre or agency head the city-wide ones of its county's county-wide kinds plus its
    own for the rest. Overdue (open and past due: it changes with the clock) is counted
    live over the open handoffs' deadline index."""
    visible = visible_to(actor) if actor is not None else None
    if visible is None:
        cases, steps = _counter_parts(session, group_by, start, end, stats_cases,
                                      stats_steps, lambda t: ())
    else:
        def county_wide(t):   # never NULL (NOT of NULL would drop a row): coalesce
            out = [t.c.kind.in_(domain.COUNTY_WIDE_KINDS)]
            return out + ([func.coalesce(t.c.county, "") == actor.county]
                          if actor.county else [])

        def named(t):
            out = [t.c.unit == actor.unit]
            if actor.role != "county_command":
                out.append(t.c.kind != "assistance_request")
            if actor.role in domain.COUNTY_ROLES:
                out.append(~and_(*county_wide(t)))
            return out
        cases, steps = _counter_parts(session, group_by, start, end, unit_stats_cases,
                                      unit_stats_steps, named)
        if actor.role in domain.COUNTY_ROLES:
            more_cases, more_steps = _counter_parts(session, group_by, start, end,
                                                    stats_cases, stats_steps, county_wide)
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
                  stats_cases, stats_steps, unit_stats_cases, unit_stats_steps):
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

"""The alerts service's database: the shared handoff tables (tasks), outbox/inbox, and
two tables of its own:

* ``alert_intake`` — every alert applied, keyed by (source unit, the source's alert id):
  a repeated message id is applied once (the key forbids a second row);
* ``alert_targets`` — the open task of each target (kind + vehicle/vessel): its key
  forbids two tasks being opened at once for the same target, so a repeat joins;
* ``alert_dead_letters`` — every MQTT message the intake could not apply (not JSON, not
  an alert of a known kind, a bad topic), with its reason: never dropped silently
  (``liandong alerts dead-letters``).
"""
from __future__ import annotations

from datetime import UTC

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from services.alerts import domain
from services.alerts import reference as ref
from shared.db import utc
from shared.handoffs import HandoffStore

SERVICE = "alerts"
SOURCE = "/wenzhou/transport/alerts"

handoffs = HandoffStore(SERVICE, SOURCE)
metadata = handoffs.metadata
store = handoffs.store

intake = Table(
    "alert_intake", metadata,
    Column("source", String(100), primary_key=True),
    Column("alert_id", String(120), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("task_id", String(36), nullable=False),
    Column("merged", Boolean, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
Index("ix_alert_intake_task", intake.c.task_id)
targets = Table(
    "alert_targets", metadata,
    Column("target_key", String(200), primary_key=True),
    Column("task_id", String(36), nullable=False),
)
dead_letters = Table(
    "alert_dead_letters", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("topic", String(300), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("errors", JSON, nullable=True),
    Column("payload", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
Index("ix_alert_intake_received", intake.c.received_at)


def apply_alert(session, actor, data: dict, now, for_update: bool = False) -> dict:
    """Apply one validated alert in the caller's transaction (``apply_alerts``)."""
    return apply_alerts(session, [(actor, data)], now, for_update)[0]


def apply_alerts(session, items: list[tuple], now, for_update: bool = False) -> list[dict]:
    """Apply validated alerts ``[(source actor, alert)]`` in the caller's transaction, in
    order, each as if alone: a repeat of its message id is answered with the first
    outcome; a repeat of an open task's target joins it; otherwise a new task (record,
    step, event). One query per table for the whole list, not per alert (a storm's
    repeats). Concurrent attempts on one message id or target fail on a key
    (IntegrityError): the caller retries and joins."""
    seen: dict[tuple, str] = {}
    by_source: dict[str, set] = {}
    for actor, data in items:
        by_source.setdefault(actor.unit, set()).add(data["alert_id"])
    for source, ids in by_source.items():
        seen.update({(source, a): t for a, t in session.execute(
            select(intake.c.alert_id, intake.c.task_id).where(
                intake.c.source == source, intake.c.alert_id.in_(sorted(ids))))})
    keys = [ref.target_key(data) for _actor, data in items]
    open_ids = dict(session.execute(select(targets.c.target_key, targets.c.task_id).where(
        targets.c.target_key.in_(sorted(set(keys))))).all())
    recs = _load_tasks(session, {*seen.values(), *open_ids.values()}, for_update)
    changed: set[str] = set()
    rows, out, new, new_targets = [], [], {}, []

    def rec_of(task_id: str) -> dict:
        if task_id not in recs:
            recs[task_id] = handoffs.load(session, task_id, for_update=for_update)
        return recs[task_id]

    for (actor, data), key in zip(items, keys, strict=True):
        if (actor.unit, data["alert_id"]) in seen:
            out.append(_answer("duplicate", rec_of(seen[actor.unit, data["alert_id"]])))
            continue
        outcome = "created"
        if key in open_ids:
            rec = rec_of(open_ids[key])
            if domain.joins(rec, now):
                rec = recs[rec["id"]] = domain.merge(rec, data, now)
                changed.add(rec["id"])
                outcome = "merged"
            else:
                session.execute(delete(targets).where(targets.c.target_key == key,
                                                      targets.c.task_id == rec["id"]))
                del open_ids[key]
        if outcome == "created":
            rec, step = domain.create("dispatch", actor, data, now)
            # written below, one statement a table; the event is the task as created
            new[rec["id"]] = (step, domain.event_payload(rec, step))
            new_targets.append({"target_key": key, "task_id": rec["id"]})
            open_ids[key], recs[rec["id"]] = rec["id"], rec
        seen[actor.unit, data["alert_id"]] = rec["id"]
        rows.append({"source": actor.unit, "alert_id": data["alert_id"], "kind": data["kind"],
                     "task_id": rec["id"], "merged": outcome == "merged", "received_at": now})
        out.append(_answer(outcome, rec))
    if new_targets:   # first: a concurrent intake opening the same target fails here
        session.execute(insert(targets), new_targets)
    if new:           # as created (their event), with the repeats that joined them since
        handoffs.save_new_many(session, [(recs[i], step, payload)
                                         for i, (step, payload) in new.items()])
        changed -= set(new)
    if changed:
        t = handoffs.handoffs
        session.execute(update(t).where(t.c.id == bindparam("_id")).values(
            doc=bindparam("_doc")), [{"_id": i, "_doc": recs[i]} for i in sorted(changed)])
    if rows:
        session.execute(insert(intake), rows)
    return out


def _load_tasks(session, ids: set, for_update: bool) -> dict[str, dict]:
    """The tasks' records in one query (locked in id order when ``for_update``)."""
    if not ids:
        return {}
    t = handoffs.handoffs
    query = select(t.c.id, t.c.doc).where(t.c.id.in_(sorted(ids))).order_by(t.c.id)
    if for_update:
        query = query.with_for_update()
    return dict(session.execute(query).all())


def _answer(outcome: str, rec: dict) -> dict:
    return {"outcome": outcome, "task_id": rec["id"], "case_number": rec["case_number"],
            "county": rec["county"], "handler_unit": rec["counterpart_unit"],
            "state": rec["state"], "repeats": rec.get("repeats", 0),
            "urgency": rec["urgency"]}


def release_target(session, rec: dict) -> None:
    """A closed task no longer collects repeats of its target."""
    session.execute(delete(targets).where(targets.c.task_id == rec["id"]))


def overdue_records(session, now) -> list[dict]:
    """Open tasks whose earliest running deadline has passed (sweep candidates). A miss
    escalated to the city keeps its clock (the task shows overdue until someone acts),
    so a neglected task stays a candidate with nothing more to escalate: the sweep's
    cost is the number of open overdue tasks, not of the history."""
    now = now.astimezone(UTC)  # SQLite compares wall time
    t = handoffs.handoffs
    query = (select(t.c.doc).where(t.c.kind == domain.KIND,
                                   t.c.state.in_(list(domain.SWEPT_STATES)),
                                   t.c.deadline_due.is_not(None), t.c.deadline_due <= now)
             .order_by(t.c.deadline_due))
    return list(session.execute(query).scalars())


def escalate_due(session, task_id: str, now, for_update: bool = False) -> list[tuple]:
    """Stage every escalation due on one task; each is a step saved conditionally on
    the step read, so two sweepers cannot escalate the same miss twice."""
    rec = handoffs.load(session, task_id, for_update=for_update)
    done = []
    for miss, level, unit, due in domain.due_escalations(rec, now):
        previous = rec["step"]
        rec, step = domain.escalate(rec, miss, level, unit, due, now)
        handoffs.save(session, rec, step, domain.event_payload(rec, step), previous)
        done.append((miss, level, unit))
    return done


def alerts_per_task(session) -> dict[str, int]:
    rows = session.execute(select(intake.c.task_id, func.count()).group_by(intake.c.task_id))
    return {task_id: n for task_id, n in rows}


def intake_count(session) -> int:
    return session.execute(select(func.count()).select_from(intake)).scalar_one()


def dead_letter(session, source: str, topic: str, reason: str, errors, payload: bytes,
                now) -> None:
    """Keep a message the intake could not apply, with its reason."""
    session.execute(insert(dead_letters).values(
        source=source[:100], topic=topic[:300], reason=reason[:500], errors=errors,
        payload=payload.decode("utf-8", errors="replace")[:20000], received_at=now))


def list_dead_letters(session, limit: int = 100, source: str | None = None) -> list[dict]:
    t = dead_letters
    query = select(t).order_by(t.c.id.desc()).limit(limit)
    if source:
        query = query.where(t.c.source == source)
    return [{**row._mapping, "received_at": utc(row.received_at).isoformat()}
            for row in session.execute(query)]


def intake_rates(session, since) -> dict:
    """Alerts applied and dead letters since ``since``, per source."""
    since = since.astimezone(UTC)
    applied = dict(session.execute(select(intake.c.source, func.count()).where(
        intake.c.received_at >= since).group_by(intake.c.source)).all())
    dead = dict(session.execute(select(dead_letters.c.source, func.count()).where(
        dead_letters.c.received_at >= since).group_by(dead_letters.c.source)).all())
    return {"applied": applied, "dead_letters": dead}

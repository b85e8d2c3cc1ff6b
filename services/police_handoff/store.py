"""Persistence of criminal referrals: one row per referral (its current document)
and one row per step (who, what, when) — plus the shared outbox/inbox tables."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)

from shared import envelope as env
from shared.db import Store
from shared.errors import InvalidTransition, NotFound
from shared.messaging import messaging_tables, stage

SERVICE = "police_handoff"
SOURCE = "/wenzhou/transport/police_handoff"

metadata = MetaData()
referrals = Table(
    "referrals", metadata,
    Column("id", String(36), primary_key=True),
    Column("case_number", String(60), nullable=False),
    Column("direction", String(20), nullable=False),
    Column("county", String(20), nullable=False),
    Column("owner_unit", String(100), nullable=False),
    Column("counterpart_unit", String(100)),
    Column("state", String(40), nullable=False),
    Column("step", Integer, nullable=False),
    Column("deadline_due", DateTime(timezone=True)),
    Column("doc", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_referrals_state_due", referrals.c.state, referrals.c.deadline_due)
Index("ix_referrals_case_number", referrals.c.case_number)
steps = Table(
    "referral_steps", metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("command", String(40), nullable=False),
    Column("from_state", String(40)),
    Column("to_state", String(40), nullable=False),
    Column("actor", JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("details", JSON, nullable=False),
    Column("event_id", String(64), nullable=False),
)
messaging_tables(metadata)

store = Store(SERVICE, metadata)


def _due(rec: dict):
    return datetime.fromisoformat(rec["deadline"]["due"]) if rec.get("deadline") else None


def load(session, referral_id: str, for_update: bool = False) -> dict:
    query = select(referrals.c.doc).where(referrals.c.id == referral_id)
    if for_update:
        query = query.with_for_update()
    row = session.execute(query).first()
    if row is None:
        raise NotFound(f"no criminal referral {referral_id}", {"referral_id": ["not found"]})
    return row.doc


def save(session, rec: dict, step: dict, payload: dict, previous_step: int) -> dict:
    """Persist the new record, its step and the event, in the caller's transaction.

    The update is conditional on the step number read (optimistic concurrency): two
    users acting at once cannot both move the same referral."""
    now = datetime.fromisoformat(step["at"])
    columns = dict(case_number=rec["case_number"], direction=rec["direction"],
                   county=rec["county"], owner_unit=rec["owner_unit"],
                   counterpart_unit=rec.get("counterpart_unit"), state=rec["state"],
                   step=rec["step"], deadline_due=_due(rec), doc=rec, updated_at=now)
    if previous_step == 0:
        session.execute(insert(referrals).values(id=rec["id"], created_at=now, **columns))
    else:
        changed = session.execute(update(referrals).where(
            referrals.c.id == rec["id"], referrals.c.step == previous_step).values(**columns))
        if changed.rowcount != 1:
            raise InvalidTransition("the referral was changed by someone else; reload and retry",
                                    {"step": [f"expected step {previous_step}"]})
    envelope = env.make_envelope(event_type=step["event"], source=SOURCE, subject=rec["id"],
                                 data=payload, sequence=rec["step"], actor=_Actor(step["actor"]),
                                 time=now)
    session.execute(insert(steps).values(
        referral_id=rec["id"], step=rec["step"], command=step["command"],
        from_state=step["from"], to_state=step["to"], actor=step["actor"], at=now,
        details=payload["details"], event_id=envelope["id"]))
    stage(session, metadata, envelope)
    return envelope


class _Actor:
    def __init__(self, d: dict):
        self.user_id, self.role, self.unit = d["user_id"], d["role"], d["unit"]


def timeline(session, referral_id: str) -> list[dict]:
    rows = session.execute(select(steps).where(steps.c.referral_id == referral_id)
                           .order_by(steps.c.step)).mappings().all()
    return [{**dict(r), "at": r["at"].isoformat() if r["at"] else None} for r in rows]


def search(session, *, state=None, county=None, limit=100, offset=0) -> list[dict]:
    query = select(referrals.c.doc).order_by(referrals.c.updated_at.desc())
    if state:
        query = query.where(referrals.c.state == state)
    if county:
        query = query.where(referrals.c.county == county)
    return [r.doc for r in session.execute(query.limit(limit).offset(offset))]

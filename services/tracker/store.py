"""Tracker read model: every handoff's current status and timeline, built only from
events on the bus (so it can be rebuilt from them)."""
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

from shared.db import Store
from shared.messaging import messaging_tables

SERVICE = "tracker"

metadata = MetaData()
handoffs = Table(
    "handoffs", metadata,
    Column("handoff_id", String(64), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("case_number", String(60), nullable=False),
    Column("county", String(20)),
    Column("owner_unit", String(100), nullable=False),
    Column("counterpart_unit", String(100)),
    Column("state", String(40), nullable=False),
    Column("step", Integer, nullable=False),
    Column("deadline", JSON),
    Column("deadline_due", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_handoffs_due", handoffs.c.deadline_due)
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
messaging_tables(metadata)

store = Store(SERVICE, metadata)


class OutOfOrder(Exception):
    """An event arrived before an earlier step of its subject: retry later (transient)."""


def apply(session, envelope: dict) -> str:
    """Apply one handoff event; return 'applied', 'stale' or raise OutOfOrder."""
    data, seq = envelope["data"], envelope["sequence"]
    current = session.execute(select(handoffs.c.step).where(
        handoffs.c.handoff_id == envelope["subject"])).scalar()
    if (current or 0) >= seq:
        return "stale"
    if seq != (current or 0) + 1:
        raise OutOfOrder(f"{envelope['subject']}: got step {seq} after {current or 0}")
    at = datetime.fromisoformat(data["at"])
    deadline = data.get("deadline")
    row = dict(kind=data["kind"], case_number=data["case_number"], county=data.get("county"),
               owner_unit=data["owner_unit"], counterpart_unit=data.get("counterpart_unit"),
               state=data["state"], step=seq, deadline=deadline,
               deadline_due=datetime.fromisoformat(deadline["due"]) if deadline else None,
               updated_at=at)
    if current is None:
        session.execute(insert(handoffs).values(handoff_id=envelope["subject"], **row))
    else:
        session.execute(update(handoffs).where(
            handoffs.c.handoff_id == envelope["subject"]).values(**row))
    session.execute(insert(timeline).values(
        handoff_id=envelope["subject"], step=seq, event_id=envelope["id"],
        type=envelope["type"], command=data["command"], state=data["state"],
        actor=envelope.get("actor"), actor_role=envelope.get("actorrole"),
        actor_unit=envelope.get("actorunit"), at=at, data=data))
    return "applied"


def get(session, handoff_id: str) -> dict | None:
    row = session.execute(select(handoffs).where(handoffs.c.handoff_id == handoff_id)
                          ).mappings().first()
    if row is None:
        return None
    events = session.execute(select(timeline).where(timeline.c.handoff_id == handoff_id)
                             .order_by(timeline.c.step)).mappings().all()
    return {**_plain(row), "timeline": [_plain(e) for e in events]}


def _plain(row) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in dict(row).items()}

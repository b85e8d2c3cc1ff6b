"""The notifications service's own database: the deliveries (an outbox of messages to
units: one row per event, unit and channel, keyed so it is never queued twice) and the
inbox of the events it consumed."""
from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, Integer, MetaData, String, Table, Text

from shared.db import Store
from shared.messaging import messaging_tables

SERVICE = "notifications"
metadata = MetaData()
deliveries = Table(
    "deliveries", metadata,
    Column("key", String(64), primary_key=True),      # the idempotency key receivers see
    Column("event_id", String(64), nullable=False),
    Column("unit", String(100), nullable=False),
    Column("topic", String(40), nullable=False),
    Column("channel", String(60), nullable=False),
    Column("channel_type", String(20), nullable=False),
    Column("title", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(20), nullable=False),    # pending | sent
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", DateTime(timezone=True), nullable=False),
    Column("last_error", String(500)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("extra", JSON),
)
Index("ix_notifications_due", deliveries.c.status, deliveries.c.next_at)
messaging_tables(metadata)
store = Store(SERVICE, metadata)

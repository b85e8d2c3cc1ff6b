"""Transactional outbox and idempotent inbox (the only implementation; every service
uses it).

* Outbox: ``stage(session, envelope)`` writes the event in the same transaction as
  the state change. ``Relay`` publishes unsent rows with publisher confirms and only
  then marks them sent; a crash before the mark re-publishes (at-least-once), which
  the inbox on the consuming side turns into exactly-once effects.
* Inbox: ``claim_many(session, metadata, consumer, envelopes)`` records the event ids
  in the consumer's transaction and returns the envelopes not applied before.
"""
from __future__ import annotations

import contextlib
import time
from datetime import datetime, timezone
from functools import lru_cache

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from shared import envelope as env
from shared import faults, signing
from shared.db import insert_rows, utc

log = structlog.get_logger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def messaging_tables(metadata: MetaData) -> dict[str, Table]:
    """Add the outbox and inbox tables to a service's metadata (once)."""
    if "outbox" in metadata.tables:
        return {"outbox": metadata.tables["outbox"], "inbox": metadata.tables["inbox"]}
    outbox = Table(
        "outbox", metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
               autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("type", String(120), nullable=False),
        Column("subject", String(120), nullable=False),
        Column("routing_key", String(200), nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
        Column("sent_at", DateTime(timezone=True), nullable=True),
    )
    Index("ix_outbox_unsent", outbox.c.id, postgresql_where=outbox.c.sent_at.is_(None),
          sqlite_where=outbox.c.sent_at.is_(None))
    inbox = Table(
        "inbox", metadata,
        Column("consumer", String(120), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("type", String(120), nullable=False),
        Column("subject", String(120), nullable=False),
        Column("sequence", Integer, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, default=utcnow),
    )
    return {"outbox": outbox, "inbox": inbox}


# --------------------------------------------------------------------------- outbox

def stage(session, metadata: MetaData, envelope: dict) -> None:
    """Write an event to the outbox inside the caller's transaction."""
    stage_many(session, metadata, [envelope])


def stage_many(session, metadata: MetaData, envelopes: list[dict]) -> None:
    """Write events to the outbox inside the caller's transaction, in one statement."""
    if not envelopes:
        return
    outbox = messaging_tables(metadata)["outbox"]
    now = utcnow()
    rows = []
    for envelope in envelopes:
        envelope = signing.sign(envelope)   # the issuer signs what it stages
        rows.append({"event_id": envelope["id"], "type": envelope["type"],
                     "subject": envelope["subject"], "routing_key": envelope["type"],
                     "body": env.encode(envelope).decode("utf-8"), "created_at": now})
    session.execute(_insert(outbox), rows)


@lru_cache(maxsize=64)
def _insert(table: Table):
    """``INSERT INTO table``, built once per table; executions pass their parameters."""
    return insert(table)


def backlog(store) -> dict:
    """Unsent outbox rows and the age of the oldest, for operators and metrics."""
    outbox = messaging_tables(store.metadata)["outbox"]
    with store.session() as s:
        count, oldest = s.execute(select(func.count(), func.min(outbox.c.created_at))
                                  .where(outbox.c.sent_at.is_(None))).one()
    return {"service": store.service, "unsent": count,
            "oldest": utc(oldest).isoformat() if oldest else None}


def export(store, after_id: int = 0, limit: int = 500, raw: bool = False) -> list[dict]:
    """Outbox rows after ``after_id`` (sent or not) as ``{"id", "envelope"}``: the
    service's event history, from which read models are rebuilt. ``raw``: as
    ``{"id", "body"}``, the envelope's JSON text as stored (a rebuild passes it on
    unparsed: decoding and re-encoding every envelope was half of an export's time)."""
    import json
    outbox = messaging_tables(store.metadata)["outbox"]
    with store.session() as s:
        rows = s.execute(select(outbox.c.id, outbox.c.body).where(outbox.c.id > after_id)
                         .order_by(outbox.c.id).limit(limit)).all()
    if raw:
        return [{"id": r.id, "body": r.body} for r in rows]
    return [{"id": r.id, "envelope": json.loads(r.body)} for r in rows]


class Relay:
    """Publishes a store's unsent outbox rows to RabbitMQ with publisher confirms.

    A batch of rows is published in one go on a channel in confirm mode and the relay
    then waits once for the broker's acks of the whole batch (pipelined confirms: one
    round trip per batch, not per message). Rows are marked sent only when every one
    of them was acked; a nack, a timeout or a connection error marks nothing, drops
    the connection and the batch is published again (at-least-once; the inbox makes
    it exactly-once in effect).

    Works inside nameko (eventlet; kombu/py-amqp are cooperative there) and in a
    plain process (``liandong relay``). Several relays on one PostgreSQL
    database do not publish the same row twice at once (``FOR UPDATE SKIP LOCKED``).
    """

    def __init__(self, store, amqp_uri: str, batch: int = 500, confirm_timeout: float = 30.0):
        self.store = store
        self.amqp_uri = amqp_uri
        self.batch = batch
        self.confirm_timeout = confirm_timeout
        self._conn = None
        self._channel = None
        self._published = 0          # delivery tags handed out on this channel
        self._unconfirmed: set[int] = set()
        self._nacked = 0

    def _channel_ready(self):
        if self._channel is None:
            from kombu import Connection

            from shared.topology import declare
            conn = Connection(self.amqp_uri, heartbeat=0)
            try:
                conn.ensure_connection(max_retries=3)
                declare(conn)
                channel = conn.channel()
                channel.confirm_select()
            except Exception:
                with contextlib.suppress(Exception):
                    conn.release()
                raise
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            self._conn, self._channel, self._published = conn, channel, 0
            self._unconfirmed.clear()
        return self._channel

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if not multiple:
            self._unconfirmed.discard(tag)
        elif tag >= self._published:     # every publish so far
            self._unconfirmed.clear()
        else:
            self._unconfirmed = {t for t in self._unconfirmed if t > tag}

    def _on_nack(self, tag: int, multiple: bool) -> None:
        before = len(self._unconfirmed)
        self._on_ack(tag, multiple)
        self._nacked += before - len(self._unconfirmed)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._conn.release()
        self._conn = self._channel = None
        self._unconfirmed.clear()

    def _publish_confirmed(self, rows) -> None:
        """Publish ``rows`` and return once the broker acked all of them; raise if it
        nacked any or did not answer within ``confirm_timeout``."""
        channel = self._channel_ready()
        self._nacked = 0
        for row in rows:
            channel.basic_publish(
                channel.prepare_message(
                    row.body.encode("utf-8"), content_type="application/cloudevents+json",
                    content_encoding="utf-8", headers={},
                    properties={"delivery_mode": 2, "message_id": row.event_id}),
                exchange=env.EXCHANGE, routing_key=row.routing_key)
            self._published += 1
            self._unconfirmed.add(self._published)
        deadline = time.monotonic() + self.confirm_timeout
        while self._unconfirmed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._unconfirmed)} of {len(rows)} publishes "
                                   f"not confirmed within {self.confirm_timeout} s")
            self._conn.drain_events(timeout=remaining)  # runs _on_ack/_on_nack
        if self._nacked:
            raise RuntimeError(f"broker nacked {self._nacked} of {len(rows)} publishes")

    def relay_once(self) -> int:
        """Publish up to ``batch`` unsent rows; return how many were confirmed."""
        outbox = messaging_tables(self.store.metadata)["outbox"]
        query = (select(outbox.c.id, outbox.c.event_id, outbox.c.routing_key, outbox.c.body)
                 .where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id).limit(self.batch))
        if self.store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        with self.store.transaction() as s:
            rows = s.execute(query).all()
            if not rows:
                return 0
            faults.point("crash_before_publish", pending=len(rows))
            try:
                self._publish_confirmed(rows)
            except Exception:
                self.close()
                raise
            faults.point("crash_after_publish", published=len(rows))
            s.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                      .values(sent_at=utcnow()))
        return len(rows)

    def drain(self) -> int:
        """Relay batches until one comes back short: the backlog is empty (or its rest
        is locked by another relay). Rows committed meanwhile wake the relay again."""
        total = 0
        while True:
            n = self.relay_once()
            total += n
            if n < self.batch:
                return total

    def run(self, stop, wake, idle_wait: float = 0.5) -> None:
        """Loop until ``stop()`` is true; ``wake(timeout)`` blocks until woken or timeout."""
        backoff = 0.5
        while not stop():
            try:
                n = self.drain()
                backoff = 0.5
                if n:
                    log.debug("outbox_relayed", service=self.store.service, count=n)
                wake(idle_wait)
            except Exception as exc:  # noqa: BLE001 - keep relaying after broker/DB faults
                log.warning("outbox_relay_failed", service=self.store.service,
                            error=f"{type(exc).__name__}: {exc}", retry_in=backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)


# --------------------------------------------------------------------------- inbox

def _insert_many(session, table, rows: list[dict]) -> None:
    session.execute(_insert(table), rows)


def claim_many(session, metadata: MetaData, consumer: str, envelopes: list[dict],
               bulk: bool = False) -> list[dict]:
    """Record that ``consumer`` applies ``envelopes`` in this transaction, in two
    statements; return those not applied before (a redelivery, or a copy twice in the
    batch, is left out: the caller changes nothing for it), in their order.

    Two copies handled at the same moment by two transactions both pass the check; the
    second commit fails on the primary key, its whole transaction rolls back, the
    message is requeued, and the retry sees the first one's row and leaves it out.

    ``bulk``: write the rows with ``insert_rows`` (COPY on PostgreSQL, which blocks the
    whole process while it runs). Only for a caller that serialises copies of an event
    before this call (the tracker's subject locks): otherwise a second copy in the same
    process would wait, blocking, on the first one's uncommitted row, and the first
    could never commit — the process would hang.
    """
    if not envelopes:
        return []
    inbox = messaging_tables(metadata)["inbox"]
    seen = set(session.execute(select(inbox.c.event_id).where(
        inbox.c.consumer == consumer,
        inbox.c.event_id.in_(sorted({e["id"] for e in envelopes})))).scalars())
    fresh = []
    for e in envelopes:
        if e["id"] not in seen:
            seen.add(e["id"])
            fresh.append(e)
    if fresh:
        now = utcnow()
        (insert_rows if bulk else _insert_many)(session, inbox, [
            {"consumer": consumer, "event_id": e["id"], "type": e["type"],
             "subject": e["subject"], "sequence": e["sequence"], "received_at": now}
            for e in fresh])
    return fresh

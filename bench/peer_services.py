"""(d) the fair peer: the same work as (c) done the straightforward way, with the same
stack (nameko on eventlet, SQLAlchemy, psycopg2 made cooperative, PostgreSQL, RabbitMQ).

* ``PeerReferrals.create`` is an RPC that checks the same token and validates the same
  payload with the same domain (``services.police_handoff.domain.create``: schema,
  judgment standards, state machine), writes the referral and its step with an ORM
  session, commits, and then dispatches the event with nameko's ``EventDispatcher``
  inside the request. No outbox: a crash between the commit and the dispatch loses the
  event (the bench kills it mid-run and counts).
* ``PeerTracker.on_drafted`` is an ``event_handler`` that writes the read model one event
  at a time with an ORM session (no inbox: a redelivered event is applied again,
  idempotent here only because the row is keyed by the handoff).

Started as real processes by bench/peer.py (``nameko run bench.peer_services:...``).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from nameko.events import EventDispatcher, event_handler
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from services.police_handoff import domain
from shared.auth import verify_token
from shared.db import database_url, make_engine

PRODUCER, TRACKER = "peer_police_handoff", "peer_tracker"


class ProducerBase(DeclarativeBase):
    pass


class Referral(ProducerBase):
    __tablename__ = "referrals"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_number: Mapped[str] = mapped_column(String(60), index=True)
    county: Mapped[str | None] = mapped_column(String(20))
    owner_unit: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(40))
    step: Mapped[int] = mapped_column(Integer)
    doc: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Step(ProducerBase):
    __tablename__ = "referral_steps"
    handoff_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    command: Mapped[str] = mapped_column(String(40))
    to_state: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TrackerBase(DeclarativeBase):
    pass


class Tracked(TrackerBase):
    __tablename__ = "handoffs"
    handoff_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    case_number: Mapped[str] = mapped_column(String(60))
    county: Mapped[str | None] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(40))
    step: Mapped[int] = mapped_column(Integer)
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OrmSession(DependencyProvider):
    """An ORM session per worker, closed after it (what nameko-sqlalchemy does)."""

    def __init__(self, service: str, base):
        self.service, self.base = service, base
        self.sessions = {}

    def setup(self):
        engine = make_engine(database_url(self.service))
        self.base.metadata.create_all(engine)
        self.factory = sessionmaker(engine, expire_on_commit=False)

    def get_dependency(self, worker_ctx):
        self.sessions[worker_ctx] = session = self.factory()
        return session

    def worker_teardown(self, worker_ctx):
        session = self.sessions.pop(worker_ctx, None)
        if session is not None:
            session.close()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class PeerReferrals:
    name = PRODUCER
    db = OrmSession(PRODUCER, ProducerBase)
    dispatch = EventDispatcher()

    @rpc
    def health(self):
        return {"service": self.name}

    @rpc
    def create(self, token, command, payload):
        actor = verify_token(token)
        now = _now()
        rec, step = domain.create(command, actor, payload, now)
        doc = json.loads(json.dumps(rec, default=str))
        self.db.add(Referral(id=rec["id"], case_number=rec["case_number"],
                             county=rec["county"], owner_unit=rec["owner_unit"],
                             state=rec["state"], step=rec["step"], doc=doc, created_at=now))
        self.db.add(Step(handoff_id=rec["id"], step=step["step"], command=step["command"],
                         to_state=step["to"], details=doc.get("details", {}), at=now))
        self.db.commit()
        event = json.loads(json.dumps(domain.event_payload(rec, step), default=str))
        self.dispatch("referral_drafted", {**event, "time": now.isoformat()})
        return doc


class PeerTracker:
    name = TRACKER
    db = OrmSession(TRACKER, TrackerBase)

    @rpc
    def health(self):
        return {"service": self.name}

    @event_handler(PRODUCER, "referral_drafted")
    def on_drafted(self, event):
        row = self.db.get(Tracked, event["handoff_id"])
        if row is None:
            row = Tracked(handoff_id=event["handoff_id"])
            self.db.add(row)
        elif row.step >= event["step"]:
            return
        row.kind, row.case_number, row.county = event["kind"], event["case_number"], \
            event["county"]
        row.state, row.step = event["state"], event["step"]
        row.event_time = datetime.fromisoformat(event["time"])
        row.applied_at = _now()
        self.db.commit()

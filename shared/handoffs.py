"""Persistence and the nameko adapter shared by every handoff procedure (criminal
referral, market referral, ...): one row per handoff holding its current document,
one row per step (who, what, when), and the event in the outbox — all in one
transaction. A service supplies its domain module (see ``HandoffDomain``).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Protocol

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from shared import audit, calendar, casefile, faults, tokenkeys
from shared import envelope as env
from shared import idempotency as idem
from shared.auth import Actor, require_role, verify_token
from shared.db import Store, utc
from shared.errors import InvalidInput, InvalidTransition, NotAllowed, NotFound, bounded
from shared.messaging import backlog, export, messaging_tables, stage, stage_many
from shared.nameko_ext import rpc
from shared.procedure import recompute_clocks
from shared.revocations import revocation_status


class HandoffDomain(Protocol):
    """What a procedure's plain-Python domain module provides."""

    KIND: str

    def procedure(self): ...
    def create(self, command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]: ...
    def act(self, rec: dict, command: str, actor: Actor, payload,
            now: datetime) -> tuple[dict, dict]: ...
    def can_view(self, actor: Actor, rec: dict) -> bool: ...
    def event_payload(self, rec: dict, step: dict) -> dict: ...


class HandoffStore:
    """A service's handoff tables plus the shared outbox/inbox, in its own database."""

    def __init__(self, service: str, source: str, url: str | None = None):
        self.service = service
        self.source = source
        self.metadata = MetaData()
        self.handoffs = Table(
            "handoffs", self.metadata,
            Column("id", String(36), primary_key=True),
            Column("kind", String(40), nullable=False),
            Column("case_number", String(60), nullable=False),
            Column("direction", String(30), nullable=False),
            Column("county", String(20)),
            Column("owner_unit", String(100), nullable=False),
            Column("counterpart_unit", String(100)),
            Column("state", String(40), nullable=False),
            Column("step", Integer, nullable=False),
            Column("deadline_due", DateTime(timezone=True)),
            Column("doc", JSON, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("updated_at", DateTime(timezone=True), nullable=False),
        )
        Index(f"ix_{service}_handoffs_state_due", self.handoffs.c.state,
              self.handoffs.c.deadline_due)
        Index(f"ix_{service}_handoffs_case_number", self.handoffs.c.case_number)
        # a period's records (the centres' assessment) without reading every year's
        Index(f"ix_{service}_handoffs_kind_created", self.handoffs.c.kind,
              self.handoffs.c.created_at)
        self.steps = Table(
            "handoff_steps", self.metadata,
            Column("handoff_id", String(36), primary_key=True),
            Column("step", Integer, primary_key=True),
            Column("command", String(40), nullable=False),
            Column("from_state", String(40)),
            Column("to_state", String(40), nullable=False),
            Column("actor", JSON, nullable=False),
            Column("at", DateTime(timezone=True), nullable=False),
            Column("details", JSON, nullable=False),
            Column("event_id", String(64), nullable=False),
            Column("prev_hash", String(64), nullable=False),
            Column("hash", String(64), nullable=False),
        )
        audit.append_only(self.steps)
        messaging_tables(self.metadata)
        self.keys = idem.table(self.metadata)
        self.store = Store(service, self.metadata, url)
        # statements built once; each execution passes only its parameters (building
        # a statement with .values(...) per call costs more than running it)
        h, st = self.handoffs, self.steps
        self._insert_handoff, self._insert_step = insert(h), insert(st)
        self._update_handoff = update(h).where(h.c.id == bindparam("_id"),
                                               h.c.step == bindparam("_previous"))
        self._prev_hash = select(st.c.hash).where(st.c.handoff_id == bindparam("_id"),
                                                  st.c.step == bindparam("_step"))

    def load(self, session, handoff_id: str, for_update: bool = False) -> dict:
        query = select(self.handoffs.c.doc).where(self.handoffs.c.id == handoff_id)
        if for_update:
            query = query.with_for_update()
        row = session.execute(query).first()
        if row is None:
            raise NotFound(f"no {self.service} handoff {handoff_id}", {"id": ["not found"]})
        return row.doc

    def save(self, session, rec: dict, step: dict, payload: dict, previous_step: int) -> dict:
        """Persist record, step and event in the caller's transaction. The update is
        conditional on the step read (optimistic concurrency): two users acting at once
        cannot both move the same handoff."""
        if previous_step == 0:
            return self.save_new_many(session, [(rec, step, payload)])[0]
        columns, row, envelope = self._rows(rec, step, payload)
        changed = session.execute(self._update_handoff, {
            **columns, "_id": rec["id"], "_previous": previous_step})
        if changed.rowcount != 1:
            raise InvalidTransition("changed by someone else meanwhile; reload and retry",
                                    {"step": [f"expected step {previous_step}"]})
        prev = self._previous_hash(session, rec)
        session.execute(self._insert_step, {**row, "prev_hash": prev,
                                            "hash": audit.chain(prev, row)})
        stage(session, self.metadata, envelope)
        return envelope

    def save_new_many(self, session, items: list[tuple[dict, dict, dict]]) -> list[dict]:
        """Persist new handoffs ``[(record, first step, event payload)]`` in the caller's
        transaction: one statement per table for them all (an intake's batch), not three
        round trips each. The envelopes, in order."""
        if not items:
            return []
        handoff_rows, step_rows, envelopes = [], [], []
        for rec, step, payload in items:
            columns, row, envelope = self._rows(rec, step, payload)
            prev = self._previous_hash(session, rec)
            handoff_rows.append({**columns, "id": rec["id"], "created_at": row["at"]})
            step_rows.append({**row, "prev_hash": prev, "hash": audit.chain(prev, row)})
            envelopes.append(envelope)
        session.execute(self._insert_handoff, handoff_rows)
        session.execute(self._insert_step, step_rows)
        stage_many(session, self.metadata, envelopes)
        return envelopes

    def _previous_hash(self, session, rec: dict) -> str:
        if rec["step"] == 1:
            return audit.GENESIS
        return session.execute(self._prev_hash, {"_id": rec["id"],
                                                 "_step": rec["step"] - 1}).scalar_one()

    def _rows(self, rec: dict, step: dict, payload: dict) -> tuple[dict, dict, dict]:
        """The handoff's columns, the step's row (without its hashes) and the event."""
        now = datetime.fromisoformat(step["at"])
        due = rec.get("deadline") and datetime.fromisoformat(rec["deadline"]["due"])
        columns = {"kind": rec["kind"], "case_number": rec["case_number"],
                   "direction": rec["direction"], "county": rec.get("county"),
                   "owner_unit": rec["owner_unit"],
                   "counterpart_unit": rec.get("counterpart_unit"), "state": rec["state"],
                   "step": rec["step"], "deadline_due": due or None, "doc": rec,
                   "updated_at": now}
        actor = step["actor"]
        envelope = env.make_envelope(
            event_type=step["event"], source=self.source, subject=rec["id"], data=payload,
            sequence=rec["step"], time=now,
            actor=Actor(actor["user_id"], actor["role"], actor["unit"], actor.get("county")))
        row = {"handoff_id": rec["id"], "step": rec["step"], "command": step["command"],
               "from_state": step["from"], "to_state": step["to"], "actor": actor, "at": now,
               "details": payload["details"], "event_id": envelope["id"]}
        return columns, row, envelope

    def verify(self, session, handoff_id: str | None = None) -> dict:
        """Check the hash chains (one handoff, or all): {handoffs, steps, problems}."""
        query = select(self.steps).order_by(self.steps.c.handoff_id, self.steps.c.step)
        if handoff_id:
            query = query.where(self.steps.c.handoff_id == handoff_id)
        by_handoff: dict[str, list[dict]] = {}
        for row in session.execute(query).mappings():
            by_handoff.setdefault(row["handoff_id"], []).append(dict(row))
        problems = {h: p for h, steps in by_handoff.items() if (p := audit.verify(steps))}
        heads = {h: steps[-1]["hash"] for h, steps in by_handoff.items()}
        return {"handoffs": len(by_handoff), "steps": sum(map(len, by_handoff.values())),
                "problems": problems, "heads": heads if handoff_id else {}}

    def timeline(self, session, handoff_id: str) -> list[dict]:
        rows = session.execute(select(self.steps).where(self.steps.c.handoff_id == handoff_id)
                               .order_by(self.steps.c.step)).mappings().all()
        return [{**dict(r), "at": utc(r["at"]).isoformat() if r["at"] else None}
                for r in rows]

    def search(self, session, *, state=None, county=None, kind=None, limit=100,
               offset=0) -> list[dict]:
        query = select(self.handoffs.c.doc).order_by(self.handoffs.c.updated_at.desc(),
                                                     self.handoffs.c.id)
        if kind:
            query = query.where(self.handoffs.c.kind == kind)
        if state:
            query = query.where(self.handoffs.c.state == state)
        if county:
            query = query.where(self.handoffs.c.county == county)
        return [r.doc for r in session.execute(query.limit(limit).offset(offset))]


LIST_CHUNK = 500   # rows read per round while a list page fills with visible ones
RECOMPUTE_CHUNK = 100   # handoffs whose deadlines are recomputed in one transaction


def _now() -> datetime:
    return calendar.now()


def step_time(at, after: str | None = None) -> datetime:
    """When a step happens: now, or -- only when ``LIANDONG_ENV=development`` (the demo,
    drills) -- the past time ``at`` (ISO 8601 with offset), so that a demo walks through
    the real code path with realistic hours between steps. Production refuses ``at``.
    A backdated step may not be in the future; one that falls before the handoff's
    previous step (the command service's sweep escalated meanwhile) follows it."""
    now = _now()
    if at is None:
        return now
    if tokenkeys.mode() != tokenkeys.DEVELOPMENT:
        raise NotAllowed("a backdated step ('at') is accepted only in development",
                         {"at": ["only with LIANDONG_ENV=development"]})
    try:
        when = datetime.fromisoformat(str(at))
    except ValueError:
        raise InvalidInput("'at' is not an ISO 8601 time", {"at": ["ISO 8601"]}) from None
    if when.tzinfo is None:
        raise InvalidInput("'at' needs a UTC offset", {"at": ["e.g. +08:00"]})
    if when > now:
        raise InvalidInput("'at' is in the future", {"at": ["must be in the past"]})
    if after and when < datetime.fromisoformat(after):
        when = datetime.fromisoformat(after)
    return when.astimezone(timezone.utc)


def public(rec: dict) -> dict:
    """A record as callers see it (internal clocks left out)."""
    return {k: v for k, v in rec.items() if k != "clocks"}


class HandoffService:
    """RPC adapter shared by the handoff services. Subclasses set ``name``,
    ``domain`` (a HandoffDomain), ``handoffs`` (a HandoffStore) and the dependencies
    ``db = Database(handoffs.store)`` and ``relay = OutboxRelay(handoffs.store)``."""

    name: str
    domain: HandoffDomain
    handoffs: HandoffStore

    def _visible(self, actor, rec):
        if not self.domain.can_view(actor, rec):
            raise NotAllowed(f"you may not see {self.domain.KIND} {rec['id']}",
                             {"id": ["forbidden"]})

    def _may_see_files(self, actor, rec) -> bool:
        """The case file's read rule: the domain's ``can_view_files`` where it has one
        (a forwarded criminal referral's files go with it), else the handoff's."""
        return getattr(self.domain, "can_view_files", self.domain.can_view)(actor, rec)

    def _shown(self, actor, rec) -> dict:
        """A record as ``actor`` sees it: without the case file's records where the
        files are not theirs to see (the timeline keeps what happened)."""
        out = public(rec)
        if out.get("files") and not self._may_see_files(actor, rec):
            out["files"] = []
        return out

    def _files_visible(self, actor, rec):
        if not self._may_see_files(actor, rec):
            raise NotAllowed(f"you may not see the case file of {self.domain.KIND} "
                             f"{rec['id']}", {"id": ["forbidden"]})

    def _once(self, actor, key, request: tuple, work):
        """Run ``work(session)`` in one transaction; with an idempotency key, at most
        once per (caller, key): a retry gets the first result (see shared.idempotency)."""
        key = idem.check_key(key)
        if key is None:
            with self.db.transaction() as s:
                result = work(s)
        else:
            digest = idem.fingerprint(self.name, *request)

            def recall():
                with self.db.session() as s:
                    return idem.recall(s, self.handoffs.keys, actor.user_id, key, digest)
            if (found := recall()) is not None:
                return found
            try:
                with self.db.transaction() as s:
                    result = work(s)
                    idem.remember(s, self.handoffs.keys, actor.user_id, key, digest, result)
            except (IntegrityError, InvalidTransition):
                # a concurrent attempt with the same key won: answer with its result
                if (found := recall()) is None:
                    raise
                return found
        faults.point("crash_before_reply", key=key)
        return result

    @rpc
    def create(self, token, command, payload, idempotency_key=None, at=None):
        """Open a handoff. Send an ``idempotency_key`` (e.g. a UUID per attempt) and
        retry with the same key when the reply is lost: the handoff is created once.
        ``at``: a past time for the step, development only (``step_time``)."""
        actor = verify_token(token)
        when = step_time(at)

        def work(s):
            rec, step = self.domain.create(command, actor, payload, when)
            self.handoffs.save(s, rec, step, self.domain.event_payload(rec, step), 0)
            return public(rec)
        return self._once(actor, idempotency_key, ("create", command, payload), work)

    @rpc
    def act(self, token, handoff_id, command, payload=None, idempotency_key=None, at=None):
        actor = verify_token(token)
        if at is not None:
            step_time(at)      # refused outside development before anything is read

        def work(s):
            rec = self.handoffs.load(s, handoff_id, for_update=self.db.is_postgres)
            self._visible(actor, rec)
            when = step_time(at, rec.get("updated_at"))
            new, step = self.domain.act(rec, command, actor, payload or {}, when)
            self.handoffs.save(s, new, step, self.domain.event_payload(new, step), rec["step"])
            return public(new)
        return self._once(actor, idempotency_key,
                          ("act", handoff_id, command, payload or {}),
                          work)

    @rpc
    def get(self, token, handoff_id):
        actor = verify_token(token)
        with self.db.session() as s:
            rec = self.handoffs.load(s, handoff_id)
            self._visible(actor, rec)
            allowed = [t.command for t in self.domain.procedure().allowed(rec["state"],
                                                                          actor.role)]
            may_act = getattr(self.domain, "may_act", None)   # which party acts, if the
            if may_act is not None:                            # role alone does not say
                allowed = [c for c in allowed if may_act(actor, rec, c)]
            return {**self._shown(actor, rec), "timeline": self.handoffs.timeline(s, handoff_id),
                    "next_actions": allowed}

    @rpc
    def list(self, token, state=None, county=None, limit=100, offset=0, kind=None):
        """The most recently updated handoffs the caller may see: ``limit`` of them
        after skipping ``offset`` (both counted in visible handoffs, so a page is
        full whenever there is more to see)."""
        actor = verify_token(token)
        limit = bounded(limit, "limit", 1, 1000)
        skip = bounded(offset, "offset", 0, 10**7)
        out: list[dict] = []
        scanned = 0
        with self.db.session() as s:
            while len(out) < limit:
                found = self.handoffs.search(s, state=state, county=county, kind=kind,
                                             limit=LIST_CHUNK, offset=scanned)
                scanned += len(found)
                for rec in found:
                    if not self.domain.can_view(actor, rec):
                        continue
                    if skip:
                        skip -= 1
                    elif len(out) < limit:
                        out.append(self._shown(actor, rec))
                if len(found) < LIST_CHUNK:
                    break
        return out

    # ------------------------------------------------------------------ case file
    def _kind(self, rec) -> str:
        return rec.get("kind") or self.domain.KIND

    @rpc
    def check_attach(self, token, handoff_id, doc_kind):
        """Whether the caller may add a ``doc_kind`` file now (the gateway asks before
        it stores the bytes); raises the same errors ``attach_file`` would."""
        actor = verify_token(token)
        with self.db.session() as s:
            rec = self.handoffs.load(s, handoff_id)
            self._files_visible(actor, rec)
            return casefile.check_upload(self._kind(rec), rec, actor, doc_kind)

    @rpc
    def attach_file(self, token, handoff_id, document, idempotency_key=None, at=None):
        """Record a stored file (its blob already written, by SHA-256) in the handoff's
        case file: a step with who, when, size, media type and SHA-256, whose event
        carries the document's record, never the bytes. Returns the document record.
        ``at`` backdates the step in development only (the demo), as ``act``'s."""
        actor = verify_token(token)
        if at is not None:
            step_time(at)      # refused outside development before anything is read
        from marshmallow import ValidationError
        try:
            document = casefile.FileAttachedSchema().load(document or {})
        except ValidationError as exc:
            raise InvalidInput("bad document record", exc.messages) from None

        def work(s):
            rec = self.handoffs.load(s, handoff_id, for_update=self.db.is_postgres)
            self._files_visible(actor, rec)
            when = step_time(at, rec.get("updated_at"))
            new, step = casefile.attach(self._kind(rec), rec, actor, document, when)
            self.handoffs.save(s, new, step, self.domain.event_payload(new, step), rec["step"])
            return casefile.find(new, document["document_id"])
        return self._once(actor, idempotency_key, ("attach_file", handoff_id, document), work)

    @rpc
    def documents(self, token, handoff_id):
        """The case file of a handoff the caller may see: its document records."""
        actor = verify_token(token)
        with self.db.session() as s:
            rec = self.handoffs.load(s, handoff_id)
            self._files_visible(actor, rec)
            return {"kind": self._kind(rec), "state": rec["state"],
                    "case_number": rec["case_number"], "files": rec.get("files", [])}

    @rpc
    def document(self, token, handoff_id, document_id):
        """One document record, if the caller may see the handoff (download check)."""
        actor = verify_token(token)
        with self.db.session() as s:
            rec = self.handoffs.load(s, handoff_id)
            self._files_visible(actor, rec)
        found = casefile.find(rec, document_id)
        if found is None:
            raise NotFound(f"no document {document_id} in {handoff_id}",
                           {"document_id": ["not found"]})
        return {**found, "handoff_kind": self._kind(rec), "case_number": rec["case_number"]}

    @rpc
    def form_record(self, token, handoff_id):
        """The whole record (with the parties) for rendering an official form, if the
        caller may see it."""
        actor = verify_token(token)
        with self.db.session() as s:
            rec = self.handoffs.load(s, handoff_id)
            self._files_visible(actor, rec)
            return public(rec)

    @rpc
    def procedure(self):
        """The transition table, deadlines and states as data (console, docs)."""
        proc = self.domain.procedure()
        return {"table": proc.table(), "deadlines": proc.deadlines, "states": proc.states,
                "documents": proc.doc.get("documents", []),
                "case_file": casefile.describe(proc.kind)}

    @rpc
    def verify_audit(self, token, handoff_id=None):
        """Check the tamper-evident hash chain of one handoff's steps (or all)."""
        actor = verify_token(token)
        with self.db.session() as s:
            if handoff_id:
                self._visible(actor, self.handoffs.load(s, handoff_id))
            else:
                require_role(actor, {"operator", "coordinator", "procuratorate"},
                             "verify every audit trail")
            return self.handoffs.verify(s, handoff_id)

    @rpc
    def export_events(self, token, after_id=0, limit=500, raw=False):
        """This service's event history (its outbox), for rebuilding read models
        (``raw``: each envelope as its JSON text, ``{"id", "body"}``)."""
        require_role(verify_token(token), {"operator", "system"}, "export events")
        return export(self.db, int(after_id), min(int(limit), 2000), bool(raw))

    @rpc
    def recompute_deadlines(self, token, reason=None):
        """Recompute every running deadline under the calendar in force (after an
        official holiday notice was added: ``liandong calendar apply``). A handoff whose
        deadline moves gets a ``<kind>.deadline_recomputed.v1`` step saying why; the
        others are left alone. Returns what moved."""
        actor = verify_token(token)
        require_role(actor, {"operator", "system"}, "recompute deadlines")
        calendar.clear_caches()
        reason = str(reason or "the holiday calendar in force changed")[:500]
        with self.db.session() as s:
            ids = [r.id for r in s.execute(
                select(self.handoffs.handoffs.c.id, self.handoffs.handoffs.c.doc)
                .order_by(self.handoffs.handoffs.c.id)).yield_per(500)
                if (r.doc or {}).get("clocks")]
        moved: list[dict] = []
        for start in range(0, len(ids), RECOMPUTE_CHUNK):
            chunk = ids[start:start + RECOMPUTE_CHUNK]
            try:
                with self.db.transaction() as s:
                    found = [m for h in chunk if (m := self._recompute(s, h, actor, reason))]
            except InvalidTransition:
                # a user acted on one of them meanwhile: one transaction each, so only
                # that one is retried on its new step
                found = []
                for handoff_id in chunk:
                    with self.db.transaction() as s:
                        if m := self._recompute(s, handoff_id, actor, reason):
                            found.append(m)
            moved += found
        return {"service": self.name, "checked": len(ids), "moved": moved,
                "calendar": [calendar.year_calendar(y).describe()
                             for y in sorted({calendar.to_local(_now()).year + i
                                              for i in (0, 1)})]}

    def _recompute(self, s, handoff_id, actor, reason) -> dict | None:
        rec = self.handoffs.load(s, handoff_id, for_update=self.db.is_postgres)
        found = recompute_clocks(rec, rec["kind"], actor, _now(), reason)
        if found is None:
            return None
        new, step = found
        self.handoffs.save(s, new, step, self.domain.event_payload(new, step), rec["step"])
        return {"id": handoff_id, "case_number": rec["case_number"],
                "changes": step["details"]["changes"]}

    @rpc
    def health(self):
        """Liveness for compose and ``make run``: answers once consumers and DB are up."""
        return {"service": self.name, "outbox": backlog(self.db),
                "revocations": revocation_status(self)}

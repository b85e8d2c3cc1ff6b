"""Revoked tokens, known to every service: the one mechanism (issue 15).

The gateway owns revocations (its ``token_revocations`` table): ``POST /api/v1/logout``
revokes one token (its ``jti``), ``liandong users revoke|disable|passwd USER`` every
token of a user issued until then (``sub`` + ``not_before``). Each revocation is
committed with a ``token.revoked.v1`` event in the gateway's outbox.

A service joins with ONE line in its nameko class::

    revocations = Revocations()

which, in each process (every replica):

1. binds its own queue ``revocations.<service>.<id>`` (exclusive, deleted with the
   connection) to ``token.revoked.v1`` on ``liandong.events`` — from then on every new
   revocation reaches this replica;
2. then asks the gateway for every revocation still in force (RPC
   ``gateway.revocations``) — what was revoked before the queue existed;
3. only then counts as *current*, and applies each event as it comes (the envelope's
   Ed25519 signature is checked: only the gateway can revoke).

**Fail closed.** While a process is not current — before step 2 succeeded, or after its
connection to the broker dropped (it may have missed an event) until steps 1–2 succeed
again — ``verify_token`` waits up to ``LIANDONG_REVOCATION_WAIT`` (default 5 s) for it to
become current and otherwise refuses the token with 503 ``unavailable``: a service that
cannot know whether a token is revoked does not accept it. Entries are dropped once the
tokens they revoke have expired anyway (``not_before`` + the token lifetime).
"""
from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timezone

import structlog
from kombu import Connection, Consumer, Queue
from marshmallow import Schema, fields, validate
from nameko.extensions import DependencyProvider

from shared import auth, signing
from shared import envelope as env
from shared.errors import Unavailable

log = structlog.get_logger(__name__)

EVENT = "token.revoked.v1"
SOURCE = "/wenzhou/transport/gateway"


class TokenRevokedSchema(Schema):
    """``token.revoked.v1``: one token (``jti``) or every token of ``sub`` issued before
    ``not_before`` is refused from now on; ``expires`` is when the entry can be forgotten."""
    jti = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    sub = fields.String(required=True, validate=validate.Length(min=1, max=200))
    not_before = fields.Integer(load_default=None, allow_none=True,
                                metadata={"description": "epoch seconds: tokens of sub with "
                                                         "iat before this are revoked"})
    expires = fields.Integer(required=True, metadata={"description": "epoch seconds"})
    reason = fields.String(required=True, validate=validate.Length(max=200))
    by = fields.String(required=True, validate=validate.Length(max=200))


def envelope(entry: dict) -> dict:
    """The ``token.revoked.v1`` envelope of a revocation entry (the gateway stages it)."""
    return env.make_envelope(event_type=EVENT, source=SOURCE,
                             subject=f"revocation:{uuid.uuid4().hex}", data=entry,
                             sequence=1)


class RevocationList:
    """Revoked jtis and users, in memory; ``revoked(claims)`` is the check."""

    def __init__(self):
        self.jtis: dict[str, int] = {}          # jti -> when the entry may go
        self.users: dict[str, tuple[int, int]] = {}   # sub -> (not_before, expires)

    def add(self, entry: dict) -> None:
        if entry.get("jti"):
            self.jtis[entry["jti"]] = int(entry["expires"])
        if entry.get("not_before") is not None:
            nb, exp = int(entry["not_before"]), int(entry["expires"])
            old = self.users.get(entry["sub"])
            self.users[entry["sub"]] = (max(nb, old[0]), max(exp, old[1])) if old else (nb, exp)

    def replace(self, entries: list[dict]) -> None:
        fresh = RevocationList()
        for entry in entries:
            fresh.add(entry)
        self.jtis, self.users = fresh.jtis, fresh.users

    def prune(self, now: float | None = None) -> None:
        now = now or time.time()
        self.jtis = {j: e for j, e in self.jtis.items() if e > now}
        self.users = {u: v for u, v in self.users.items() if v[1] > now}

    def revoked(self, claims: dict) -> bool:
        if claims.get("jti") in self.jtis:
            return True
        user = self.users.get(claims.get("sub"))
        return bool(user and int(claims.get("iat", 0)) < user[0])


def wait_seconds() -> float:
    return float(os.environ.get("LIANDONG_REVOCATION_WAIT", "5"))


def revocation_status(service) -> dict:
    """A service's revocation status for its ``health`` (or that it has not joined)."""
    joined = getattr(service, "revocations", None)
    return joined.status() if joined is not None else {"current": None,
                                                       "joined": False}


class Revocations(DependencyProvider):
    """``revocations = Revocations()``: this process refuses revoked tokens and fails
    closed while it cannot be sure of the list (module docstring)."""

    RETRY_SECONDS = 1.0

    def __init__(self):
        self.list = RevocationList()
        self.current = False
        self.since = None          # when it last became current
        self._running = False

    def setup(self):
        auth.set_revocation_check(self.check)

    def start(self):
        self._running = True
        self.container.spawn_managed_thread(self._run, identifier="revocations")

    def stop(self):
        self._running = False

    def kill(self):
        self._running = False

    def get_dependency(self, worker_ctx):
        return self

    def status(self) -> dict:
        """For health: current or not, since when, how many entries."""
        return {"current": self.current, "since": self.since,
                "revoked_tokens": len(self.list.jtis), "revoked_users": len(self.list.users)}

    # --------------------------------------------------------------- the check
    def check(self, claims: dict) -> bool:
        if not self.current:
            import eventlet
            deadline = time.monotonic() + wait_seconds()
            while not self.current and time.monotonic() < deadline:
                eventlet.sleep(0.1)
            if not self.current:
                raise Unavailable(
                    f"{self.container.service_name} cannot confirm that the token is not "
                    f"revoked (its revocation list is not current): try again shortly",
                    {"Authorization": ["revocation list not current"]})
        return self.list.revoked(claims)

    # --------------------------------------------------------------- keeping current
    def _run(self):
        import eventlet
        uri = self.container.config["AMQP_URI"]
        name = f"revocations.{self.container.service_name}.{uuid.uuid4().hex[:12]}"
        said, said_at = None, 0.0
        while self._running:
            try:
                self._follow(uri, name)
            except Exception as exc:  # noqa: BLE001 - any fault: not current, try again
                # said when it stops being current, and while it cannot become current
                # again: each new reason at once, the same one every 30 s
                self.current = False
                error = f"{type(exc).__name__}: {exc}"
                if (error, self.since) != said or time.monotonic() - said_at > 30:
                    log.warning("revocations_not_current", error=error,
                                last_current=self.since)
                    said, said_at = (error, self.since), time.monotonic()
                eventlet.sleep(self.RETRY_SECONDS)

    def _follow(self, uri: str, name: str) -> None:
        from shared.topology import events_exchange
        with Connection(uri, heartbeat=10) as conn:
            queue = Queue(name, exchange=events_exchange, routing_key=EVENT, durable=False,
                          exclusive=True, auto_delete=True)
            with Consumer(conn, queues=[queue], on_message=self._on_message, accept=None):
                self.list.replace(self._fetch(uri))         # step 2, after the bind
                self.current = True
                self.since = datetime.now(timezone.utc).isoformat()
                log.info("revocations_current", users=len(self.list.users),
                         tokens=len(self.list.jtis))
                last_prune = time.monotonic()
                try:
                    while self._running:
                        try:
                            conn.drain_events(timeout=1)
                        except TimeoutError:
                            conn.heartbeat_check()
                        if time.monotonic() - last_prune > 60:
                            self.list.prune()
                            last_prune = time.monotonic()
                finally:
                    self.current = False    # at once, not after closing the connection

    def _fetch(self, uri: str) -> list[dict]:
        from nameko.standalone.rpc import ClusterRpcProxy
        with ClusterRpcProxy({"AMQP_URI": uri}, timeout=10) as rpc:
            return rpc.gateway.revocations()

    def _on_message(self, message):
        try:
            envelope = env.decode(message.body, verify=signing.verify)
            if envelope["type"] != EVENT:
                raise env.EnvelopeError({"type": [f"expected {EVENT}"]})
            entry = TokenRevokedSchema().load(envelope["data"])
        except Exception as exc:  # noqa: BLE001 - a forged or broken message is ignored
            log.warning("revocation_event_refused", error=f"{type(exc).__name__}: {exc}")
        else:
            self.list.add(entry)
            log.info("token_revoked", sub=entry["sub"], jti=entry.get("jti"))
        message.ack()

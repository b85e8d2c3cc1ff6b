"""nameko adapter of the criminal referral (行刑衔接) service: verify the caller's
token, run the domain, persist the record + step + event in one transaction (the
outbox relay publishes it). RPC is used by the gateway and the CLI."""
from __future__ import annotations

from datetime import datetime, timezone

from services.police_handoff import domain
from services.police_handoff import store as st
from shared.auth import verify_token
from shared.errors import NotAllowed
from shared.logging import configure_logging
from shared.messaging import backlog
from shared.nameko_ext import Database, OutboxRelay, rpc

configure_logging("police_handoff")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _public(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k != "clocks"}


class PoliceHandoffService:
    name = "police_handoff"

    db = Database(st.store)
    relay = OutboxRelay(st.store)

    @rpc
    def create(self, token, command, payload):
        """``command`` is ``draft`` (enforcement unit) or ``open_reverse_transfer`` (police)."""
        actor = verify_token(token)
        rec, step = domain.create(command, actor, payload, _now())
        with self.db.transaction() as s:
            st.save(s, rec, step, domain.event_payload(rec, step), previous_step=0)
        return _public(rec)

    @rpc
    def act(self, token, referral_id, command, payload=None):
        actor = verify_token(token)
        with self.db.transaction() as s:
            rec = st.load(s, referral_id, for_update=self.db.is_postgres)
            if not domain.can_view(actor, rec):
                raise NotAllowed("you may not see this referral", {"referral_id": ["forbidden"]})
            previous = rec["step"]
            new, step = domain.act(rec, command, actor, payload or {}, _now())
            st.save(s, new, step, domain.event_payload(new, step), previous_step=previous)
        return _public(new)

    @rpc
    def get(self, token, referral_id):
        actor = verify_token(token)
        with self.db.session() as s:
            rec = st.load(s, referral_id)
            if not domain.can_view(actor, rec):
                raise NotAllowed("you may not see this referral", {"referral_id": ["forbidden"]})
            allowed = [t.command for t in domain.procedure().allowed(rec["state"], actor.role)]
            return {**_public(rec), "timeline": st.timeline(s, referral_id),
                    "next_actions": allowed}

    @rpc
    def list(self, token, state=None, county=None, limit=100, offset=0):
        actor = verify_token(token)
        with self.db.session() as s:
            found = st.search(s, state=state, county=county, limit=min(int(limit), 1000),
                              offset=int(offset))
        return [_public(r) for r in found if domain.can_view(actor, r)]

    @rpc
    def evaluate(self, token, facts):
        """Judgment standards on a case's facts: recommendations naming rule and basis."""
        verify_token(token)
        return domain.recommend(facts)

    @rpc
    def procedure(self):
        """The transition table and deadlines as data (for the console and docs)."""
        proc = domain.procedure()
        return {"table": proc.table(), "deadlines": proc.deadlines,
                "documents": proc.doc["documents"], "states": proc.states}

    @rpc
    def health(self):
        """Liveness for compose and ``make run``: answers once consumers and DB are up."""
        return {"service": self.name, "outbox": backlog(self.db)}

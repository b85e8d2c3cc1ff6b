"""nameko adapter of the tracker: consumes every handoff event (inbox-deduplicated,
order-checked by sequence) into its read model and answers status queries."""
from __future__ import annotations

from services.tracker import store as st
from shared.auth import verify_token
from shared.errors import NotFound
from shared.logging import configure_logging
from shared.messaging import backlog, claim
from shared.nameko_ext import Database, on_event, rpc

CONSUMER = "tracker.events"

configure_logging("tracker")


class TrackerService:
    name = "tracker"

    db = Database(st.store)

    @on_event(CONSUMER)
    def on_event(self, envelope):
        with self.db.transaction() as s:
            if not claim(s, st.metadata, CONSUMER, envelope):
                return "duplicate"
            return st.apply(s, envelope)

    @rpc
    def handoff(self, token, handoff_id):
        verify_token(token)
        with self.db.session() as s:
            found = st.get(s, handoff_id)
        if found is None:
            raise NotFound(f"no handoff {handoff_id}", {"handoff_id": ["not found"]})
        return found

    @rpc
    def health(self):
        """Liveness for compose and ``make run``: answers once consumers and DB are up."""
        return {"service": self.name, "outbox": backlog(self.db)}

"""The outbox relay alone: how fast a backlog of outbox rows reaches the broker,
confirmed and marked sent — ``shared.messaging.Relay`` (a batch published, then one
wait for all its confirms) against the row-by-row confirmed publish it replaced
(kept here only as the reference: one broker round trip per row).

Both run standalone (as ``liandong relay``) against the police_handoff outbox in a
throwaway PostgreSQL database and vhost; the backlog is real envelopes staged with
``shared.messaging.stage`` in transactions of 500."""
from __future__ import annotations

import time
import uuid

from bench import common, sample


def _per_message_relay_class():
    from kombu import Connection, Producer
    from sqlalchemy import select, update

    from shared import envelope as env
    from shared.messaging import Relay, messaging_tables, utcnow

    class PerMessageRelay(Relay):
        """The previous relay_once: kombu ``confirm_publish``, a round trip per row."""

        def relay_once(self) -> int:
            outbox = messaging_tables(self.store.metadata)["outbox"]
            query = (select(outbox.c.id, outbox.c.event_id, outbox.c.routing_key,
                            outbox.c.body).where(outbox.c.sent_at.is_(None))
                     .order_by(outbox.c.id).limit(self.batch).with_for_update(skip_locked=True))
            with self.store.transaction() as s:
                rows = s.execute(query).all()
                if not rows:
                    return 0
                if getattr(self, "_kombu", None) is None:
                    conn = Connection(self.amqp_uri, heartbeat=0,
                                      transport_options={"confirm_publish": True})
                    conn.ensure_connection(max_retries=3)
                    self._kombu = (conn, Producer(conn.channel()))
                producer = self._kombu[1]
                for row in rows:
                    producer.publish(
                        row.body.encode("utf-8"), exchange=env.EXCHANGE,
                        routing_key=row.routing_key,
                        content_type="application/cloudevents+json",
                        content_encoding="utf-8", delivery_mode=2, message_id=row.event_id,
                        retry=False)
                s.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                          .values(sent_at=utcnow()))
            return len(rows)

        def close(self) -> None:
            if getattr(self, "_kombu", None):
                self._kombu[0].release()
                self._kombu = None
            super().close()

    return PerMessageRelay


def run(events: int) -> list[dict]:
    from kombu import Connection
    from sqlalchemy import update

    from shared.handoffs import HandoffStore
    from shared.messaging import Relay, messaging_tables, stage
    from shared.topology import declare
    rid = common.run_id()
    prefix = f"lbench_{rid}_"
    out = []
    with common.vhost(f"liandong-bench-r-{rid}") as uri, common.pg_databases(prefix) as base:
        store = HandoffStore("police_handoff", "/bench", f"{base}relay")
        outbox = messaging_tables(store.metadata)["outbox"]
        template = sample.envelope()
        for start in range(0, events, 500):
            with store.store.transaction() as s:
                for _ in range(min(500, events - start)):
                    stage(s, store.metadata, {**template, "id": str(uuid.uuid4())})
        for name, cls in (("row by row (previous)", _per_message_relay_class()),
                          ("batched confirms", Relay)):
            with store.store.transaction() as s:
                s.execute(update(outbox).values(sent_at=None))
            with Connection(uri) as conn:
                declare(conn)
                conn.default_channel.queue_purge("tracker.events")
            relay = cls(store.store, uri)
            started = time.perf_counter()    # includes connecting: ~10 ms
            sent = relay.drain()
            seconds = time.perf_counter() - started
            relay.close()
            with Connection(uri) as conn:
                queued = conn.default_channel.queue_declare(
                    "tracker.events", passive=True).message_count
            common.log(f"relay {name}: {sent} in {seconds:.2f}s")
            out.append({"name": f"relay only: {name}", "events": sent, "seconds": seconds,
                        "rate": sent / seconds, "queued": queued})
        store.store.dispose()
    return out

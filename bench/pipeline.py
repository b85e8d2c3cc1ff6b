"""Scenario (c), Liandong's own path, with the production code of each step:

* ``PoliceHandoffRequests`` is the police_handoff service's ``create`` RPC body
  (``HandoffService.create``: token check, the domain's validation and judgment
  standards, one transaction writing the referral, its step and the outbox row) with
  the real ``Database`` and ``OutboxRelay`` dependencies — the relay is woken after
  every worker and publishes with confirms. Only the RPC transport in front of it is
  replaced by the pump (requests arrive as nameko workers, ``max_workers`` at once).
* ``TrackerConsumer`` is the tracker's ``on_events`` (``@on_events`` entrypoint: decode,
  signature and payload schema per message, then the batch that gathered meanwhile —
  inbox claim + read model in one transaction — ack after commit) with the tracker's
  own relay beside it, as in the service. The recorder notes the time after the commit.

Latency is the envelope's ``time`` (taken when the request starts) to the tracker's
commit of that event.
"""
from __future__ import annotations

import time
from datetime import datetime

from bench import sample
from bench.harness import RECORDER, pump
from services.police_handoff import domain as police_domain
from services.police_handoff.store import handoffs as police_handoffs
from services.tracker import store as tracker_store
from services.tracker.service import BATCH, CONSUMER, TrackerService
from shared.handoffs import HandoffService
from shared.nameko_ext import Database, OutboxRelay, on_events


class PoliceHandoffRequests:
    name = "police_handoff"
    domain = police_domain
    handoffs = police_handoffs

    db = Database(police_handoffs.store)
    relay = OutboxRelay(police_handoffs.store)
    _once = HandoffService._once       # the transaction (and idempotency) of every RPC

    @pump
    def request(self, i):
        token, payload = sample.request(i)
        return HandoffService.create(self, token, "draft", payload)


class TrackerConsumer:
    name = "tracker"

    db = Database(tracker_store.store)
    relay = OutboxRelay(tracker_store.store)

    @on_events(CONSUMER, max_batch=BATCH)
    def on_events(self, envelopes):
        started = time.time()
        result = TrackerService.on_events(self, envelopes)   # commits before returning
        committed = time.time()
        for envelope in envelopes:
            RECORDER.record(sample.index_of(envelope["data"]["case_number"]),
                            datetime.fromisoformat(envelope["time"]).timestamp(), committed,
                            started, envelope["id"])
        return result

"""Scenario (c), Liandong's own path, with the production code of each step:

* ``PoliceHandoffRequests`` is the police_handoff service's ``create`` RPC body
  (``HandoffService.create``: token check, the domain's validation and judgment
  standards, one transaction writing the referral, its step and the outbox row) with
  the real ``Database`` and ``OutboxRelay`` dependencies — the relay is woken after
  every worker and publishes with confirms. Only the RPC transport in front of it is
  replaced by the pump (requests arrive as nameko workers, ``max_workers`` at once).
* ``TrackerConsumer`` is the tracker's ``on_event`` (``@on_event`` entrypoint: decode,
  payload schema, then ``claim`` in the inbox + ``apply`` to the read model in one
  transaction, ack after commit) with the tracker's own relay beside it, as in the
  service. The recorder notes the time after the commit.

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
from services.tracker.service import CONSUMER, TrackerService
from shared.handoffs import HandoffService
from shared.nameko_ext import Database, OutboxRelay, on_event


class PoliceHandoffRequests:
    name = "police_handoff"
    domain = police_domain
    handoffs = police_handoffs

    db = Database(police_handoffs.store)
    relay = OutboxRelay(police_handoffs.store)

    @pump
    def request(self, i):
        token, payload = sample.request(i)
        return HandoffService.create(self, token, "draft", payload)


class TrackerConsumer:
    name = "tracker"

    db = Database(tracker_store.store)
    relay = OutboxRelay(tracker_store.store)

    @on_event(CONSUMER)
    def on_event(self, envelope):
        started = time.time()
        result = TrackerService.on_event(self, envelope)   # commits before returning
        RECORDER.record(sample.index_of(envelope["data"]["case_number"]),
                        datetime.fromisoformat(envelope["time"]).timestamp(), time.time(),
                        started, envelope["id"])
        return result

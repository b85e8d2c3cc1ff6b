"""Scenario (b), the naive nameko pipeline: a service that dispatches every event with
nameko's ``EventDispatcher`` (one confirmed publish, i.e. one broker round trip, per
event) and an ``event_handler`` consumer — nameko's defaults (classic durable queue,
persistent messages, prefetch = max_workers), no database on either side. The
payload carries a real referral envelope so messages are the size of (c)'s."""
from __future__ import annotations

import time

from nameko.events import EventDispatcher, event_handler

from bench import sample
from bench.harness import RECORDER, pump

ENVELOPE = sample.envelope()


class NaiveProducer:
    name = "bench_naive"
    dispatch = EventDispatcher()

    @pump
    def request(self, i):
        self.dispatch("handoff", {"i": i, "t": time.time(), "envelope": ENVELOPE})


class NaiveConsumer:
    name = "bench_naive_consumer"

    @event_handler("bench_naive", "handoff")
    def handle(self, payload):
        RECORDER.record(payload["i"], payload["t"], time.time())

"""The batching consumer entrypoint (shared.nameko_ext.BatchEventEntrypoint) as a
state machine, with the container and the queue consumer replaced by recorders: what
gathers while a batch runs forms the next batch, every message is acked only after its
batch succeeded, and a failed batch is retried one message at a time."""
from __future__ import annotations

import pytest

from shared.errors import InvalidInput
from shared.nameko_ext import BatchEventEntrypoint


class Message:
    def __init__(self, n: int):
        self.n = n


class Recorder:
    def __init__(self):
        self.spawned: list[tuple] = []       # (envelope ids, handle_result)
        self.acked: list[int] = []
        self.requeued: list[int] = []
        self.rejected: list[int] = []

    # container
    def spawn_worker(self, entrypoint, args, kwargs, context_data=None, handle_result=None):
        self.spawned.append(([e["id"] for e in args[0]], handle_result))

    # queue consumer
    def ack_message(self, message):
        self.acked.append(message.n)

    def requeue_message(self, message):
        self.requeued.append(message.n)

    def unregister_provider(self, provider):
        self.unregistered = provider


@pytest.fixture()
def ep(monkeypatch):
    rec = Recorder()
    entry = BatchEventEntrypoint("tracker.events", max_batch=3)
    entry.container = rec
    entry.queue_consumer = rec
    entry.rec = rec
    monkeypatch.setattr(entry, "_decoded", lambda m: {"id": m.n, "type": "t"})
    monkeypatch.setattr(entry, "_reject", lambda m, exc, e=None: rec.rejected.append(m.n))
    monkeypatch.setattr("shared.nameko_ext.eventlet.sleep", lambda s: None)
    return entry


def finish(ep, exc: Exception | None = None):
    """Complete the oldest running batch, successfully or with ``exc``."""
    ids, handle_result = ep.rec.spawned.pop(0)
    exc_info = None if exc is None else (type(exc), exc, None)
    handle_result(None, "ok" if exc is None else None, exc_info)
    return ids


def test_quiet_bus_applies_each_event_at_once(ep):
    ep.handle_message(None, Message(1))
    assert [s[0] for s in ep.rec.spawned] == [[1]]
    assert finish(ep) == [1] and ep.rec.acked == [1]
    ep.handle_message(None, Message(2))
    assert finish(ep) == [2] and ep.rec.acked == [1, 2]


def test_what_gathers_meanwhile_is_the_next_batch_capped_at_max_batch(ep):
    for n in range(1, 6):
        ep.handle_message(None, Message(n))
    assert len(ep.rec.spawned) == 1               # one batch in flight at a time
    assert finish(ep) == [1]
    assert ep.rec.acked == [1]
    assert finish(ep) == [2, 3, 4]                # max_batch = 3
    assert ep.rec.acked == [1, 2, 3, 4]
    assert finish(ep) == [5]
    assert ep.rec.acked == [1, 2, 3, 4, 5] and not ep.rec.spawned


def test_nothing_is_acked_before_its_batch_committed(ep):
    for n in range(1, 4):
        ep.handle_message(None, Message(n))
    assert ep.rec.acked == []
    finish(ep)
    assert ep.rec.acked == [1]


def test_failed_batch_is_retried_alone_poison_dead_lettered_rest_applied(ep):
    ep.handle_message(None, Message(1))
    for n in (2, 3, 4):
        ep.handle_message(None, Message(n))
    finish(ep)                                      # [1] ok
    assert finish(ep, RuntimeError("deadlock")) == [2, 3, 4]
    assert ep.rec.acked == [1] and ep.rec.requeued == []
    assert finish(ep) == [2]                        # alone
    assert finish(ep, InvalidInput("bad", {"x": ["y"]})) == [3]
    assert ep.rec.rejected == [3]                   # the poison one, dead-lettered
    assert finish(ep) == [4]
    assert ep.rec.acked == [1, 2, 4] and not ep.rec.spawned


def test_transient_failure_of_a_single_event_is_requeued(ep):
    ep.handle_message(None, Message(7))
    finish(ep, ConnectionError("database down"))
    assert ep.rec.requeued == [7] and ep.rec.acked == []


def test_stopping_drops_what_has_not_started(ep):
    for n in (1, 2, 3):
        ep.handle_message(None, Message(n))
    ep.stop()
    assert ep.rec.unregistered is ep
    finish(ep)
    assert ep.rec.acked == [1] and not ep.rec.spawned   # 2, 3 stay unacked: redelivered

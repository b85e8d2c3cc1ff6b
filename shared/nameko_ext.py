"""Thin nameko adapters over the shared machinery: the database dependency, the
outbox relay running beside each service, and ``on_event`` — the one bus consumer
entrypoint (envelope + payload validation, manual ack after commit, dead-letter
path for what cannot be processed, requeue for transient faults).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import partial

import amqp.exceptions
import eventlet
import kombu.exceptions
import structlog
from kombu import Connection
from kombu.pools import producers
from marshmallow import ValidationError
from nameko.extensions import DependencyProvider, Entrypoint
from nameko.messaging import QueueConsumer
from nameko.rpc import ReplyListener, RpcConsumer, get_rpc_exchange
from nameko.rpc import Rpc as NamekoRpc
from nameko.rpc import RpcProxy as NamekoRpcProxy

from shared import envelope as env
from shared import faults, signing
from shared.errors import Rejected
from shared.events import validate_payload
from shared.messaging import Relay
from shared.topology import DLX, consumer_queue, declare, reply_queue, rpc_queue

log = structlog.get_logger(__name__)

PERMANENT = (Rejected, ValidationError, env.EnvelopeError)
# The broker went away under a worker (restart, node stopped): its ack, requeue or RPC
# reply cannot be sent. nameko 2.14 lets these kill the whole container; here they are
# logged instead and the broker redelivers the unacked message once the consumer has
# reconnected (the inbox makes that a no-op for events).
CONNECTION_LOST = (OSError, amqp.exceptions.ConnectionError,
                   amqp.exceptions.RecoverableConnectionError, kombu.exceptions.OperationalError)


class Database(DependencyProvider):
    """Gives workers the service's ``Store`` (``with self.db.transaction() as s``)."""

    def __init__(self, store):
        self.store = store

    def setup(self):
        self.store.engine  # noqa: B018 - create schema before the first worker

    def stop(self):
        self.store.dispose()

    def get_dependency(self, worker_ctx):
        return self.store


class OutboxRelay(DependencyProvider):
    """Runs the outbox relay in the service process; woken after every worker."""

    def __init__(self, store, batch: int = 500):
        self.store = store
        self.batch = batch
        self._event = eventlet.event.Event()
        self._running = False

    def start(self):
        self._running = True
        relay = Relay(self.store, self.container.config["AMQP_URI"], batch=self.batch)
        self.relay = relay
        self.container.spawn_managed_thread(
            partial(relay.run, stop=lambda: not self._running, wake=self._wait),
            identifier="outbox_relay")

    def _wait(self, timeout):
        with eventlet.Timeout(timeout, False):
            self._event.wait()
        self._event = eventlet.event.Event()

    def wake(self):
        if not self._event.ready():
            self._event.send()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        self.wake()

    def stop(self):
        self._running = False
        self.wake()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self


def dead_letter(amqp_uri: str, message, queue: str, reason: str, error_type: str) -> None:
    """Publish a copy of ``message`` to the dead-letter exchange with the reason,
    confirmed by the broker (the caller acks the original only after this)."""
    headers = dict(message.headers or {})
    headers.update({
        "x-liandong-reason": reason[:2000],
        "x-liandong-error": error_type,
        "x-liandong-queue": queue,
        "x-liandong-routing-key": message.delivery_info.get("routing_key", ""),
        "x-liandong-failed-at": datetime.now(timezone.utc).isoformat(),
    })
    conn = Connection(amqp_uri, transport_options={"confirm_publish": True})
    with producers[conn].acquire(block=True, timeout=10) as producer:
        producer.publish(
            message.body, exchange=DLX,
            routing_key=message.delivery_info.get("routing_key") or queue,
            headers=headers, delivery_mode=2,
            message_id=message.properties.get("message_id"),
            content_type=message.content_type or "application/octet-stream",
            content_encoding=message.content_encoding or "binary",
            retry=True, retry_policy={"max_retries": 3})


class RawQueueConsumer(QueueConsumer):
    """nameko's QueueConsumer, but handing raw messages to the entrypoint: decoding
    is ours, so a body that is not JSON cannot crash the consumer loop."""

    def setup(self):
        super().setup()
        with Connection(self.amqp_uri) as conn:
            declare(conn)

    def get_consumers(self, consumer_cls, channel):
        for provider in self._providers:
            consumer = consumer_cls(queues=[provider.queue], accept=None,
                                    on_message=partial(self.handle_message, provider, None))
            consumer.qos(prefetch_count=max(self.prefetch_count,
                                            getattr(provider, "prefetch", 0)))
            self._consumers[provider] = consumer
        return self._consumers.values()

    def ack_message(self, message):
        try:
            super().ack_message(message)
        except CONNECTION_LOST as exc:
            log.warning("ack_lost_with_connection", error=f"{type(exc).__name__}: {exc}")

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except CONNECTION_LOST as exc:
            log.warning("requeue_lost_with_connection", error=f"{type(exc).__name__}: {exc}")


class EventEntrypoint(Entrypoint):
    """``@on_event("tracker.events")``: the handler gets a validated envelope dict.

    * not an envelope / payload fails its schema / unknown type -> dead-letter, ack
    * handler raises ``Rejected`` or a ValidationError -> dead-letter, ack
    * any other exception (DB down, ...) -> requeue; the quorum queue's delivery
      limit moves a message that keeps failing to the dead-letter queue
    * success -> ack (after the handler's transaction committed)
    """

    queue_consumer = RawQueueConsumer()

    def __init__(self, queue_name: str, **kwargs):
        self.queue_name = queue_name
        self.queue = consumer_queue(queue_name)
        super().__init__(**kwargs)

    def setup(self):
        self.queue_consumer.register_provider(self)

    def stop(self):
        self.queue_consumer.unregister_provider(self)

    @property
    def amqp_uri(self):
        return self.container.config["AMQP_URI"]

    def _decoded(self, message) -> dict | None:
        """The message's envelope, signature-checked and payload-validated; None (and
        the message dead-lettered with the reason) when it is not acceptable."""
        try:
            envelope = env.decode(message.body, verify=signing.verify)
            validate_payload(envelope["type"], envelope["data"])
        except PERMANENT as exc:
            self._reject(message, exc)
            return None
        return envelope

    def handle_message(self, _body, message):
        envelope = self._decoded(message)
        if envelope is None:
            return
        self.container.spawn_worker(
            self, (envelope,), {}, context_data={},
            handle_result=partial(self.handle_result, message, envelope))

    def handle_result(self, message, envelope, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            faults.point("crash_before_ack", event_id=envelope["id"])
            self.queue_consumer.ack_message(message)
        elif isinstance(exc_info[1], PERMANENT):
            self._reject(message, exc_info[1], envelope)
        else:
            log.warning("event_requeued", queue=self.queue_name, event_id=envelope["id"],
                        error=f"{exc_info[0].__name__}: {exc_info[1]}")
            eventlet.sleep(0.2)  # do not spin on a fault that lasts
            self.queue_consumer.requeue_message(message)
        return result, exc_info

    def _reject(self, message, exc, envelope=None):
        reason = str(exc)
        if isinstance(exc, (Rejected, env.EnvelopeError)) and getattr(exc, "errors", None):
            reason = json.dumps({"message": getattr(exc, "message", str(exc)),
                                 "errors": exc.errors}, ensure_ascii=False, default=str)
        try:
            dead_letter(self.amqp_uri, message, self.queue_name, reason, type(exc).__name__)
        except Exception as dl_exc:  # noqa: BLE001 - broker trouble: keep the message
            log.error("dead_letter_failed", queue=self.queue_name, error=str(dl_exc))
            self.queue_consumer.requeue_message(message)
            return
        log.warning("event_dead_lettered", queue=self.queue_name, error=type(exc).__name__,
                    reason=reason, event_id=(envelope or {}).get("id"))
        self.queue_consumer.ack_message(message)


on_event = EventEntrypoint.decorator


class BatchEventEntrypoint(EventEntrypoint):
    """``@on_events("tracker.events", max_batch=200)``: the handler gets a list of
    validated envelopes and must apply them all in one transaction.

    One batch is in flight at a time: while it runs, the next messages (up to the
    prefetch of ``2 * max_batch``) gather, and they form the next batch — so under
    load one commit covers many events and when quiet an event goes alone, at once.
    Every message of a batch is acked after the handler returned (its commit). If a
    batch fails, each of its messages is tried again alone, so one poison event is
    dead-lettered (or one transient fault requeued) without holding up the others.
    """

    def __init__(self, queue_name: str, max_batch: int = 200, **kwargs):
        super().__init__(queue_name, **kwargs)
        self.max_batch = max_batch
        self.prefetch = 2 * max_batch
        self._pending: list[tuple] = []     # (message, envelope), in delivery order
        self._alone: list[tuple] = []       # from a failed batch: one at a time
        self._busy = False
        self._stopping = False

    def stop(self):
        # what has not started stays unacked: the broker delivers it again
        self._stopping = True
        self._pending, self._alone = [], []
        super().stop()

    def handle_message(self, _body, message):
        envelope = self._decoded(message)
        if envelope is None:
            return
        self._pending.append((message, envelope))
        if not self._busy:
            self._next()

    def _next(self):
        if self._stopping:
            self._busy = False
            return
        if self._alone:
            batch = [self._alone.pop(0)]
        else:
            batch, self._pending = (self._pending[:self.max_batch],
                                    self._pending[self.max_batch:])
        if not batch:
            self._busy = False
            return
        self._busy = True
        self.container.spawn_worker(
            self, ([e for _, e in batch],), {}, context_data={},
            handle_result=partial(self.handle_batch_result, batch))

    def handle_batch_result(self, batch, worker_ctx, result=None, exc_info=None):
        try:
            if exc_info is None:
                faults.point("crash_before_ack", event_id=batch[-1][1]["id"])
                for message, _ in batch:
                    self.queue_consumer.ack_message(message)
            elif len(batch) == 1:
                message, envelope = batch[0]
                super().handle_result(message, envelope, worker_ctx, result, exc_info)
            else:
                log.warning("batch_failed_retrying_alone", queue=self.queue_name,
                            size=len(batch), error=f"{exc_info[0].__name__}: {exc_info[1]}")
                self._alone.extend(batch)
        finally:
            self._next()
        return result, exc_info


on_events = BatchEventEntrypoint.decorator


class ResilientRpcConsumer(RpcConsumer):
    """nameko's RpcConsumer, except that

    * its ``rpc-<service>`` queue is a quorum queue (``shared.topology.rpc_queue``), so
      RPC goes on while a cluster node is down. A vhost where the queue exists as a
      classic queue refuses the declaration (PRECONDITION_FAILED; the consumer retries
      every second): ``liandong bus migrate-queues`` converts it (shared/busqueues.py);
    * a reply or ack lost with the broker connection is logged instead of killing the
      container. The request stays unacked, so the broker delivers it again after the
      reconnect (the caller has usually given up).
    """

    def setup(self):
        if self.queue is None:
            self.queue = rpc_queue(self.container.service_name,
                                   get_rpc_exchange(self.container.config))
            self.queue_consumer.register_provider(self)
            self._registered = True

    def handle_result(self, message, result, exc_info):
        try:
            return super().handle_result(message, result, exc_info)
        except CONNECTION_LOST as exc:
            log.warning("rpc_reply_lost_with_connection",
                        method=message.delivery_info.get("routing_key"),
                        error=f"{type(exc).__name__}: {exc}")
            return result, exc_info


class Rpc(NamekoRpc):
    rpc_consumer = ResilientRpcConsumer()


# RPC whose caller-caused errors (Rejected) are logged as expected, without a traceback.
# Every service must take ``rpc`` from here: one RPC consumer class per service.
rpc = Rpc.decorator(expected_exceptions=Rejected)


class ResilientReplyListener(ReplyListener):
    """nameko's ReplyListener with its reply queue replicated (``shared.topology.
    reply_queue``). It shares the process's one nameko consumer (and connection) with
    the ``rpc-<service>`` queue: while nameko's classic reply queue was unavailable (its
    node down) that consumer could not reconnect at all, so a service that calls others
    (the gateway: ``gateway.revocations`` included) answered no RPC until the node was
    back. A reply published while the consumer moves to another node waits in the queue."""

    def setup(self):
        super().setup()
        self.queue = reply_queue(self.queue.name, self.queue.exchange, self.routing_key)


class RpcProxy(NamekoRpcProxy):
    """``RpcProxy("tracker")``: nameko's, over the replicated reply queue. Every service
    takes it from here (tests/unit/test_bususers.py checks)."""

    rpc_reply_listener = ResilientReplyListener()

"""The RabbitMQ topology as data: exchanges, every consumer queue and its bindings,
the dead-letter exchange and queue, and nameko's ``rpc-<service>`` queues. Declared
(idempotently) by every relay and consumer at start, so no event is published before
its queues exist; also read by the AsyncAPI generator.

Every durable queue is a quorum queue (replicated to the cluster's nodes): events and
RPC go on while one node of three is down. Reply queues stay nameko's own (one per
caller, non-durable, expiring): a quorum queue cannot be exclusive or temporary.
"""
from __future__ import annotations

from kombu import Exchange, Queue, binding

from shared.envelope import EXCHANGE

DLX = "liandong.dlx"
DLQ = "liandong.dead_letters"
DELIVERY_LIMIT = 5  # a message redelivered this often goes to the DLQ (quorum queues)
QUORUM = {"x-queue-type": "quorum"}
RPC_QUEUE_TEMPLATE = "rpc-{}"    # nameko.rpc.RPC_QUEUE_TEMPLATE

events_exchange = Exchange(EXCHANGE, type="topic", durable=True)
dead_letter_exchange = Exchange(DLX, type="topic", durable=True)

# queue name -> (owning service, routing-key patterns it binds)
CONSUMER_QUEUES: dict[str, tuple[str, list[str]]] = {
    "tracker.events": ("tracker", ["#"]),
    # criminal referrals decide which penalty decisions are 以罚代刑 candidates
    "supervision.referrals": ("supervision", ["criminal_referral.#"]),
    # deadline alerts, new handoffs, escalations, returns (services/notifications/domain.py
    # picks them; one pattern: kombu keeps bindings in a set, unordered)
    "notifications.events": ("notifications", ["#"]),
}


def consumer_queue(name: str) -> Queue:
    _service, patterns = CONSUMER_QUEUES[name]
    return Queue(
        name, bindings=[binding(events_exchange, routing_key=p) for p in patterns],
        durable=True, auto_delete=False,
        queue_arguments={
            **QUORUM,
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DLX,
        })


def dead_letter_queue() -> Queue:
    return Queue(DLQ, exchange=dead_letter_exchange, routing_key="#", durable=True,
                 auto_delete=False, queue_arguments=dict(QUORUM))


def rpc_queue(service: str, exchange: Exchange) -> Queue:
    """nameko's RPC queue of ``service`` (routing keys ``<service>.*`` on the RPC
    exchange), as a quorum queue. No delivery limit: nameko requeues a request only when
    its container stops, and the request must then reach another replica."""
    return Queue(RPC_QUEUE_TEMPLATE.format(service), exchange=exchange,
                 routing_key=f"{service}.*", durable=True, auto_delete=False,
                 queue_arguments=dict(QUORUM))


def declare(connection) -> None:
    """Declare exchanges, the DLQ and all consumer queues on a kombu connection."""
    channel = connection.default_channel
    events_exchange(channel).declare()
    dead_letter_exchange(channel).declare()
    dead_letter_queue()(channel).declare()
    for name in CONSUMER_QUEUES:
        consumer_queue(name)(channel).declare()

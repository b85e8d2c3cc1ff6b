"""The RabbitMQ topology as data: exchanges, every consumer queue and its bindings,
the dead-letter exchange and queue, and nameko's ``rpc-<service>`` queues. Declared
(idempotently) by every relay and consumer at start, so no event is published before
its queues exist; also read by the AsyncAPI generator.

Every durable queue is a quorum queue (replicated to the cluster's nodes): events and
RPC go on while one node of three is down. That includes the reply queue of each service
process that calls other services (``RpcProxy``: one ``rpc.reply-<service>-<uuid>`` per
process, expiring when unused). Standalone callers (``ClusterRpcProxy``: the CLI, the
health check, the revocation follower) keep nameko's exclusive reply queues, which go
with their connection and are made again on the node it reconnects to.
"""
from __future__ import annotations

from kombu import Exchange, Queue, binding

from shared.envelope import EXCHANGE

DLX = "liandong.dlx"
DLQ = "liandong.dead_letters"
DELIVERY_LIMIT = 5  # a message redelivered this often goes to the DLQ (quorum queues)
QUORUM = {"x-queue-type": "quorum"}
RPC_QUEUE_TEMPLATE = "rpc-{}"    # nameko.rpc.RPC_QUEUE_TEMPLATE
REPLY_QUEUE_EXPIRES_MS = 300_000  # nameko.rpc.RPC_REPLY_QUEUE_TTL: unused for 5 min, gone

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


def reply_queue(name: str, exchange: Exchange, routing_key: str) -> Queue:
    """A service process's RPC reply queue (nameko's ``ReplyListener``), as a quorum
    queue that the broker deletes once unused for 5 minutes. nameko declares it as a
    durable classic queue, which lives on one node: while that node is down, declaring
    it fails ("home node ... is down or inaccessible"), and with it the process's whole
    consumer, its ``rpc-<service>`` queue included, until the node is back."""
    return Queue(name, exchange=exchange, routing_key=routing_key, durable=True,
                 auto_delete=False,
                 queue_arguments={**QUORUM, "x-expires": REPLY_QUEUE_EXPIRES_MS})


def declare(connection) -> None:
    """Declare exchanges, the DLQ and all consumer queues on a kombu connection."""
    channel = connection.default_channel
    events_exchange(channel).declare()
    dead_letter_exchange(channel).declare()
    dead_letter_queue()(channel).declare()
    for name in CONSUMER_QUEUES:
        consumer_queue(name)(channel).declare()

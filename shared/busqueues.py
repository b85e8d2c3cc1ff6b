"""Moves nameko's ``rpc-<service>`` queues of an existing vhost from classic to quorum.

A queue that exists as a classic queue cannot be declared again as a quorum queue (the
broker answers PRECONDITION_FAILED: the new service retries every second, logging it, and
answers no RPC). ``liandong bus
migrate-queues`` (also run by ``liandong run`` before it starts the services) converts
each one safely, over AMQP only:

1. the service must be stopped: a queue with consumers is left alone (reported);
2. requests waiting in it are moved, unchanged, to a temporary durable queue
   ``rpc-<service>.migrating`` (publisher confirms; each is acked from the old queue
   only once the broker confirmed its copy);
3. the classic queue is deleted *if unused and empty* — the broker refuses otherwise, so
   a consumer or a request that came in meanwhile is never lost (the step is retried);
4. the queue is declared again as a quorum queue (``shared.topology.rpc_queue``) and the
   moved requests are published back to it with their own routing key.

Interrupted, it can be run again: requests left in a ``.migrating`` queue are moved back
once the quorum queue exists. Requests sent while the queue is being replaced are
returned to their caller as undeliverable (the service is stopped anyway).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import amqp.exceptions
from kombu import Connection
from nameko.rpc import get_rpc_exchange

from shared.topology import QUORUM, RPC_QUEUE_TEMPLATE, rpc_queue

ROUTING_KEY_HEADER = "x-liandong-routing-key"
MIGRATING_SUFFIX = ".migrating"


class MigrationRefused(RuntimeError):
    pass


@dataclass
class QueueState:
    name: str
    kind: str          # "missing", "classic" or "quorum"
    messages: int = 0
    consumers: int = 0


def _channel(conn: Connection):
    return conn.connection.channel()


def queue_state(conn: Connection, name: str) -> QueueState:
    """What ``name`` is on the broker. The type is found by declaring the queue as a
    quorum queue: an existing classic queue refuses that (406) and is left unchanged."""
    ch = _channel(conn)
    try:
        _, messages, consumers = ch.queue_declare(name, passive=True)
    except amqp.exceptions.NotFound:
        return QueueState(name, "missing")
    with contextlib.suppress(Exception):
        ch.close()
    ch = _channel(conn)
    try:
        ch.queue_declare(name, durable=True, auto_delete=False, arguments=dict(QUORUM))
        kind = "quorum"
    except amqp.exceptions.PreconditionFailed:
        kind = "classic"
    finally:
        with contextlib.suppress(Exception):
            ch.close()
    return QueueState(name, kind, messages, consumers)


def _move(conn: Connection, source: str, exchange: str, routing_key=None) -> int:
    """Move every message of ``source``: to ``exchange`` with its original routing key
    (``routing_key`` None), or with ``routing_key`` (the original kept in a header).
    Each is acked from ``source`` after the broker confirmed its copy."""
    ch = _channel(conn)
    moved = 0
    try:
        ch.confirm_select()
        while (message := ch.basic_get(source, no_ack=False)) is not None:
            headers = dict(message.properties.get("application_headers") or {})
            if routing_key is None:
                key = headers.pop(ROUTING_KEY_HEADER, None) or \
                    message.delivery_info["routing_key"]
            else:
                headers.setdefault(ROUTING_KEY_HEADER, message.delivery_info["routing_key"])
                key = routing_key
            properties = {**message.properties, "application_headers": headers}
            copy = amqp.Message(message.body, **properties)
            ch.basic_publish_confirm(copy, exchange=exchange, routing_key=key,
                                     mandatory=True)
            ch.basic_ack(message.delivery_tag)
            moved += 1
    finally:
        with contextlib.suppress(Exception):
            ch.close()
    return moved


def migrate_queue(conn: Connection, service: str, exchange_name: str = "nameko-rpc",
                  attempts: int = 5) -> str:
    """Make ``rpc-<service>`` a quorum queue; return what was done (one line)."""
    name = RPC_QUEUE_TEMPLATE.format(service)
    parking = name + MIGRATING_SUFFIX
    state = queue_state(conn, name)
    if state.kind == "missing":
        return f"{name}: not declared yet (the service declares it as a quorum queue)"
    moved = 0
    for _ in range(attempts):
        state = queue_state(conn, name)
        if state.kind != "classic":
            break
        if state.consumers:
            raise MigrationRefused(
                f"{name} is a classic queue with {state.consumers} consumer(s): stop every "
                f"replica of {service} first, then run `liandong bus migrate-queues` again")
        ch = _channel(conn)
        # classic and durable: a quorum queue cannot be deleted only-if-empty
        ch.queue_declare(parking, durable=True, auto_delete=False)
        ch.close()
        moved += _move(conn, name, "", routing_key=parking)
        ch = _channel(conn)
        try:
            ch.queue_delete(name, if_unused=True, if_empty=True)
        except amqp.exceptions.PreconditionFailed:
            continue                    # a consumer or a request came in: again
        finally:
            with contextlib.suppress(Exception):
                ch.close()
        break
    else:
        raise MigrationRefused(f"{name}: still in use after {attempts} attempts")
    was_classic = state.kind == "classic"
    with conn.channel() as channel:
        exchange = get_rpc_exchange({"rpc_exchange": exchange_name})
        exchange(channel).declare()
        rpc_queue(service, exchange)(channel).declare()
    back = 0
    if queue_state(conn, parking).kind != "missing":
        back = _move(conn, parking, exchange_name)
        ch = _channel(conn)
        with contextlib.suppress(amqp.exceptions.PreconditionFailed):
            ch.queue_delete(parking, if_empty=True)
        with contextlib.suppress(Exception):
            ch.close()
    if was_classic:
        return f"{name}: classic -> quorum ({moved} waiting request(s) moved, {back} back)"
    if back:
        return f"{name}: quorum; {back} request(s) left by an interrupted migration moved back"
    return f"{name}: quorum already"


def migrate(uri: str, services: list[str], exchange_name: str = "nameko-rpc"
            ) -> tuple[list[str], list[str]]:
    """Migrate every service's RPC queue; return (done lines, refused lines)."""
    done, refused = [], []
    with Connection(uri, connect_timeout=10) as conn:
        conn.ensure_connection(max_retries=3)
        for service in services:
            try:
                done.append(migrate_queue(conn, service, exchange_name))
            except MigrationRefused as exc:
                refused.append(str(exc))
    return done, refused


def status(uri: str, services: list[str]) -> list[QueueState]:
    with Connection(uri, connect_timeout=10) as conn:
        conn.ensure_connection(max_retries=3)
        return [queue_state(conn, RPC_QUEUE_TEMPLATE.format(s)) for s in services]

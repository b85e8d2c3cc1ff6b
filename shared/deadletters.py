"""Operator tools for the dead-letter queue, over raw AMQP with pika: list what is
there with its reason, and replay messages to the queue they failed in."""
from __future__ import annotations

import os
from collections.abc import Callable

import pika

from shared.topology import DLQ

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"


def amqp_uri() -> str:
    return os.environ.get("AMQP_URI", DEFAULT_AMQP_URI)


def _describe(method, props, body: bytes) -> dict:
    headers = props.headers or {}
    deaths = headers.get("x-death") or []
    queue = headers.get("x-liandong-queue") or (deaths[0].get("queue") if deaths else None)
    reason = headers.get("x-liandong-reason") or (
        f"broker: {deaths[0].get('reason')} (count {deaths[0].get('count')})" if deaths else "")
    if isinstance(queue, bytes):
        queue = queue.decode()
    return {
        "queue": queue, "reason": reason, "error": headers.get("x-liandong-error"),
        "routing_key": headers.get("x-liandong-routing-key") or method.routing_key,
        "failed_at": headers.get("x-liandong-failed-at"), "message_id": props.message_id,
        "body": body.decode("utf-8", errors="replace")[:500],
    }


def connection_parameters(uri: str) -> list:
    """pika parameters of an ``AMQP_URI``, which may be kombu's failover list
    ``amqp://a/;amqp://b/``: pika tries them in order, as the services do."""
    return [pika.URLParameters(part.strip()) for part in uri.split(";") if part.strip()]


def _channel(uri: str | None):
    conn = pika.BlockingConnection(connection_parameters(uri or amqp_uri()))
    channel = conn.channel()
    channel.queue_declare(DLQ, passive=True)
    return conn, channel


def list_dead_letters(limit: int = 100, uri: str | None = None) -> list[dict]:
    """Peek at up to ``limit`` dead letters; they stay in the queue."""
    conn, channel = _channel(uri)
    found = []
    try:
        while len(found) < limit:
            method, props, body = channel.basic_get(DLQ, auto_ack=False)
            if method is None:
                break
            found.append(_describe(method, props, body))
    finally:
        conn.close()  # unacked messages go back to the queue
    return found


def replay(uri: str | None = None, match: Callable[[dict], bool] = lambda _d: True,
           limit: int | None = None, progress: Callable[[int], None] | None = None) -> dict:
    """Send matching dead letters back to the queue they failed in (publisher
    confirms), acking each only once confirmed. Returns counts."""
    conn, channel = _channel(uri)
    channel.confirm_delivery()
    replayed = skipped = 0
    unmatched = []
    try:
        total = channel.queue_declare(DLQ, passive=True).method.message_count
        for _ in range(total):
            if limit is not None and replayed >= limit:
                break
            method, props, body = channel.basic_get(DLQ, auto_ack=False)
            if method is None:
                break
            info = _describe(method, props, body)
            if not info["queue"] or not match(info):
                unmatched.append(method.delivery_tag)
                skipped += 1
                continue
            headers = {k: v for k, v in (props.headers or {}).items()
                       if not k.startswith("x-liandong-") and k != "x-death"}
            headers["x-liandong-replayed"] = True
            channel.basic_publish(
                exchange="", routing_key=info["queue"], body=body, mandatory=True,
                properties=pika.BasicProperties(
                    content_type=props.content_type, content_encoding=props.content_encoding,
                    delivery_mode=2, message_id=props.message_id, headers=headers))
            channel.basic_ack(method.delivery_tag)
            replayed += 1
            if progress:
                progress(replayed)
    finally:
        conn.close()  # skipped ones were never acked: they stay in the DLQ
    return {"replayed": replayed, "skipped": skipped}


def purge(uri: str | None = None) -> int:
    conn, channel = _channel(uri)
    try:
        return channel.queue_purge(DLQ).method.message_count
    finally:
        conn.close()

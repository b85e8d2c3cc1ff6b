"""Fault injection for the tests that prove nothing is lost or doubled.

``LIANDONG_FAULT=<point>`` makes the process die like ``kill -9`` (exit status 137, no
cleanup, no flush) when it reaches that point. Unset in production. The points:

* ``crash_before_publish`` — the outbox relay read committed rows, published nothing
* ``crash_after_publish`` — the relay's rows are confirmed by the broker, not yet marked
* ``crash_before_ack`` — a consumer committed an event, the broker has no ack
* ``crash_before_reply`` — an RPC committed its work, the caller has no reply
* ``crash_after_send`` — a notification went out, its delivery is not yet marked sent
"""
from __future__ import annotations

import os

import structlog

log = structlog.get_logger(__name__)

POINTS = ("crash_before_publish", "crash_after_publish", "crash_before_ack",
          "crash_before_reply", "crash_after_send")


def active() -> str:
    return os.environ.get("LIANDONG_FAULT", "")


def point(name: str, **context) -> None:
    """Die here when ``LIANDONG_FAULT`` names this point."""
    assert name in POINTS, name
    if active() == name:
        log.warning("fault_injected", fault=name, **context)
        os._exit(137)

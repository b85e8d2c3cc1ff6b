"""Live updates for the console: a Server-Sent Events stream per signed-in browser.

One watcher per gateway process asks the tracker once a second whether its read model
took in an event (``tracker.changes``: a marker, nothing about any handoff) and, when it
did, tells every open stream ``change``. The console then reloads what it shows through
the ordinary API with its own token, so each user still sees only what the API returns
to them. A stream sends a comment every 15 s to keep proxies from closing it; the
browser reconnects by itself and falls back to polling when the stream is unavailable.
"""
from __future__ import annotations

import json

import eventlet
import structlog
from eventlet.queue import Empty, LightQueue

log = structlog.get_logger(__name__)

INTERVAL = 1.0        # seconds between two looks at the tracker
KEEPALIVE = 15.0      # seconds between comments on a quiet stream


class Watcher:
    """Polls ``fetch()`` (a marker) while anyone listens; pushes changes to listeners."""

    def __init__(self, fetch, interval: float = INTERVAL):
        self.fetch = fetch
        self.interval = interval
        self.listeners: set[LightQueue] = set()
        self.marker = None
        self.thread = None

    def subscribe(self) -> LightQueue:
        queue = LightQueue()
        self.listeners.add(queue)
        if self.thread is None or self.thread.dead:
            self.thread = eventlet.spawn(self._run)
        return queue

    def unsubscribe(self, queue: LightQueue) -> None:
        self.listeners.discard(queue)

    def _run(self) -> None:
        while self.listeners:
            try:
                marker = self.fetch()
            except Exception as exc:  # noqa: BLE001 - the tracker down: try again later
                log.warning("live_fetch_failed", error=f"{type(exc).__name__}: {exc}")
                marker = self.marker
            if marker != self.marker:
                self.marker = marker
                for queue in list(self.listeners):
                    queue.put(marker)
            eventlet.sleep(self.interval)


def stream(watcher: Watcher, keepalive: float = KEEPALIVE):
    """The text/event-stream body of one browser's stream."""
    queue = watcher.subscribe()
    try:
        yield "retry: 2000\n\n"
        yield f"event: ready\ndata: {json.dumps({'marker': watcher.marker})}\n\n"
        while True:
            try:
                marker = queue.get(timeout=keepalive)
            except Empty:
                yield ": keepalive\n\n"
                continue
            yield f"event: change\ndata: {json.dumps({'marker': marker})}\n\n"
    finally:
        watcher.unsubscribe(queue)

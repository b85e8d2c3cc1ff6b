"""The gateway's live updates (services/gateway/live.py): one watcher polls the tracker's
marker while anyone listens and tells every stream when it moves, nothing else."""
from __future__ import annotations

import eventlet

from services.gateway import live


def test_streams_hear_each_change_once_and_the_watcher_stops_when_nobody_listens():
    markers = iter(["a", "a", "b", "b", "b", "c"] + ["c"] * 50)
    calls = []

    def fetch():
        calls.append(1)
        return next(markers)
    watcher = live.Watcher(fetch, interval=0.01)
    one, two = live.stream(watcher, keepalive=0.05), live.stream(watcher, keepalive=0.05)
    assert next(one).startswith("retry:") and next(two).startswith("retry:")
    assert next(one).startswith("event: ready") and next(two).startswith("event: ready")
    seen = [next(one) for _ in range(3)]
    assert [s for s in seen if s.startswith("event: change")] == [
        'event: change\ndata: {"marker": "a"}\n\n', 'event: change\ndata: {"marker": "b"}\n\n',
        'event: change\ndata: {"marker": "c"}\n\n']
    assert next(two).startswith("event: change")
    one.close()
    two.close()
    assert watcher.listeners == set()
    eventlet.sleep(0.05)
    done = len(calls)
    eventlet.sleep(0.05)
    assert len(calls) == done            # nobody listens: the tracker is left alone


def test_a_quiet_stream_keeps_alive_and_a_failing_tracker_is_survived():
    def fetch():
        raise ConnectionError("tracker down")
    watcher = live.Watcher(fetch, interval=0.01)
    stream = live.stream(watcher, keepalive=0.02)
    next(stream), next(stream)
    assert next(stream) == ": keepalive\n\n"
    stream.close()

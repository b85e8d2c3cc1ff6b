"""nameko pieces shared by the worker processes of scenarios (b) and (c).

* ``pump`` — an entrypoint that drives a service method like a stream of requests:
  a warm-up, then the measured phase, either back to back (as many concurrent
  workers as ``max_workers`` allows) or open-loop at a fixed rate. Each call is a real
  nameko worker, so dependencies see ``worker_setup``/``worker_result`` as they do
  for an RPC (the outbox relay is woken after each one).
* ``Recorder`` — the consumer side: when each event was dispatched and when the
  consumer's transaction committed.

Protocol with the orchestrator (files in the run directory): the producer starts
when ``go`` exists (the consumer is up), writes
``done.json`` once its measured phase ended and all its workers returned; the
consumer writes ``consumer.json`` once it has seen every event (or timed out);
the orchestrator writes ``stop`` to end the producer.
"""
from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import eventlet
from nameko.extensions import Entrypoint

from bench.common import paced, say


def plan(container) -> dict:
    return container.config["BENCH"]


class Pump(Entrypoint):
    def start(self):
        self.container.spawn_managed_thread(self._run, identifier="bench.pump")

    def _result(self, counts, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            counts["ok"] += 1
        else:
            counts["failed"] += 1
            counts["error"] = f"{exc_info[0].__name__}: {exc_info[1]}"
        return result, exc_info

    def _phase(self, first: int, *, count=None, seconds=None, rate=0.0) -> dict:
        counts = {"ok": 0, "failed": 0}
        # spawn_worker blocks while max_workers workers are busy (nameko's GreenPool)
        paced_ = paced(first, lambda i: self.container.spawn_worker(
            self, (i,), {}, handle_result=partial(self._result, counts)),
            count=count, seconds=seconds, rate=rate, sleep=eventlet.sleep)
        self.container._worker_pool.waitall()
        return {**counts, **paced_, "t_end": time.time()}

    def _run(self):
        p = plan(self.container)
        while not Path(p["dir"], "go").exists():     # the consumer is listening
            eventlet.sleep(0.02)
        warm = self._phase(0, count=p["warmup"], rate=p["warmup_rate"])
        eventlet.sleep(p["settle"])
        say("MEASURE")
        measured = self._phase(p["warmup"], seconds=p["seconds"], rate=p["rate"])
        done = {"warmup": warm, "measured": measured,
                "expected": warm["ok"] + measured["ok"]}
        Path(p["dir"], "done.json").write_text(json.dumps(done))


pump = Pump.decorator


class Recorder:
    """Consumer-side record: event index -> (dispatched at, committed at, and for the
    stage breakdown: handler started at, event id)."""

    def __init__(self):
        self.seen: dict[int, tuple] = {}
        self.duplicates = 0
        self.finished = eventlet.event.Event()

    def record(self, index: int, dispatched: float, committed: float, *extra) -> None:
        if index in self.seen:
            self.duplicates += 1
        else:
            self.seen[index] = (dispatched, committed, *extra)

    def watch(self, run_dir: str, timeout_after_done: float) -> None:
        """Green thread: once the producer is done, wait for every event, then write
        the results (also when some never arrived: the report says so)."""
        done_path = Path(run_dir, "done.json")
        while not done_path.exists():
            eventlet.sleep(0.05)
        eventlet.sleep(0.05)
        done = json.loads(done_path.read_text())
        deadline = time.time() + timeout_after_done
        while len(self.seen) < done["expected"] and time.time() < deadline:
            eventlet.sleep(0.02)
        Path(run_dir, "consumer.json").write_text(json.dumps({
            "expected": done["expected"], "received": len(self.seen),
            "duplicates": self.duplicates,
            "events": [[i, *rec] for i, rec in self.seen.items()]}))
        self.finished.send(True)


RECORDER = Recorder()

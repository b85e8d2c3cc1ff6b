"""Scenarios (c) and (d) through real service processes, so the bench cannot rot.

``police_handoff`` and ``tracker`` are started exactly as ``liandong run`` and the
end-to-end tests start them (``nameko run services.<name>.service``, by the tests'
``Stack``), in a throwaway vhost and databases. The load is what the gateway sends: the
``police_handoff.create`` RPC (token check, validation, judgment standards, one
transaction writing the referral, its step and the outbox row), from ``--max-workers``
concurrent clients, back to back or open-loop at a rate. Events are counted where they
land: the tracker's inbox. No bench-only class wraps the services' code: a refactor that
breaks the bench breaks the services (and ``make test``, which runs ``--smoke``).

Latency is the envelope's ``time`` (taken in the request) to the tracker's inbox row
(written in the transaction that applies the event), both read from the databases
afterwards; nothing is instrumented.

(d), the fair peer (bench/peer_services.py), runs the same way side by side: the same
client, requests and payloads, its own two processes and databases.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from bench import common, sample
from bench.cpu import CpuMeter

SERVICES = ("police_handoff", "tracker")


def token_keys() -> None:
    """One folder of development token keys for the whole bench run: the client signs
    requests with them (``sample`` caches its tokens) and every service trusts them."""
    os.environ["LIANDONG_ENV"] = "development"
    if not os.environ.get("LIANDONG_TOKEN_KEYS_DIR"):
        os.environ["LIANDONG_TOKEN_KEYS_DIR"] = tempfile.mkdtemp(prefix="liandong-bench-keys-")


class Client:
    """``workers`` threads, each with its own RPC proxy, calling one RPC per index."""

    def __init__(self, amqp_uri: str, workers: int, call):
        self.amqp_uri, self.workers, self.call = amqp_uri, workers, call

    def phase(self, first: int, *, count=None, seconds=None, rate=0.0) -> dict:
        from nameko.standalone.rpc import ClusterRpcProxy
        todo: queue.Queue = queue.Queue(maxsize=self.workers)
        counts = {"ok": 0, "failed": 0, "error": None}
        lock = threading.Lock()

        def work():
            with ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=60) as rpc:
                while (i := todo.get()) is not None:
                    try:
                        self.call(rpc, i)
                        with lock:
                            counts["ok"] += 1
                    except Exception as exc:  # noqa: BLE001 - counted and reported
                        with lock:
                            counts["failed"] += 1
                            counts["error"] = f"{type(exc).__name__}: {exc}"[:300]

        threads = [threading.Thread(target=work, daemon=True) for _ in range(self.workers)]
        for t in threads:
            t.start()
        paced_ = common.paced(first, todo.put, count=count, seconds=seconds, rate=rate)
        for _ in threads:
            todo.put(None)
        for t in threads:
            t.join()
        return {**counts, **paced_, "t_end": time.time()}


def _ts(value) -> float:
    if isinstance(value, str):             # SQLite: text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:               # SQLite: naive UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def _count(store, table) -> int:
    from sqlalchemy import func, select
    return _rows(store, select(func.count()).select_from(table))[0][0]


class Liandong:
    """(c): the services of services/, their outbox, relay and inbox."""
    label = "(c) liandong"
    producer, consumer = "police_handoff", "tracker"
    dead_letters = True                    # failed events go to liandong.dead_letters
    # started first, idle during the run: every service asks the gateway for the token
    # revocations in force and refuses tokens until it has them (shared/revocations.py)
    companions = ("gateway",)

    def command(self, name: str) -> list[str] | None:
        return None                        # services/<name>/service.py, as `liandong run`

    def call(self, rpc, i: int) -> None:
        token, payload = sample.request(i)
        rpc.police_handoff.create(token, "draft", payload)

    def applied(self, stack) -> int:
        from services.tracker import store as tracker_store
        from shared.messaging import messaging_tables
        return _count(stack.store("tracker"), messaging_tables(tracker_store.metadata)["inbox"])

    def committed(self, stack) -> int:
        from services.police_handoff import store as police_store
        return _count(stack.store("police_handoff"), police_store.handoffs.handoffs)

    def timings(self, stack, first: int) -> list[tuple[float, float, float]]:
        """(envelope time, outbox row, tracker inbox row) per measured event."""
        from sqlalchemy import select

        from services.police_handoff import store as police_store
        from services.tracker import store as tracker_store
        from shared.messaging import messaging_tables
        outbox = messaging_tables(police_store.metadata)["outbox"]
        inbox = messaging_tables(tracker_store.metadata)["inbox"]
        applied = {r.event_id: _ts(r.received_at) for r in _rows(
            stack.store("tracker"), select(inbox.c.event_id, inbox.c.received_at))}
        out = []
        for event_id, created, body in _rows(stack.store("police_handoff"), select(
                outbox.c.event_id, outbox.c.created_at, outbox.c.body)):
            envelope = json.loads(body)
            if event_id in applied and \
                    sample.index_of(envelope["data"]["case_number"]) >= first:
                out.append((datetime.fromisoformat(envelope["time"]).timestamp(), _ts(created),
                            applied[event_id]))
        return out


class Peer(Liandong):
    """(d): bench/peer_services.py, RPC + ORM + EventDispatcher, event_handler."""
    label = "(d) peer rpc+orm"
    dead_letters = False                   # nameko's default: no dead-letter path
    companions = ()                        # its services verify tokens, no revocation list

    def __init__(self):
        from bench import peer_services
        self.module = peer_services
        self.producer, self.consumer = peer_services.PRODUCER, peer_services.TRACKER

    def command(self, name: str) -> list[str]:
        from shared.cli import service_command
        cls = "PeerReferrals" if name == self.producer else "PeerTracker"
        return [*service_command(name)[:-1], f"bench.peer_services:{cls}"]

    def call(self, rpc, i: int) -> None:
        token, payload = sample.request(i)
        getattr(rpc, self.producer).create(token, "draft", payload)

    def _store(self, stack, name, base):
        from shared.db import Store
        url = (stack.database_url.replace("{service}", name) if stack.database_url
               else f"sqlite:///{stack.tmp / (name + '.db')}")
        return Store(name, base.metadata, url)

    def applied(self, stack) -> int:
        return _count(self._store(stack, self.consumer, self.module.TrackerBase),
                      self.module.Tracked.__table__)

    def committed(self, stack) -> int:
        return _count(self._store(stack, self.producer, self.module.ProducerBase),
                      self.module.Referral.__table__)

    def timings(self, stack, first: int) -> list[tuple[float, float, float]]:
        from sqlalchemy import select
        t = self.module.Tracked.__table__
        return [(_ts(r.event_time), _ts(r.event_time), _ts(r.applied_at)) for r in _rows(
            self._store(stack, self.consumer, self.module.TrackerBase),
            select(t.c.case_number, t.c.event_time, t.c.applied_at))
            if sample.index_of(r.case_number) >= first]


def _rows(store, query) -> list:
    try:
        with store.session() as s:
            return s.execute(query).all()
    finally:
        store.dispose()


def wait_applied(system, stack, expected: int, timeout: float) -> int:
    """Events the tracker applied once it has ``expected`` (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while (n := system.applied(stack)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return n


def _percentiles(values: list[float]) -> dict:
    values = sorted(values)
    return {p: common.percentile(values, p) * 1e3 for p in (50, 95, 99)}


@contextmanager
def services(backend: str, tag: str):
    """A ``Stack`` (tests/conftest.py) with nothing started yet, in a vhost and databases
    of its own, all removed afterwards; yields (stack, amqp uri, database name prefix)."""
    from tests.conftest import Stack
    token_keys()
    rid = common.run_id()
    run_dir = Path(tempfile.mkdtemp(prefix="liandong-bench-"))
    prefix = f"lbench_{rid}_"
    database_url = f"{common.PG_DSN}/{prefix}{{service}}" if backend == "postgres" else None
    try:
        with common.vhost(f"liandong-bench-{tag}-{rid}") as uri:
            stack = Stack(backend, uri, run_dir, database_url)
            try:
                yield stack, uri, prefix
            finally:
                stack.shutdown()
    finally:
        if backend == "postgres":
            common.drop_databases(prefix)
        shutil.rmtree(run_dir, ignore_errors=True)


def log_level() -> dict:
    return {"LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING")}


def run(opts, rate: float, seconds: float, backend: str, system=None,
        crash: bool = False) -> dict:
    """One measured run of ``system`` ((c) by default); ``crash``: kill -9 its producer
    half-way through the measured phase, start it again, and count the events lost."""
    from shared import deadletters
    system = system or Liandong()
    env = {**log_level(), "MAX_WORKERS": str(opts.max_workers)}
    with services(backend, "c" if system.dead_letters else "d") as (stack, uri, prefix):
        for name in system.companions:
            stack.start(name, **env)
        for name in (system.consumer, system.producer):
            stack.start(name, command=system.command(name), **env)
        client = Client(uri, opts.max_workers, system.call)
        warm = client.phase(0, count=opts.warmup, rate=opts.warmup_rate)
        wait_applied(system, stack, warm["ok"], 60)
        common.log(f"{system.label} {backend}: warm, measuring")
        meter = CpuMeter(prefix)
        meter.start()
        pids = {stack.procs[system.producer].pid: "producer",
                stack.procs[system.consumer].pid: "consumer", os.getpid(): "client"}
        if crash:
            threading.Timer(seconds / 2, _crash, (stack, system, env)).start()
        measured = client.phase(opts.warmup, seconds=seconds, rate=rate)
        expected = system.committed(stack) if crash else warm["ok"] + measured["ok"]
        received = wait_applied(system, stack, expected, opts.drain_timeout)
        cpu = meter.stop(pids)
        events = system.timings(stack, opts.warmup)
        dead = len(deadletters.list_dead_letters(1000, uri=uri)) \
            if system.dead_letters else None
    if not events:
        raise RuntimeError(f"{system.label} {backend}: the tracker applied no measured event")
    start = min(e[0] for e in events)
    end = max(e[2] for e in events)
    mode = ("kill -9" if crash else f"{rate:g}/s" if rate else "max")
    out = common.summarize(
        f"{system.label} {backend}", [a - t for t, _c, a in events], len(events), end - start,
        mode=mode,
        producer_rate=measured["ok"] / max(1e-9, measured["t_end"] - measured["t_start"]),
        failed=measured["failed"] + warm["failed"],
        error=measured["error"] or warm["error"], dead_letters=dead,
        max_lag_ms=measured["max_lag"] * 1e3, committed=expected,
        **{"lost" if crash else "missing": max(0, expected - received)})
    if not crash:
        out["cpu"] = cpu
    if isinstance(system, Liandong) and not isinstance(system, Peer):
        out["stages"] = {
            "request -> outbox row": _percentiles([c - t for t, c, _a in events]),
            "outbox row -> tracker commit": _percentiles([a - c for _t, c, a in events])}
    return out


def _crash(stack, system, env) -> None:
    """kill -9 the producer mid-run, then start it again as an operator would."""
    proc = stack.procs[system.producer]
    common.log(f"kill -9 {system.producer} (pid {proc.pid})")
    proc.kill()
    proc.wait()
    stack.start(system.producer, command=system.command(system.producer), **env)

"""Recovery speed: how fast the real tracker empties a backlog.

The tracker (``nameko run services.tracker.service``, started by the tests' ``Stack``)
runs once to declare its queue and is stopped; ``events`` real, signed
``criminal_referral.drafted.v1`` envelopes (one handoff each, signed with a
police_handoff key the tracker trusts) are published to ``tracker.events`` meanwhile;
then the tracker starts again and the clock runs from its process start until its inbox
holds every event (so the figure includes its start-up, a few seconds). The CPU the
tracker and the run's PostgreSQL backends spent meanwhile, per event, is the figure a
loaded machine does not distort much."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

from bench import common, sample
from bench.cpu import CpuMeter
from bench.live import Liandong, log_level, services, wait_applied


def _publish(uri: str, bodies) -> None:
    import pika

    from shared import envelope as env
    conn = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        ch = conn.channel()
        for event_id, routing_key, body in bodies:
            ch.basic_publish(env.EXCHANGE, routing_key, body, pika.BasicProperties(
                delivery_mode=2, message_id=event_id,
                content_type="application/cloudevents+json"))
    finally:
        conn.close()


def _queued(uri: str) -> int:
    from kombu import Connection
    with Connection(uri) as conn:
        return conn.default_channel.queue_declare("tracker.events", passive=True).message_count


def drain(events: int, timeout: float, backend: str = "postgres") -> dict:
    from shared import deadletters, signing
    from shared import envelope as env
    system = Liandong()
    with services(backend, "drain") as (stack, uri, prefix):
        stack.start("tracker", **log_level())     # declares its queue, then stops
        stack.stop("tracker")
        base = sample.envelope()

        def bodies():
            for i in range(events):
                subject = str(uuid.uuid4())
                data = {**base["data"], "handoff_id": subject,
                        "case_number": f"{sample.PREFIX}drain-{i:07d}"}
                signed = signing.sign({**base, "id": str(uuid.uuid4()), "subject": subject,
                                       "data": data}, stack.tmp / "keys")
                yield signed["id"], signed["type"], env.encode(signed)
        _publish(uri, bodies())
        deadline = time.monotonic() + 60
        while (queued := _queued(uri)) < events and time.monotonic() < deadline:
            time.sleep(0.2)
        common.log(f"drain: {queued} events waiting; starting the tracker")
        meter = CpuMeter(prefix)
        meter.start()
        started = time.monotonic()
        stack.start("tracker", wait=False, **log_level())
        applied = wait_applied(system, stack, events, timeout)
        seconds = time.monotonic() - started
        cpu = meter.stop({stack.procs["tracker"].pid: "consumer"})
        dead = len(deadletters.list_dead_letters(1000, uri=uri))
    return {"name": f"backlog drain, tracker {backend}", "mode": "drain", "events": applied,
            "queued": queued,
            "seconds": seconds, "rate": applied / seconds, "missing": events - applied,
            "dead_letters": dead, "cpu": cpu}


def _history(store, base: dict, events: int, keys: Path) -> None:
    """``events`` signed envelopes in the police_handoff outbox, already sent (the relay
    leaves them alone): the event history a rebuild reads."""
    from sqlalchemy import insert

    from shared import envelope as env
    from shared import signing
    from shared.messaging import messaging_tables, utcnow
    outbox = messaging_tables(store.metadata)["outbox"]
    for start in range(0, events, 2000):
        rows = []
        for i in range(start, min(events, start + 2000)):
            subject = str(uuid.uuid4())
            data = {**base["data"], "handoff_id": subject,
                    "case_number": f"{sample.PREFIX}history-{i:07d}"}
            signed = signing.sign({**base, "id": str(uuid.uuid4()), "subject": subject,
                                   "data": data}, keys)
            now = utcnow()
            rows.append({"event_id": signed["id"], "type": signed["type"], "subject": subject,
                         "routing_key": signed["type"], "body": env.encode(signed).decode(),
                         "created_at": now, "sent_at": now})
        with store.transaction() as s:
            s.execute(insert(outbox), rows)


def _copy_ceiling(police, tracker) -> float:
    """Seconds to move the same outbox rows (id, body) into a table of the tracker's
    database with PostgreSQL COPY, out and in: the ceiling of any rebuild."""
    import io
    source, target = police.engine.raw_connection(), tracker.engine.raw_connection()
    try:
        started = time.monotonic()
        buf = io.StringIO()
        source.cursor().copy_expert("COPY (SELECT id, body FROM outbox ORDER BY id) TO STDOUT",
                                    buf)
        buf.seek(0)
        cur = target.cursor()
        cur.execute("CREATE TABLE bench_copy_ceiling (id bigint, body text)")
        cur.copy_expert("COPY bench_copy_ceiling FROM STDIN", buf)
        target.commit()
        return time.monotonic() - started
    finally:
        source.close()
        target.close()


def rebuild(events: int, timeout: float) -> dict:
    """``liandong rebuild-tracker`` (a subprocess, as an operator runs it) over ``events``
    events of history in PostgreSQL, beside COPY of the same rows."""
    import re
    import subprocess
    import sys

    from shared.cli import DATABASES
    with services("postgres", "rebuild") as (stack, _uri, _prefix):
        for name in DATABASES:             # rebuild reads every producer's history
            stack.start(name, **log_level())
        police, tracker = stack.store("police_handoff"), stack.store("tracker")
        _history(police, sample.envelope(), events, stack.tmp / "keys")
        common.log(f"rebuild: {events} events of history; liandong rebuild-tracker")
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "shared.cli", "rebuild-tracker"],
                             cwd=common.ROOT, env=stack.env, capture_output=True, text=True,
                             timeout=timeout)
        seconds = time.monotonic() - started
        if out.returncode:
            raise RuntimeError(f"rebuild-tracker exited {out.returncode}: {out.stderr[-500:]}")
        applied = int(re.search(r"'applied': (\d+)", out.stdout).group(1))
        copy_seconds = _copy_ceiling(police, tracker)
        police.dispose()
        tracker.dispose()
    return {"name": "rebuild-tracker, postgres", "mode": "rebuild", "events": applied,
            "queued": events, "seconds": seconds, "rate": applied / seconds,
            "missing": events - applied, "copy_rate": events / copy_seconds}


def _stop(pids: list[int], grace: float = 10) -> None:
    """SIGTERM the detached services, then SIGKILL whichever is still there after
    ``grace`` seconds: the vhost is deleted next, and a service still stopping then
    retries its connection for ever (such leftovers held PostgreSQL connections that a
    later test needed)."""
    import os
    import signal

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def cold_start(timeout: float) -> dict:
    """`liandong run --detach` (what `make run` runs) on empty databases until every
    service answers its health RPC."""
    import re
    import subprocess
    import sys

    from shared.cli import SERVICES
    with services("postgres", "cold") as (stack, _uri, _prefix):
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "shared.cli", "run", "--detach",
                              "--timeout", str(timeout)], cwd=common.ROOT,
                             env={**stack.env, **log_level()}, capture_output=True, text=True,
                             timeout=timeout * len(SERVICES) + 30)
        seconds = time.monotonic() - started
        detached = re.search(r"\(pids ([\d ]+)\)", out.stdout)
        _stop([int(pid) for pid in detached.group(1).split()] if detached else [])
        if out.returncode:
            raise RuntimeError(f"run --detach exited {out.returncode}: {out.stderr[-500:]}")
        ready = out.stdout.count(" ready ")
    return {"name": "cold start, postgres", "mode": "cold", "events": 0, "queued": 0,
            "services": ready, "seconds": seconds, "missing": len(SERVICES) - ready}

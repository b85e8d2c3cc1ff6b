"""``--only alerts``: the alerts service's intake path without the broker — validate an
alert against its kind, then one transaction that applies it once per (source, alert id),
joins the open task of its target or opens a task (record + step + outbox row) — in
PostgreSQL, for a storm in which most alerts repeat a few vehicles (the share of
distinct targets is ``unique``). Threads stand in for the service's workers. Prints
alerts/s and the split created / merged / duplicate; asserts nothing.

``http``: the same alerts as a platform sends them — ``POST /api/v1/alerts`` through the
gateway (a system client's Basic credentials) to the alerts service, both started as
``liandong run`` starts them (the tests' ``Stack``, PostgreSQL): alerts/s to committed
tasks (a 201/200 answer is sent after the commit), every alert a new truck."""
from __future__ import annotations

import random
import threading
import time

from bench import common


def _alerts(count: int, unique: float, seed: int = 2026):
    rnd = random.Random(seed)
    plates = [f"浙C{i:05d}" for i in range(max(1, int(count * unique)))]
    sites = ["WIM-LC-01", "WIM-RA-01", "WIM-YQ-01", "WIM-PY-01"]
    out = []
    for i in range(count):
        p = rnd.choice(plates)
        alert_id = f"b{i}" if rnd.random() > 0.1 else f"b{max(0, i - 1)}"  # 10% re-sent ids
        out.append({"alert_id": alert_id, "kind": "overlimit_wim", "plate": p,
                    "site": sites[hash(p) % len(sites)], "gross_weight_kg": 60000,
                    "limit_kg": 49000, "excess_percent": 22.4 + rnd.random() * 40})
    return out


def run(count: int = 3000, unique: float = 0.05, workers: int = 8) -> dict:
    from datetime import UTC, datetime

    from sqlalchemy.exc import IntegrityError

    from services.alerts import reference as ref
    from services.alerts import store as st
    from shared.auth import Actor
    from shared.db import Store
    from shared.errors import InvalidTransition
    actor = Actor("bench-source", "alert_source", "bench-source")
    alerts = _alerts(count, unique)
    prefix = f"lbench_{common.run_id()}_"
    counts: dict[str, int] = {}
    lock = threading.Lock()
    with common.pg_databases(prefix) as base:
        store = Store("alerts", st.metadata, f"{base}alerts")
        store.engine   # noqa: B018 - creates the database and its schema
        queue = list(reversed(alerts))

        def worker():
            while True:
                with lock:
                    if not queue:
                        return
                    alert = queue.pop()
                data = ref.validate_alert(alert)
                for _ in range(5):
                    try:
                        with store.transaction() as s:
                            out = st.apply_alert(s, actor, data, datetime.now(UTC), True)
                        break
                    except (IntegrityError, InvalidTransition):
                        continue
                with lock:
                    counts[out["outcome"]] = counts.get(out["outcome"], 0) + 1
        seconds = _in_threads(worker, workers)
        store.dispose()
    return {"alerts": count, "seconds": seconds, "alerts_per_s": count / seconds,
            "counts": counts, "unique": unique, "workers": workers}


def _in_threads(worker, workers: int) -> float:
    """Run ``worker`` in ``workers`` threads until all return; the wall seconds."""
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def http(count: int = 1000, workers: int = 8) -> dict:
    """``count`` new-truck alerts POSTed by ``workers`` clients; alerts/s to committed
    tasks and p50/p99 of the answer (the commit)."""
    import base64
    import json

    import requests

    from bench import live
    auth = "Basic " + base64.b64encode(b"wim-platform:demo").decode()
    rid = common.run_id()
    bodies = [json.dumps({"alert_id": f"h{rid}-{i}", "kind": "overlimit_wim",
                          "plate": f"浙C{'HJKLMNPQRS'[i // 10000 % 10]}{i % 10000:04d}",
                          "site": "WIM-LC-01", "gross_weight_kg": 60000, "limit_kg": 49000,
                          "excess_percent": 22.4}) for i in range(count)]
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    with live.services("postgres", "alerts-http") as (stack, _uri, _prefix):
        for name in ("gateway", "alerts"):
            stack.start(name, **live.log_level())
        url = stack.base_url + "/api/v1/alerts"
        queue = list(reversed(bodies))

        def post(session, body):
            t = time.perf_counter()
            r = session.post(url, data=body, timeout=60, headers={
                "Authorization": auth, "Content-Type": "application/json"})
            return r.status_code, time.perf_counter() - t

        with requests.Session() as warm:           # the first requests pay for imports
            for i in range(20):
                post(warm, json.dumps({**json.loads(bodies[0]), "alert_id": f"w{rid}-{i}",
                                       "plate": f"浙CW{i:04d}"}))

        def worker():
            with requests.Session() as session:
                while True:
                    with lock:
                        if not queue:
                            return
                        body = queue.pop()
                    status, seconds = post(session, body)
                    with lock:
                        statuses[status] = statuses.get(status, 0) + 1
                        latencies.append(seconds)
        seconds = _in_threads(worker, workers)
    latencies.sort()
    created = statuses.get(201, 0)
    return {"alerts": count, "created": created, "seconds": seconds,
            "alerts_per_s": created / seconds, "statuses": statuses, "workers": workers,
            "p50_s": common.percentile(latencies, 50), "p99_s": common.percentile(latencies, 99)}


def print_report(out: dict) -> None:
    c = out["counts"]
    print(f"\nalert intake (validate + apply in PostgreSQL, no broker; {out['workers']} "
          f"threads, {out['unique']:.0%} distinct vehicles): {out['alerts']} alerts in "
          f"{out['seconds']:.1f} s = {out['alerts_per_s']:.0f} alerts/s  "
          f"(created {c.get('created', 0)}, merged {c.get('merged', 0)}, "
          f"duplicate {c.get('duplicate', 0)})")
    h = out.get("http")
    if h:
        print(f"alert intake over HTTP (POST /api/v1/alerts -> gateway -> alerts, PostgreSQL; "
              f"{h['workers']} clients, every alert a new truck): {h['created']}/{h['alerts']} "
              f"tasks committed in {h['seconds']:.1f} s = {h['alerts_per_s']:.0f} alerts/s, "
              f"answer p50 {h['p50_s'] * 1000:.0f} ms, p99 {h['p99_s'] * 1000:.0f} ms")

"""``--only alerts``: the alerts service's intake path without the broker — validate an
alert against its kind, then one transaction that applies it once per (source, alert id),
joins the open task of its target or opens a task (record + step + outbox row) — in
PostgreSQL, for a storm in which most alerts repeat a few vehicles (the share of
distinct targets is ``unique``). Threads stand in for the service's workers. Prints
alerts/s and the split created / merged / duplicate; asserts nothing."""
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
        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        store.dispose()
    return {"alerts": count, "seconds": seconds, "alerts_per_s": count / seconds,
            "counts": counts, "unique": unique, "workers": workers}


def print_report(out: dict) -> None:
    c = out["counts"]
    print(f"\nalert intake (validate + apply in PostgreSQL, no broker; {out['workers']} "
          f"threads, {out['unique']:.0%} distinct vehicles): {out['alerts']} alerts in "
          f"{out['seconds']:.1f} s = {out['alerts_per_s']:.0f} alerts/s  "
          f"(created {c.get('created', 0)}, merged {c.get('merged', 0)}, "
          f"duplicate {c.get('duplicate', 0)})")

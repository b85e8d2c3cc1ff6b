"""The import of 5,000 penalty decisions (以罚代刑 supervision), stage by stage, through
the supervision service's own code: read the XLSX (openpyxl, read-only), check every
row and evaluate it against the judgment standards, write the import in one
transaction (``services.supervision.importer.write``) into a fresh SQLite file and a
throwaway PostgreSQL database, then the same file again (nothing to write: idempotent).
The file is the e2e test's: 20 bad rows, 30 decisions over a criminal threshold."""
from __future__ import annotations

import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import common
from shared.auth import Actor

ACTOR = Actor("bench", "coordinator", "wenzhou-coordination")


def _store(url: str):
    from services.supervision import store as st
    from shared.handoffs import HandoffStore
    handoffs = HandoffStore(st.SERVICE, st.SOURCE, url)
    for table in (st.decisions, st.imports, st.referrals):
        table.to_metadata(handoffs.metadata)
    return handoffs.store


def run(rows: int = 5000, repeat: int = 3) -> dict:
    from services.supervision import importer, penalties, samples
    data, _over, _bad = samples.decisions(rows=rows)
    content = samples.to_xlsx(data)
    out = {"rows": rows, "bytes": len(content), "backends": {}}
    t0 = time.perf_counter()
    parsed = [(line, penalties.from_cells(raw))
              for line, raw in penalties.read_file("bench.xlsx", content)]
    out["read_s"] = time.perf_counter() - t0
    checks = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        checked = importer.check_rows(parsed)
        checks.append(time.perf_counter() - t0)
    out["check_s"] = min(checks)
    good, _errors, rejected = checked
    out["rejected"], out["suspects"] = len(rejected), sum(
        bool(d["matches"]) for _l, d in good.values())
    prefix = f"lb_pen_{common.run_id()}_"
    with tempfile.TemporaryDirectory() as tmp, common.pg_databases(prefix) as pg:
        for backend, url in (("sqlite", f"sqlite:///{Path(tmp) / 'supervision.db'}"),
                             ("postgres", f"{pg}supervision")):
            firsts, agains = [], []
            for i in range(repeat):   # each round into an empty database
                store = _store(url.replace("supervision", f"supervision{i}"))
                now = datetime.now(timezone.utc)
                t0 = time.perf_counter()
                importer.write(store, ACTOR, "file", "bench.xlsx", "x", rows, checked, now)
                firsts.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                again = importer.write(store, ACTOR, "file", "bench.xlsx", "x", rows,
                                       checked, now)
                agains.append(time.perf_counter() - t0)
                assert again["unchanged"] == rows - out["rejected"]
                store.dispose()
            out["backends"][backend] = {"write_s": min(firsts), "again_s": min(agains)}
    return out


def report(r: dict) -> None:
    print()
    print(f"penalty import: {r['rows']:,} rows XLSX ({r['bytes'] / 1024:.0f} KiB), "
          f"{r['rejected']} bad rows, {r['suspects']} over a criminal threshold")
    print(f"    read XLSX {r['read_s'] * 1000:.0f} ms; check + judgment standards "
          f"{r['check_s'] * 1000:.0f} ms ({r['rows'] / r['check_s']:,.0f} rows/s)")
    for backend, b in r["backends"].items():
        whole = r["read_s"] + r["check_s"] + b["write_s"]
        print(f"    {backend:8s} write in one transaction {b['write_s'] * 1000:.0f} ms; whole "
              f"import {whole:.2f} s ({r['rows'] / whole:,.0f} rows/s); the same file again: "
              f"write step {b['again_s'] * 1000:.0f} ms (nothing written)")

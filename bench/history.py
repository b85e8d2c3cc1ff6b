"""Work that grows with history (issue 21): the deadline sweep and the statistics over a
tracker database of ``--handoffs`` handoffs with ``--steps`` steps each, in PostgreSQL.

``python -m bench.history [--handoffs 1000000] [--steps 10]`` (``make bench`` runs it at
100k, ``--full`` at 1M with 10M steps; ``--smoke`` at 2,000). The handoffs are the board
bench's generator (bench/board.py: 20 % open, 12 counties, deadlines 30 days back to 60
ahead); the timeline, the statistics counters and the alert clocks are generated in SQL
from them, as the tracker would have kept them. Then, through the tracker's own code:

- the first sweep (raises every alert due: O(alerts)), then a sweep with nothing new
  (p95 of 20; goal < 50 ms at 1M with ~60,000 overdue);
- every statistics view (month, county, domain, agency, kind) for the coordinator
  (counters), a county centre (counters + live) and an enforcement unit (live), with the
  Python heap's peak (tracemalloc) — goal < 500 ms each at 1M handoffs / 10M steps,
  memory flat.

Prints numbers; asserts only that the work was done (alerts raised, rows answered).
"""
from __future__ import annotations

import argparse
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

from bench import common
from bench.board import GENERATE, UNITS
from shared.auth import Actor

STEPS = """
INSERT INTO timeline (handoff_id, step, event_id, type, command, state, actor, actor_role,
                      actor_unit, at, data)
SELECT h.handoff_id, s, h.handoff_id || '-' || s, h.kind || '.step.v1',
       (ARRAY['draft', 'approve', 'transfer', 'receive', 'file', 'not_file', 'accept',
              'return', 'report', 'close'])[1 + (s + length(h.handoff_id)) % 10],
       h.state, 'bench', 'enforcement_unit', h.owner_unit,
       h.created_at + (s - 1) * ((h.updated_at - h.created_at) / :steps), '{}'::json
FROM handoffs h CROSS JOIN generate_series(1, :steps) AS s
"""
# the counters the tracker keeps as it applies those steps (services/tracker/store.py)
CASES = """
INSERT INTO stats_cases (day, county, domain, kind, state, open, n)
SELECT to_char(timezone('UTC', created_at), 'YYYY-MM-DD'), coalesce(county, ''),
       coalesce(domain, ''), kind, state, open, count(*)
FROM handoffs GROUP BY 1, 2, 3, 4, 5, 6
"""
STEP_COUNTS = """
INSERT INTO stats_steps (day, county, domain, kind, command, n, timed, hours)
SELECT to_char(timezone('UTC', h.created_at), 'YYYY-MM-DD'), coalesce(h.county, ''),
       coalesce(h.domain, ''), h.kind, t.command, count(*), count(p.step),
       coalesce(sum(extract(epoch FROM t.at - p.at) / 3600.0), 0)
FROM timeline t JOIN handoffs h USING (handoff_id)
LEFT JOIN timeline p ON p.handoff_id = t.handoff_id AND p.step = t.step - 1
GROUP BY 1, 2, 3, 4, 5
"""
UNIT_CASES = """
INSERT INTO unit_stats_cases (unit, day, county, domain, kind, state, open, n)
SELECT u.unit, to_char(timezone('UTC', h.created_at), 'YYYY-MM-DD'), coalesce(h.county, ''),
       coalesce(h.domain, ''), h.kind, h.state, h.open, count(*)
FROM handoffs h JOIN handoff_units u USING (handoff_id) GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
UNIT_STEP_COUNTS = """
INSERT INTO unit_stats_steps (unit, day, county, domain, kind, command, n, timed, hours)
SELECT u.unit, to_char(timezone('UTC', h.created_at), 'YYYY-MM-DD'), coalesce(h.county, ''),
       coalesce(h.domain, ''), h.kind, t.command, count(*), count(p.step),
       coalesce(sum(extract(epoch FROM t.at - p.at) / 3600.0), 0)
FROM timeline t JOIN handoffs h USING (handoff_id) JOIN handoff_units u USING (handoff_id)
LEFT JOIN timeline p ON p.handoff_id = t.handoff_id AND p.step = t.step - 1
GROUP BY 1, 2, 3, 4, 5, 6
"""
CLOCKS = """
INSERT INTO alert_clocks (handoff_id, deadline_id, due, deadline, next_level)
SELECT handoff_id, deadline->>'id', deadline_due, deadline, 'approaching'
FROM handoffs WHERE open AND deadline_due IS NOT NULL
"""
ACTORS = [("coordinator", Actor("bench", "coordinator", "wenzhou-coordination", None)),
          ("county centre", Actor("bench", "county_command", "ruian-command", "ruian")),
          ("enforcement unit", Actor("bench", "enforcement_unit", "ruian-team-1", "ruian"))]
GROUPS = ("month", "county", "domain", "agency", "kind")


def _fill(engine, handoffs: int, steps: int) -> dict:
    from sqlalchemy import text

    from services.tracker import store as st
    started = time.perf_counter()
    tables = (st.handoffs, st.handoff_units, st.timeline, st.alert_clocks)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        for table in tables:
            for index in table.indexes:
                index.drop(conn)
        conn.execute(text("SELECT setseed(0.2026)"))
        conn.execute(text(GENERATE), {"rows": handoffs})
        conn.execute(text(UNITS))
        conn.execute(text("ALTER TABLE timeline DROP CONSTRAINT timeline_pkey, "
                          "DROP CONSTRAINT timeline_event_id_key"))
        conn.execute(text(STEPS), {"steps": steps})
        conn.execute(text("ALTER TABLE timeline ADD PRIMARY KEY (handoff_id, step), "
                          "ADD UNIQUE (event_id)"))
        conn.execute(text(CASES))
        conn.execute(text(STEP_COUNTS))
        conn.execute(text(UNIT_CASES))
        conn.execute(text(UNIT_STEP_COUNTS))
        conn.execute(text(CLOCKS))
        for table in tables:
            for index in table.indexes:
                index.create(conn)
        st.mark_derived(conn)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        counts = conn.execute(text(
            "SELECT (SELECT count(*) FROM handoffs), (SELECT count(*) FROM timeline), "
            "(SELECT count(*) FROM handoffs WHERE open AND deadline_due < now()), "
            "(SELECT count(*) FROM stats_cases) + (SELECT count(*) FROM unit_stats_cases), "
            "(SELECT count(*) FROM stats_steps) + (SELECT count(*) FROM unit_stats_steps)"
            )).one()
    return {"handoffs": counts[0], "steps": counts[1], "overdue": counts[2],
            "case_counters": counts[3], "step_counters": counts[4],
            "load_seconds": time.perf_counter() - started}


def run(handoffs: int, steps: int, repeat: int = 20) -> dict:
    from services.tracker import domain
    from services.tracker import store as st
    from shared.db import Store
    prefix = f"lbench_{common.run_id()}_"
    with common.pg_databases(prefix) as base:
        store = Store("tracker", st.metadata, f"{base}history")
        out = _fill(store.engine, handoffs, steps)
        common.log(f"history: {out['handoffs']:,} handoffs, {out['steps']:,} steps in "
                   f"{out['load_seconds']:.0f} s")
        now, window = datetime.now(timezone.utc), timedelta(hours=24)

        def sweep(at) -> int:        # what TrackerService.sweep_now does each 10 s
            with store.transaction() as s:
                return st.sweep(s, at, window, limit=10**7)
        t = time.perf_counter()
        first = sweep(now)
        out["first_sweep"] = {"alerts": first, "seconds": time.perf_counter() - t}
        # the first sweep moved ~60,000 clocks at once: autovacuum would re-analyze the
        # table within a minute; without it PostgreSQL plans the next sweeps on the old
        # picture (many 'approaching' clocks due) and reads every clock
        from sqlalchemy import text
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("ANALYZE alert_clocks"))
        idle = []
        for i in range(repeat):
            t = time.perf_counter()
            raised = sweep(now + timedelta(milliseconds=i))
            idle.append(time.perf_counter() - t)
            assert raised == 0, f"a sweep with nothing new raised {raised}"
        idle.sort()
        out["idle_sweep_ms"] = {"p50": common.percentile(idle, 50) * 1e3,
                                "p95": common.percentile(idle, 95) * 1e3}
        views = []
        for who, actor in ACTORS:
            for group_by in GROUPS:
                with store.session() as s:
                    tracemalloc.start()
                    t = time.perf_counter()
                    rows = domain.statistics_from(
                        st.statistics(s, group_by, None, None, now, actor), group_by)
                    seconds = time.perf_counter() - t
                    peak = tracemalloc.get_traced_memory()[1]
                    tracemalloc.stop()
                views.append({"who": who, "group_by": group_by, "groups": len(rows),
                              "counted": sum(r["count"] for r in rows),
                              "ms": seconds * 1e3, "peak_kib": peak / 1024})
        out["statistics"] = views
        assert out["first_sweep"]["alerts"] > 0 and views[0]["counted"] == out["handoffs"]
        store.dispose()
    return out


def report(out: dict) -> None:
    n = out["handoffs"]
    print(f"history: {n:,} handoffs, {out['steps']:,} steps, {out['overdue']:,} overdue; "
          f"counters {out['case_counters']:,} + {out['step_counters']:,} rows; "
          f"filled in {out['load_seconds']:.0f} s")
    f = out["first_sweep"]
    print(f"  first sweep: {f['alerts']:,} alerts in {f['seconds']:.2f} s "
          f"({f['alerts'] / f['seconds']:,.0f} alerts/s; O(alerts))")
    print(f"  sweep with nothing new: p50 {out['idle_sweep_ms']['p50']:.1f} ms, "
          f"p95 {out['idle_sweep_ms']['p95']:.1f} ms   (goal < 50 ms at 1M)")
    worst = max(out["statistics"], key=lambda v: v["ms"])
    for v in out["statistics"]:
        print(f"  statistics {v['who']:16s} by {v['group_by']:6s}: {v['ms']:7.1f} ms, "
              f"{v['groups']:4d} groups, {v['counted']:>9,} handoffs, "
              f"heap peak {v['peak_kib']:,.0f} KiB")
    print(f"  worst statistics view: {worst['ms']:.0f} ms ({worst['who']}, {worst['group_by']})"
          f"   (goal < 500 ms at 1M handoffs / 10M steps)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--handoffs", type=int, default=100_000, help="handoffs generated")
    p.add_argument("--steps", type=int, default=10, help="timeline steps per handoff")
    p.add_argument("--repeat", type=int, default=20, help="idle sweeps timed")
    p.add_argument("--smoke", action="store_true", help="2,000 handoffs, 3 steps: seconds")
    p.add_argument("--full", action="store_true", help="1M handoffs, 10M steps")
    args = p.parse_args(argv)
    if args.smoke:
        args.handoffs, args.steps, args.repeat = 2_000, 3, 3
    if args.full:
        args.handoffs, args.steps = 1_000_000, 10
    report(run(args.handoffs, args.steps, args.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

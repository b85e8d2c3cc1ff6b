"""The tracker's board query over many referrals in PostgreSQL.

A throwaway database gets the tracker's real schema (``services.tracker.store``
metadata: tables and indexes as the service creates them), then ``rows`` handoffs
generated inside PostgreSQL with ``generate_series`` (no round trip per row), then
``VACUUM ANALYZE``. The board is timed through ``services.tracker.store.board`` itself
(SQLAlchemy, 200 rows mapped to dicts) with the filters the console uses.

The mix: 60 % criminal referrals, 25 % market referrals, 15 % command-centre
actions; 12 counties; 20 % still open (the rest closed, as years of history are);
90 % of the open ones have a deadline between 30 days ago and 60 days ahead; last
update spread over three years; an open one waits for its counterpart (`waiting`, the
待办 column).
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from bench import common
from shared.auth import Actor

GENERATE = """
INSERT INTO handoffs (handoff_id, kind, case_number, county, domain, owner_unit,
                      counterpart_unit, counterpart_agency, units, state, open, step,
                      deadline, deadline_due, search, waiting, created_at, updated_at)
SELECT md5(g::text)::uuid::text, kind, case_number, county,
       CASE WHEN kind = 'market_referral' THEN 'driving_training' END,
       county || '-team-1', county || '-' || agency, agency,
       json_build_array(county || '-team-1', county || '-' || agency),
       CASE WHEN is_open THEN (ARRAY['draft', 'approval_requested', 'approved', 'transferred',
            'receipted', 'filed', 'not_filed', 'reconsideration_requested'])[1 + g % 8]
            ELSE 'closed' END,
       is_open, CASE WHEN is_open THEN 1 + g % 8 ELSE 9 END,
       CASE WHEN due IS NOT NULL THEN json_build_object(
            'id', 'police_decision', 'due', to_char(due AT TIME ZONE 'UTC',
            'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'), 'obligation', 'must', 'article', '8') END,
       due, lower(case_number || ' 浙c' || (10000 + g % 90000) || ' 驾驶员' || g % 5000),
       CASE WHEN is_open THEN ' u:' || county || '-' || agency || '=act ' ELSE '' END,
       updated - (random() * interval '60 days'), updated
FROM (
  SELECT g, k.kind, k.agency, c.county, r.is_open,
         'WZ-' || upper(left(c.county, 2)) || '-' || (2023 + g % 4) || '-'
               || lpad(g::text, 7, '0') AS case_number,
         CASE WHEN r.is_open AND r.has_deadline
              THEN now() + (r.r_due * 90 - 30) * interval '1 day' END AS due,
         now() - r.r_updated * interval '3 years' AS updated
  FROM (SELECT g, random() < 0.2 AS is_open, random() < 0.9 AS has_deadline,
               random() AS r_due, random() AS r_updated
        FROM generate_series(1, :rows) AS g) r
  CROSS JOIN LATERAL (SELECT CASE WHEN g % 20 < 12 THEN 'criminal_referral'
                                  WHEN g % 20 < 17 THEN 'market_referral'
                                  WHEN g % 20 < 19 THEN 'joint_action'
                                  ELSE 'assistance_request' END AS kind,
                             CASE WHEN g % 20 < 12 THEN 'police'
                                  WHEN g % 20 < 17 THEN 'market_regulation'
                                  ELSE 'command' END AS agency) k
  CROSS JOIN LATERAL (SELECT (ARRAY['lucheng', 'longwan', 'ouhai', 'dongtou', 'ruian',
       'yueqing', 'longgang', 'yongjia', 'pingyang', 'cangnan', 'wencheng',
       'taishun'])[1 + (g * 7) % 12] AS county) c
) s
"""

UNITS = """
INSERT INTO handoff_units (handoff_id, unit)
SELECT handoff_id, json_array_elements_text(units) FROM handoffs
"""

# the board as the console opens it, per role and filter
FILTERS = [
    ("enforcement unit: its own (SQL rule)",
     {"actor": Actor("bench", "enforcement_unit", "ruian-team-1", "ruian")}),
    ("county centre: county + named (SQL rule)",
     {"actor": Actor("bench", "county_command", "ruian-command", "ruian")}),
    ("coordinator: open, nearest deadline", {}),
    ("county centre: county=lucheng", {"county": "lucheng"}),
    ("overdue only", {"overdue_only": True}),
    ("police of a county", {"agency": "police", "county": "ruian"}),
    ("kind + state", {"kind": "criminal_referral", "state": "transferred"}),
    ("text search q=浙c12345", {"q": "浙c12345"}),
]

def _plan(conn, sql_params) -> tuple[str, float]:
    """The scans PostgreSQL chose and its own execution time (EXPLAIN ANALYZE)."""
    import json

    from sqlalchemy import text
    sql, params = sql_params
    plan = conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql), params).scalar()
    if isinstance(plan, str):
        plan = json.loads(plan)
    nodes, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if "Scan" in node["Node Type"]:
            nodes.append(node["Node Type"] + (f" {node['Index Name']}"
                                              if node.get("Index Name") else ""))
        stack.extend(node.get("Plans", []))
    return ", ".join(nodes), plan[0]["Execution Time"]


def _compiled(session, now, filters) -> tuple[str, dict]:
    """Run ``board`` once and return the SQL it ran, for EXPLAIN."""
    from sqlalchemy import event

    from services.tracker import store as st
    seen = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))
    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        st.board(session, now, **filters)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, params = seen[-1]
    # psycopg2 pyformat -> SQLAlchemy text() named parameters
    import re
    return re.sub(r"%\((\w+)\)s", r":\1", statement), params


def run(rows: int, repeat: int) -> dict:
    from sqlalchemy import text

    from services.tracker import store as st
    from shared.db import Store
    rid = common.run_id()
    prefix = f"lbench_{rid}_"
    with common.pg_databases(prefix) as base:
        store = Store("tracker", st.metadata, f"{base}board")
        engine = store.engine            # creates the database and the tracker's schema
        started = time.perf_counter()
        with engine.begin() as conn:       # bulk load: the tracker's indexes built after
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            for index in [*st.handoffs.indexes, *st.handoff_units.indexes]:
                index.drop(conn)
            conn.execute(text("SELECT setseed(0.2026)"))
            conn.execute(text(GENERATE), {"rows": rows})
            conn.execute(text(UNITS))
            for index in [*st.handoffs.indexes, *st.handoff_units.indexes]:
                index.create(conn)
        generated = time.perf_counter() - started
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE handoffs"))
            conn.execute(text("VACUUM ANALYZE handoff_units"))
            size = conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size("
                                     "'handoffs'))")).scalar()
            counts = conn.execute(text("SELECT count(*), count(*) FILTER (WHERE open), "
                                       "count(*) FILTER (WHERE open AND deadline_due < now()) "
                                       "FROM handoffs")).one()
        loaded = time.perf_counter() - started
        common.log(f"board: {rows} rows generated in {generated:.1f}s, ready {loaded:.1f}s")
        out = {"rows": counts[0], "open": counts[1], "overdue": counts[2], "size": size,
               "load_seconds": loaded,
               "indexes": sorted(i.name for i in st.handoffs.indexes),
               "queries": _time_all(store, repeat)}
        store.dispose()
        return out


def _time_all(store, repeat: int) -> list[dict]:
    now = datetime.now(timezone.utc)
    from services.tracker import store as st
    results = []
    for label, filters in FILTERS:
        with store.session() as s:
            statement = _compiled(s, now, filters)       # also warms the cache
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                rows = st.board(s, now, **filters)
                times.append(time.perf_counter() - t)
            plan, sql_ms = _plan(s.connection(), statement)
        times.sort()
        results.append({"filter": label, "rows": len(rows), "plan": plan, "sql_ms": sql_ms,
                        "p50_ms": common.percentile(times, 50) * 1e3,
                        "p95_ms": common.percentile(times, 95) * 1e3})
    return results

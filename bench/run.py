"""``make bench`` / ``python -m bench``: throughput and latency of Liandong's event path
against the broker's own ceiling, side by side, in one run on this machine.

  (a) pika raw ceiling   persistent 1 KiB messages, pipelined publisher confirms,
                         quorum queue, manual acks
  (b) naive nameko       EventDispatcher per event -> event_handler (no database)
  (c) liandong           the real services (`nameko run services.<name>.service`):
                         police_handoff.create RPC -> commit with outbox -> relay
                         (batched confirms) -> tracker inbox + read-model commit

Each runs back to back ("max") and open-loop at ``--rate`` events/s; (c) also at
``--low-rate``. Latency is dispatch to consumer (commit for (c)). Then the outbox relay
alone, and the tracker's board query over ``--board-rows`` referrals in PostgreSQL.
Every scenario has its own RabbitMQ vhost and PostgreSQL databases, dropped after.

``--smoke`` runs every scenario briefly (seconds each) under a hard time-out and exits
non-zero on any exception, failed request, dead letter or missing event: ``make test``
runs it (tests/e2e/test_bench_smoke_e2e.py). It checks completion and counts, never
timings.

The numbers are this machine's, with whatever else runs on it: the CPU table says
how busy the other processes were. Nothing here asserts a timing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime

from bench import common

# issue 16: the throughput targets of issue 8 are retired (a province's load is a few events
# a minute); (c) is compared with the straightforward peer (d) instead
TARGETS = {"c_over_d": 2.0, "board_ms": 50, "drain": 2000, "rebuild_over_copy": 0.25}


def parse(argv=None) -> argparse.Namespace:
    class Formatter(argparse.ArgumentDefaultsHelpFormatter,
                    argparse.RawDescriptionHelpFormatter):
        pass
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=Formatter)
    p.add_argument("--only", default="a,b,c,d,crash,drain,rebuild,cold,relay,board,"
                                     "penalties,documents,alerts,mqtt",
                   help="comma list of parts to run: a, b, c, d, crash (kill -9 of (c)'s "
                        "and (d)'s producer mid-run), drain (the tracker empties a backlog), "
                        "rebuild (rebuild-tracker vs COPY), cold (`liandong run` until every "
                        "service answers), relay, board, penalties (the import of 5,000 penalty "
                        "decisions), documents (a case-file upload and download of "
                        "--doc-mib), alerts (alert intake in PostgreSQL, and over HTTP "
                        "through the gateway), mqtt (the MQTT intake "
                        "vs raw publish -> subscribe on a private Mosquitto, p99 at 200 "
                        "alerts/s)")
    p.add_argument("--drain-events", type=int, default=100_000,
                   help="backlog in tracker.events for the drain measurement")
    p.add_argument("--history-events", type=int, default=1_000_000,
                   help="events of history for rebuild-tracker vs COPY")
    p.add_argument("--doc-mib", type=int, default=200,
                   help="documents: size of the file uploaded and downloaded, MiB")
    p.add_argument("--seconds", type=float, default=4,
                   help="measured phase of each back-to-back (max) run")
    p.add_argument("--rate", type=float, default=500, help="fixed offered rate, events/s")
    p.add_argument("--rate-seconds", type=float, default=3,
                   help="measured phase of each fixed-rate run")
    p.add_argument("--low-rate", type=float, default=20,
                   help="(c) also at this rate (one it can sustain); 0 = skip")
    p.add_argument("--backends", default="postgres",
                   help="databases for (c): postgres, sqlite or both (comma list)")
    p.add_argument("--warmup", type=int, default=100, help="nameko scenarios: warm-up events")
    p.add_argument("--warmup-rate", type=float, default=100, help="events/s of the warm-up")
    p.add_argument("--max-workers", type=int, default=10,
                   help="nameko max_workers (also the consumers' prefetch), as MAX_WORKERS")
    p.add_argument("--window", type=int, default=1000,
                   help="(a) unconfirmed publishes in flight")
    p.add_argument("--prefetch", type=int, default=1000, help="(a) consumer prefetch")
    p.add_argument("--relay-events", type=int, default=2000,
                   help="outbox backlog for the relay-only measurement")
    p.add_argument("--board-rows", type=int, default=1_000_000,
                   help="referrals generated for the board query")
    p.add_argument("--board-repeat", type=int, default=6, help="timed runs per board filter")
    p.add_argument("--repeat", type=int, default=1, help="run (a), (b), (c) this many times")
    p.add_argument("--drain-timeout", type=float, default=120,
                   help="(c) seconds to wait for the tracker to apply every event")
    p.add_argument("--smoke", action="store_true",
                   help="every scenario briefly (a few events each, PostgreSQL); exit 1 on "
                        "an exception, failed request, dead letter or missing event")
    p.add_argument("--full", action="store_true",
                   help="the issue's full sizes: the defaults here (`make bench ARGS=--full` "
                        "also makes bench.history run its 1M size)")
    p.add_argument("--timeout", type=float, default=0,
                   help="hard time-out of the whole run, seconds (0 = none; --smoke: 420)")
    p.add_argument("--json", metavar="PATH", help="also write every result as JSON here")
    p.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    opts = p.parse_args(argv)
    if opts.smoke:
        opts.seconds, opts.rate, opts.rate_seconds, opts.low_rate = 1, 50, 1, 0
        opts.warmup, opts.warmup_rate, opts.repeat, opts.backends = 10, 50, 1, "postgres"
        opts.relay_events, opts.board_rows, opts.board_repeat = 200, 5000, 2
        opts.drain_events, opts.history_events, opts.doc_mib = 300, 300, 4
        opts.drain_timeout = 30
        opts.only = ",".join(p for p in opts.only.split(",") if p != "crash")
        opts.timeout = opts.timeout or 420     # every part starts its own stack
    return opts


class BenchTimeout(BaseException):
    """The hard time-out: unwinds every scenario (its finally blocks stop the services
    and drop the vhost and databases), past the per-scenario ``except Exception``."""


def _hard_timeout(seconds: float) -> None:
    import signal

    def expired(*_):
        def give_up(*_):
            print("bench: cleanup after the time-out took 60 s more; exiting", file=sys.stderr)
            os._exit(3)
        signal.signal(signal.SIGALRM, give_up)
        signal.alarm(60)
        raise BenchTimeout(f"bench: hard time-out of {seconds:g} s reached")
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(max(1, int(seconds)))


def problems(results: list[dict], relay: list[dict], board: dict | None,
             failed: list[str], parts: set[str]) -> list[str]:
    """What makes the run fail (never a timing): a scenario that raised, or lost, doubled
    or dead-lettered events, or did not run at all."""
    out = list(failed)
    for r in results:
        if r.get("lost") and not r["name"].startswith("(d)"):
            out.append(f"{r['name']}: {r['lost']} events lost when the producer was killed")
        for key in ("failed", "missing", "dead_letters"):
            if r.get(key):
                out.append(f"{r['name']} {r['mode']}: {r[key]} {key.replace('_', ' ')}"
                           + (f" ({r.get('error')})" if key == "failed" else ""))
    for r in relay:
        if r["queued"] != r["events"]:
            out.append(f"{r['name']}: {r['events']} relayed, {r['queued']} in the queue")
    if "board" in parts and board and not all(q["rows"] for q in board["queries"][:1]):
        out.append("board: the first filter returned no row")
    return out


# ------------------------------------------------------------------------ printing

def _f(value, digits=1) -> str:
    if value is None or value != value:      # None or NaN
        return "-"
    return f"{value:,.{digits}f}"


def _cpu_cols(r: dict) -> str:
    cpu = r.get("cpu")
    if not cpu:
        return ""
    used, n = cpu["cpu_seconds"], max(1, r["events"])
    per = [used.get(k, 0.0) * 1e3 / n for k in ("producer", "consumer", "postgres", "rabbitmq")]
    others = used.get("other", 0.0) / cpu["seconds"]
    busy = cpu["busy"] / cpu["seconds"] / cpu["cores"] * 100
    return "  ".join(f"{v:8.2f}" for v in [*per, sum(per)]) + f"  {others:8.2f}  {busy:7.0f}%"


def print_report(results: list[dict], relay: list[dict], board: dict | None, opts) -> dict:
    line = "-" * 112
    print()
    print(f"Liandong bench  {datetime.now():%Y-%m-%d %H:%M}  {_cpu_model()}  "
          f"x {os.cpu_count()} cores (shared with other work)  "
          f"Python {platform.python_version()}")
    print(line)
    print(f"{'scenario':34} {'mode':>7} {'events':>7} {'events/s':>9} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'p99 ms':>8} {'offered/s':>9}  notes")
    print(line)
    for r in results:
        notes = []
        if r.get("missing"):
            notes.append(f"{r['missing']} MISSING")
        if r.get("failed"):
            notes.append(f"{r['failed']} failed: {r.get('error')}")
        if r.get("duplicates"):
            notes.append(f"{r['duplicates']} duplicates")
        if r["mode"].endswith("/s") and r["rate"] < 0.95 * float(r["mode"].rstrip("/s")):
            notes.append("rate not sustained: backlog")
        if "lost" in r:
            notes.append(f"producer killed mid-run: {r['lost']} of {r['committed']} "
                         f"committed events LOST")
        print(f"{r['name']:34} {r['mode']:>7} {r['events']:>7} {_f(r['rate'], 0):>9} "
              f"{_f(r['p50_ms']):>8} {_f(r['p95_ms']):>8} {_f(r['p99_ms']):>8} "
              f"{_f(r['producer_rate'], 0):>9}  {'; '.join(notes)}")
    for r in relay:
        print(f"{r['name']:42} {r['events']:>7} {_f(r['rate'], 0):>9}   "
              f"(outbox backlog -> broker, confirmed and marked sent)")
    print(line)
    if results:
        print("CPU ms per event, from the measured phase until the consumer had everything "
              "('others': cores used meanwhile by\nunrelated processes; 'busy': the whole "
              "machine; rabbitmq is one server process, other vhosts' traffic included)")
        print(f"{'scenario':34} {'mode':>7}  {'producer':>8}  {'consumer':>8}  {'postgres':>8}  "
              f"{'rabbitmq':>8}  {'total':>8}  {'others':>8}  {'busy':>8}")
        for r in results:
            if r.get("cpu"):
                print(f"{r['name']:34} {r['mode']:>7}  {_cpu_cols(r)}")
    staged = [r for r in results if r.get("stages")]
    if staged:
        print(line)
        print("(c) where the latency goes, ms p50 / p99 (outbox row written inside the "
              "request's transaction, marked sent after the confirms)")
        names = list(staged[0]["stages"])
        print(f"{'scenario':34} {'mode':>7}  " + "  ".join(f"{n:>22}" for n in names))
        for r in staged:
            cells = [f"{_f(r['stages'][n][50]):>10} / {_f(r['stages'][n][99]):>9}"
                     for n in names]
            print(f"{r['name']:34} {r['mode']:>7}  " + "  ".join(f"{c:>22}" for c in cells))

    def best(prefix: str, mode: str = "max") -> float | None:
        rates = [r["rate"] for r in results if r["name"].startswith(prefix) and r["mode"] == mode]
        return statistics.median(rates) if rates else None

    a, b = best("(a)"), best("(b)")
    summary = {"a": a, "b": b}
    for backend in opts.backends.split(","):
        c = best(f"(c) liandong {backend}")
        if c is None:
            continue
        rate_mode = f"{opts.rate:g}/s"
        p99s = [r["p99_ms"] for r in results
                if r["name"] == f"(c) liandong {backend}" and r["mode"] == rate_mode]
        p99 = statistics.median(p99s) if p99s else None
        print(line)
        summary[backend] = {"c": c, "c_over_a": c / a if a else None,
                            "c_over_b": c / b if b else None, "p99_at_rate": p99}
        low = [r["p99_ms"] for r in results if r["name"] == f"(c) liandong {backend}"
               and opts.low_rate and r["mode"] == f"{opts.low_rate:g}/s"]
        print(f"(c) {backend}: {_f(c, 0)} events/s   (c)/(a) = "
              f"{_f(c / a if a else None, 3)}   (c)/(b) = {_f(c / b if b else None, 2)}   "
              f"p99 at {opts.rate:g}/s = {_f(p99)} ms"
              + (f"   p99 at {opts.low_rate:g}/s = {_f(statistics.median(low))} ms"
                 if low else ""))
        d = best(f"(d) peer rpc+orm {backend}")
        c_cpu, d_cpu = (_cpu_per_event(results, f"{x} {backend}")
                        for x in ("(c) liandong", "(d) peer rpc+orm"))
        summary[backend].update({"d": d, "c_over_d": c / d if d else None,
                                 "cpu_ms_c": c_cpu, "cpu_ms_d": d_cpu})
        print(f"(c)/(d) {backend}: events/s {_f(c, 0)} / {_f(d, 0)} = "
              f"{_f(c / d if d else None, 2)} (goal >= {TARGETS['c_over_d']:g}: "
              f"{_verdict(c / d if d else None, TARGETS['c_over_d'])});  CPU ms per event "
              f"{_f(c_cpu, 2)} / {_f(d_cpu, 2)} = "
              f"{_f(c_cpu / d_cpu if c_cpu and d_cpu else None, 2)}")
        for r in results:
            if "lost" in r and r["name"].endswith(backend):
                print(f"    {r['name']}: producer killed mid-run, {r['lost']} of "
                      f"{r['committed']} committed events lost")
    if board:
        print(line)
        print(f"board query over {board['rows']:,} referrals in PostgreSQL ({board['open']:,} "
              f"open, {board['overdue']:,} overdue, {board['size']}; generated + indexed + "
              f"analyzed in {board['load_seconds']:.0f} s); services.tracker.store.board(), "
              f"limit 200")
        print(f"tracker indexes: {', '.join(board['indexes'])}")
        _board_rows(board["queries"])
        worst = max(q["p95_ms"] for q in board["queries"][:5])
        print(f"    target: board < {TARGETS['board_ms']} ms at 1M (p95, filters without text "
              f"search; here {board['rows']:,} rows): "
              f"{_verdict(worst, TARGETS['board_ms'], lower_is_better=True)}")
        summary["board_p95_ms"] = worst
    print(line)
    return summary


def _recovery_rows(recovered: list[dict]) -> dict:
    """Recovery speed (issue 16) with its goal, met or missed."""
    out = {}
    for r in recovered:
        if r["mode"] == "cold":
            print(f"{r['name']}: `liandong run --detach` on empty databases until all "
                  f"{r['services']} services answer their health RPC: {r['seconds']:.1f} s")
            out[r["name"]] = r["seconds"]
            continue
        if r["mode"] == "drain":
            print(f"{r['name']}: {r['events']:,} of {r['queued']:,} events in "
                  f"{r['seconds']:.1f} s from the tracker's process start = "
                  f"{_f(r['rate'], 0)} events/s (goal >= {TARGETS['drain']:,}/s: "
                  f"{_verdict(r['rate'], TARGETS['drain'])})" + _drain_cpu(r))
        else:
            ratio = r["rate"] / r["copy_rate"]
            print(f"{r['name']}: {r['events']:,} of {r['queued']:,} events in "
                  f"{r['seconds']:.1f} s = {_f(r['rate'], 0)} events/s; COPY of the same rows "
                  f"{_f(r['copy_rate'], 0)} rows/s; ratio {ratio:.3f} (goal >= "
                  f"{TARGETS['rebuild_over_copy']}: "
                  f"{_verdict(ratio, TARGETS['rebuild_over_copy'])})")
        out[r["name"]] = r["rate"]
    if recovered:
        print("-" * 112)
    return out


def _drain_cpu(r: dict) -> str:
    """'; CPU per event: tracker x ms + PostgreSQL y ms' of a drain (load-independent)."""
    cpu = r.get("cpu")
    if not cpu or not r["events"]:
        return ""
    used = cpu["cpu_seconds"]
    tracker, pg = (used.get(k, 0.0) * 1e3 / r["events"] for k in ("consumer", "postgres"))
    return f"; CPU per event: tracker {tracker:.2f} ms + PostgreSQL {pg:.2f} ms"


def _cpu_per_event(results: list[dict], name: str) -> float | None:
    """Median over the back-to-back runs of ``name``: producer + consumer + PostgreSQL +
    RabbitMQ CPU ms per event (the client's own CPU left out)."""
    per = [sum(r["cpu"]["cpu_seconds"].get(k, 0.0) for k in
               ("producer", "consumer", "postgres", "rabbitmq")) * 1e3 / max(1, r["events"])
           for r in results if r["name"] == name and r["mode"] == "max" and r.get("cpu")]
    return statistics.median(per) if per else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _board_rows(queries: list[dict]) -> None:
    print(f"    {'filter':40} {'rows':>5} {'p50 ms':>8} {'p95 ms':>8} {'SQL ms':>8}  plan")
    for q in queries:
        print(f"    {q['filter']:40} {q['rows']:>5} {_f(q['p50_ms']):>8} {_f(q['p95_ms']):>8} "
              f"{_f(q.get('sql_ms')):>8}  {q['plan']}")


def _verdict(value, target, lower_is_better=False) -> str:
    if value is None:
        return "not measured"
    ok = value < target if lower_is_better else value >= target
    if ok:
        return "met"
    factor = value / target if lower_is_better else target / value if value else float("inf")
    return f"MISSED ({factor:.1f}x off)"


# ------------------------------------------------------------------------ main

def main(argv=None) -> int:
    opts = parse(argv)
    if opts.verbose:
        os.environ["BENCH_VERBOSE"] = "1"
    parts = set(opts.only.split(","))
    from bench import live, scenarios
    results: list[dict] = []
    relay: list[dict] = []
    board = None
    failed: list[str] = []
    recovered: list[dict] = []
    penalties = documents = alerts = mqtt = None
    started = time.monotonic()
    if opts.timeout:
        _hard_timeout(opts.timeout)

    def run(label, fn, *args):
        common.log(f"{label} ...")
        try:
            out = fn(*args)
        except Exception as exc:  # noqa: BLE001 - report it and go on with the others
            print(f"bench: {label} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(f"{label}: {type(exc).__name__}: {exc}")
            return None
        if isinstance(out, dict) and "rate" in out:
            common.log(f"{label}: {out['rate']:.0f} events/s p99 {out.get('p99_ms', 0):.1f} ms")
        return out

    try:
        _scenarios(opts, parts, run, results, live, scenarios)
        if "drain" in parts:
            from bench import recovery
            drained = run("drain", recovery.drain, opts.drain_events,
                          max(opts.drain_timeout, opts.drain_events / 200))
            recovered.extend([drained] if drained else [])
        if "rebuild" in parts:
            from bench import recovery
            rebuilt = run("rebuild", recovery.rebuild, opts.history_events,
                          max(300, opts.history_events / 100))
            recovered.extend([rebuilt] if rebuilt else [])
        if "cold" in parts:
            from bench import recovery
            cold = run("cold", recovery.cold_start, 120)
            recovered.extend([cold] if cold else [])
        if "relay" in parts:
            from bench import relay_stage
            relay = run("relay", relay_stage.run, opts.relay_events) or []
        if "board" in parts:
            from bench import board as board_mod
            board = run("board", board_mod.run, opts.board_rows, opts.board_repeat)
        if "penalties" in parts:
            from bench import penalties as penalties_mod
            penalties = run("penalties", penalties_mod.run,
                            *((500, 1) if opts.smoke else ()))
        if "documents" in parts:
            from bench import documents as documents_mod
            documents = run("documents", documents_mod.run, opts.doc_mib)
        if "alerts" in parts:
            from bench import alerts as alerts_mod
            alerts = run("alerts", alerts_mod.run, *((300,) if opts.smoke else ()))
            over_http = run("alerts http", alerts_mod.http, *((100,) if opts.smoke else ()))
            if alerts and over_http:
                alerts["http"] = over_http
            if over_http and over_http["created"] != over_http["alerts"]:
                failed.append(f"alerts http: {over_http['alerts'] - over_http['created']} of "
                              f"{over_http['alerts']} alerts not committed as new tasks "
                              f"({over_http['statuses']})")
        if "mqtt" in parts:
            from bench import mqtt as mqtt_mod
            mqtt = run("mqtt", mqtt_mod.run, *((300, 200.0, 1.0) if opts.smoke else ()))
            for row in ("storm", "paced"):
                if mqtt and mqtt[row]["applied"] != mqtt[row]["alerts"]:
                    failed.append(f"mqtt {row}: {mqtt[row]['alerts'] - mqtt[row]['applied']} "
                                  f"of {mqtt[row]['alerts']} alerts not applied")
    except BenchTimeout as exc:
        failed.append(str(exc))
    finally:
        import signal
        signal.alarm(0)
    results = [r for r in results if r]
    order = {"(a)": 0, "(b)": 1, "(c)": 2, "(d)": 3}
    results.sort(key=lambda r: (order.get(r["name"][:3], 9), r["name"],
                                r["mode"] != "max", -_rate_of(r["mode"])))
    summary = print_report(results, relay, board, opts)
    if penalties:
        from bench import penalties as penalties_mod
        penalties_mod.report(penalties)
    if documents:
        from bench import documents as documents_mod
        documents_mod.report(documents)
    if alerts:
        from bench import alerts as alerts_mod
        alerts_mod.print_report(alerts)
    if mqtt:
        from bench import mqtt as mqtt_mod
        mqtt_mod.print_report(mqtt)
    summary["recovery"] = _recovery_rows(recovered)
    print(f"bench took {time.monotonic() - started:.0f} s")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"results": results, "relay": relay, "board": board, "summary": summary,
                       "recovery": recovered, "penalties": penalties,
                       "documents": documents, "alerts": alerts, "mqtt": mqtt,
                       "options": vars(opts)}, f, indent=1, ensure_ascii=False, default=str)
    found = problems(results + recovered, relay, board, failed, parts)
    events = sum(r["events"] for r in results + recovered + relay)
    print(f"bench: {len(results) + len(recovered) + len(relay)} scenario run(s), "
          f"{events} events measured, "
          f"{len(found)} problem(s)")
    for problem in found:
        print(f"  PROBLEM {problem}")
    return 1 if found else 0


def _scenarios(opts, parts, run, results, live, scenarios) -> None:
    for _ in range(opts.repeat):
        modes = ((0, opts.seconds),) if opts.smoke else \
            ((0, opts.seconds), (opts.rate, opts.rate_seconds))
        for rate, seconds in modes:
            if "a" in parts:
                results.append(run("(a)", scenarios.raw, opts, rate, seconds))
            if "b" in parts:
                results.append(run("(b)", scenarios.naive, opts, rate, seconds))
            for backend in opts.backends.split(","):
                if "c" in parts:        # (c) and (d) side by side, in the same run
                    results.append(run(f"(c) {backend}", live.run, opts, rate, seconds,
                                       backend))
                if "d" in parts:
                    results.append(run(f"(d) {backend}", live.run, opts, rate, seconds,
                                       backend, live.Peer()))
        if opts.low_rate:
            for backend in opts.backends.split(","):
                if "c" in parts:
                    results.append(run(f"(c) {backend} low rate", live.run, opts,
                                       opts.low_rate, opts.rate_seconds, backend))
    if "crash" in parts:
        for backend in opts.backends.split(","):
            for system in (live.Liandong(), live.Peer()):
                results.append(run(f"{system.label} {backend} kill -9", live.run, opts, 0,
                                   max(opts.seconds, 4), backend, system, True))


def _rate_of(mode: str) -> float:
    return float(mode.rstrip("/s")) if mode.endswith("/s") else 0.0

"""``make bench`` / ``python -m bench``: throughput and latency of Liandong's event path
against the broker's own ceiling, side by side, in one run on this machine.

  (a) pika raw ceiling   persistent 1 KiB messages, pipelined publisher confirms,
                         quorum queue, manual acks
  (b) naive nameko       EventDispatcher per event -> event_handler (no database)
  (c) liandong           request (police_handoff create) -> commit with outbox ->
                         relay (batched confirms) -> tracker inbox + read-model commit

Each runs back to back ("max") and open-loop at ``--rate`` events/s; (c) also at
``--low-rate``. Latency is dispatch to consumer (commit for (c)). Then the outbox relay
alone, and the tracker's board query over ``--board-rows`` referrals in PostgreSQL.
Every scenario has its own RabbitMQ vhost and PostgreSQL databases, dropped after.

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

TARGETS = {"c_rate": 3000, "c_over_a": 0.2, "c_over_b": 2.5, "p99_ms": 20, "board_ms": 50}


def parse(argv=None) -> argparse.Namespace:
    class Formatter(argparse.ArgumentDefaultsHelpFormatter,
                    argparse.RawDescriptionHelpFormatter):
        pass
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=Formatter)
    p.add_argument("--only", default="a,b,c,relay,board,penalties,alerts",
                   help="comma list of parts to run: a, b, c, relay, board, penalties "
                        "(the import of 5,000 penalty decisions), alerts (alert intake "
                        "in PostgreSQL)")
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
    p.add_argument("--json", metavar="PATH", help="also write every result as JSON here")
    p.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    return p.parse_args(argv)


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
        if r["mode"] != "max" and r["rate"] < 0.95 * float(r["mode"].rstrip("/s")):
            notes.append("rate not sustained: backlog")
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
        print(f"    targets: >= {TARGETS['c_rate']} events/s: {_verdict(c, TARGETS['c_rate'])};"
              f"  >= {TARGETS['c_over_a']} x (a): "
              f"{_verdict(c / a if a else None, TARGETS['c_over_a'])};"
              f"  >= {TARGETS['c_over_b']} x (b): "
              f"{_verdict(c / b if b else None, TARGETS['c_over_b'])};"
              f"  p99 < {TARGETS['p99_ms']} ms at {opts.rate:g}/s: "
              f"{_verdict(p99, TARGETS['p99_ms'], lower_is_better=True)}")
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
    from bench import scenarios
    results: list[dict] = []
    relay: list[dict] = []
    board = None
    started = time.monotonic()

    def run(label, fn, *args):
        common.log(f"{label} ...")
        try:
            out = fn(*args)
        except Exception as exc:  # noqa: BLE001 - report it and go on with the others
            print(f"bench: {label} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return None
        if isinstance(out, dict) and "rate" in out:
            common.log(f"{label}: {out['rate']:.0f} events/s p99 {out['p99_ms']:.1f} ms")
        return out

    for _ in range(opts.repeat):
        for rate, seconds in ((0, opts.seconds), (opts.rate, opts.rate_seconds)):
            if "a" in parts:
                results.append(run("(a)", scenarios.raw, opts, rate, seconds))
            if "b" in parts:
                results.append(run("(b)", scenarios.naive, opts, rate, seconds))
            if "c" in parts:
                for backend in opts.backends.split(","):
                    results.append(run(f"(c) {backend}", scenarios.liandong, opts, rate,
                                       seconds, backend))
        if "c" in parts and opts.low_rate:
            for backend in opts.backends.split(","):
                results.append(run(f"(c) {backend} low rate", scenarios.liandong, opts,
                                   opts.low_rate, opts.rate_seconds, backend))
    results = [r for r in results if r]
    order = {"(a)": 0, "(b)": 1, "(c)": 2}
    results.sort(key=lambda r: (order.get(r["name"][:3], 9), r["name"],
                                r["mode"] != "max", -_rate_of(r["mode"])))
    if "relay" in parts:
        from bench import relay_stage
        relay = run("relay", relay_stage.run, opts.relay_events) or []
    if "board" in parts:
        from bench import board as board_mod
        board = run("board", board_mod.run, opts.board_rows, opts.board_repeat)
    penalties = None
    if "penalties" in parts:
        from bench import penalties as penalties_mod
        penalties = run("penalties", penalties_mod.run)
    alerts = None
    if "alerts" in parts:
        from bench import alerts as alerts_mod
        alerts = run("alerts", alerts_mod.run)
    summary = print_report(results, relay, board, opts)
    if penalties:
        penalties_mod.report(penalties)
    if alerts:
        alerts_mod.print_report(alerts)
    print(f"bench took {time.monotonic() - started:.0f} s")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"results": results, "relay": relay, "board": board,
                       "penalties": penalties, "alerts": alerts, "summary": summary,
                       "options": vars(opts)}, f, indent=1, ensure_ascii=False, default=str)
    return 0


def _rate_of(mode: str) -> float:
    return 0.0 if mode == "max" else float(mode.rstrip("/s"))

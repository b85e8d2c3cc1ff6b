"""Running scenarios (a) and (b): a throwaway vhost, the consumer process, then the
producer process, and the statistics of what the consumer recorded. (c) runs the real
services: bench/live.py."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from bench import common
from bench.cpu import CpuMeter


def _stats(name: str, mode: str, run_dir: Path, **extra) -> dict:
    done = json.loads((run_dir / "done.json").read_text())
    result = json.loads((run_dir / "consumer.json").read_text())
    measured = done["measured"]
    first = measured["first"]
    events = [(e[1], e[2]) for e in result["events"] if e[0] >= first]
    if not events:
        raise RuntimeError(f"{name}: the consumer recorded no measured event")
    start = min(d for d, _ in events)
    end = max(c for _, c in events)
    missing = done["expected"] - result["received"]
    return common.summarize(
        name, [c - d for d, c in events], len(events), end - start, mode=mode,
        producer_rate=measured["ok"] / max(1e-9, measured["t_end"] - measured["t_start"]),
        failed=measured["failed"] + done["warmup"]["failed"],
        error=measured.get("error") or done["warmup"].get("error"),
        missing=missing, duplicates=result["duplicates"], max_lag_ms=measured["max_lag"] * 1e3,
        **extra)


def _finish(procs, run_dir: Path) -> None:
    (run_dir / "stop").write_text("stop")
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - a stuck worker must not hang the bench
            proc.kill()
            proc.wait()


def run_pair(name: str, mode: str, consumer_args: list[str], producer_args: list[str],
             module: str, seconds: float, env: dict | None = None,
             run_dir: Path | None = None, db_prefix: str | None = None, **extra) -> dict:
    """Start consumer and producer; once both are READY, say go; collect the
    consumer's record."""
    own_dir = run_dir is None
    run_dir = run_dir or Path(tempfile.mkdtemp(prefix="liandong-bench-"))
    procs = []
    try:
        consumer = common.spawn(module, *consumer_args, "--dir", str(run_dir), env=env)
        producer = common.spawn(module, *producer_args, "--dir", str(run_dir), env=env)
        procs += [consumer, producer]
        common.expect(consumer, "READY", timeout=120)
        common.expect(producer, "READY", timeout=120)
        (run_dir / "go").write_text("go")
        common.expect(producer, "MEASURE", timeout=120)
        meter = CpuMeter(db_prefix)
        meter.start()
        common.expect(consumer, "FINISHED", timeout=seconds + 300)
        cpu = meter.stop({producer.pid: "producer", consumer.pid: "consumer"})
        _finish(procs, run_dir)
        out = _stats(name, mode, run_dir, **extra)
        out["cpu"] = cpu
        return out
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        if own_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


def _mode(rate: float) -> str:
    return f"{rate:g}/s" if rate else "max"


def raw(opts, rate: float, seconds: float) -> dict:
    """(a) pika, persistent 1 KiB messages, pipelined confirms, manual acks."""
    rid = common.run_id()
    with common.vhost(f"liandong-bench-a-{rid}") as uri:
        args = ["--amqp", uri, "--seconds", str(seconds), "--rate", str(rate),
                "--window", str(opts.window),
                "--prefetch", str(opts.prefetch)]
        return run_pair("(a) pika raw ceiling", _mode(rate), ["consumer", *args],
                        ["publisher", *args], "bench.raw", seconds)


def _node_args(opts, uri: str, rate: float, seconds: float) -> list[str]:
    return ["--amqp", uri, "--seconds", str(seconds), "--rate", str(rate),
            "--warmup", str(opts.warmup), "--warmup-rate", str(opts.warmup_rate),
            "--max-workers", str(opts.max_workers)]


def naive(opts, rate: float, seconds: float) -> dict:
    """(b) nameko EventDispatcher per event -> event_handler."""
    rid = common.run_id()
    with common.vhost(f"liandong-bench-b-{rid}") as uri:
        args = _node_args(opts, uri, rate, seconds)
        return run_pair("(b) naive nameko", _mode(rate), ["naive-consumer", *args],
                        ["naive-producer", *args], "bench.node", seconds)

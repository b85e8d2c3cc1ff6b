"""Shared pieces of the benchmark: throwaway RabbitMQ virtual hosts and PostgreSQL
databases, percentiles, and the small file protocol the worker processes use."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RABBIT = os.environ.get("BENCH_RABBIT", "guest:guest@127.0.0.1:5672")
PG_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432")


_T0 = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr with ``BENCH_VERBOSE=1`` (the table goes to stdout)."""
    if os.environ.get("BENCH_VERBOSE"):
        print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def run_id() -> str:
    return uuid.uuid4().hex[:8]


def amqp_uri(vhost: str) -> str:
    from urllib.parse import quote
    return f"amqp://{RABBIT}/{quote(vhost, safe='')}"


@contextmanager
def vhost(name: str):
    """A RabbitMQ virtual host of our own for one scenario, deleted afterwards."""
    if not shutil.which("rabbitmqctl"):
        raise SystemExit("bench: rabbitmqctl not found (needed for a throwaway vhost)")

    def ctl(*args, check=True):
        return subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True)
    log(f"vhost {name}")
    ctl("add_vhost", name)
    ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    try:
        yield amqp_uri(name)
    finally:
        log(f"delete vhost {name}")
        ctl("delete_vhost", name, check=False)
        log("deleted")


def _admin_engine():
    from sqlalchemy import create_engine

    from shared.db import normalize_url
    return create_engine(normalize_url(f"{PG_DSN}/postgres"), isolation_level="AUTOCOMMIT")


@contextmanager
def pg_databases(prefix: str):
    """Databases whose names start with ``prefix`` are dropped afterwards (the services
    create theirs on first start)."""
    try:
        yield f"{PG_DSN}/{prefix}"
    finally:
        drop_databases(prefix)


def drop_databases(prefix: str) -> None:
    from sqlalchemy import text
    engine = _admin_engine()
    with engine.connect() as conn:
        names = conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                             {"p": prefix + "%"}).scalars().all()
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (NaN when empty)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def summarize(name: str, latencies_s: list[float], count: int, seconds: float,
              **extra) -> dict:
    lat = sorted(latencies_s)
    return {"name": name, "events": count, "seconds": seconds,
            "rate": count / seconds if seconds > 0 else float("nan"),
            "p50_ms": percentile(lat, 50) * 1e3, "p95_ms": percentile(lat, 95) * 1e3,
            "p99_ms": percentile(lat, 99) * 1e3, "max_ms": (lat[-1] * 1e3 if lat else None),
            **extra}


def paced(first: int, submit, *, count=None, seconds=None, rate=0.0,
          sleep=time.sleep) -> dict:
    """Hand indices ``first, first+1, ...`` to ``submit`` (which blocks while every worker
    is busy) until ``count`` were handed or ``seconds`` passed; open-loop at ``rate``/s
    when given (``max_lag``: how late the latest index was handed), else back to back."""
    i, t0, lag = first, time.time(), 0.0
    while True:
        now = time.time()
        if (count is not None and i - first >= count) or \
                (seconds is not None and now - t0 >= seconds):
            break
        if rate:
            due = t0 + (i - first) / rate
            if due > now:
                sleep(due - now)
            else:
                lag = max(lag, now - due)
        submit(i)
        i += 1
    return {"first": first, "sent": i - first, "t_start": t0, "max_lag": lag}


# --------------------------------------------------------------- worker processes

def spawn(module: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    """Start ``python -m module args`` from the project root (stdout piped, line mode)."""
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, bufsize=1,
                            env={**os.environ, "PYTHONWARNINGS": "ignore",
                                 "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
                                 # throwaway services: development token keys, made on
                                 # first use in the scenario's own LIANDONG_DATA_DIR
                                 "LIANDONG_ENV": "development",
                                 **(env or {})})


def expect(proc: subprocess.Popen, word: str, timeout: float = 120) -> str:
    """Wait for a line starting with ``word`` on a worker's stdout; return the rest."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[2]} exited ({proc.returncode}) "
                                   f"before saying {word}")
            continue
        if line.startswith(word):
            log(f"{proc.args[2]} {proc.args[3]}: {word}")
            return line[len(word):].strip()
    raise TimeoutError(f"{proc.args[2]} did not say {word} within {timeout} s")


def say(word: str) -> None:
    """A worker's line to the orchestrator."""
    print(word, flush=True)

"""`make bench ARGS=--smoke` as a user runs it (``python -m bench --smoke``, a
subprocess): every scenario briefly, against the real services, under the bench's own
hard time-out. Asserts that it completed and what it counted — never a timing."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_bench_smoke_runs_every_scenario_and_loses_nothing(servers, tmp_path):
    report = tmp_path / "bench.json"
    out = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--json", str(report)],
                         cwd=ROOT, capture_output=True, text=True, timeout=540)
    shown = f"stdout:\n{out.stdout[-5000:]}\nstderr:\n{out.stderr[-3000:]}"
    assert out.returncode == 0, shown
    assert "0 problem(s)" in out.stdout, shown
    found = json.loads(report.read_text())
    runs = {(r["name"], r["mode"]): r for r in found["results"]}
    for name in ("(a) pika raw ceiling", "(b) naive nameko", "(c) liandong postgres",
                 "(d) peer rpc+orm postgres"):
        r = runs.get((name, "max"))
        assert r, f"{name} did not run: {sorted(runs)}\n{shown}"
        assert r["events"] > 0 and not r.get("missing") and not r.get("failed"), r
    assert runs[("(c) liandong postgres", "max")]["dead_letters"] == 0
    assert [(r["events"], r["queued"]) for r in found["relay"]] == [(200, 200)] * 2
    recovery = {r["mode"]: r for r in found["recovery"]}
    drain, rebuild = recovery["drain"], recovery["rebuild"]
    assert (drain["events"], drain["missing"], drain["dead_letters"]) == (300, 0, 0), drain
    assert (rebuild["events"], rebuild["missing"]) == (300, 0), rebuild
    from shared.cli import SERVICES
    assert (recovery["cold"]["services"], recovery["cold"]["missing"]) == (len(SERVICES), 0), \
        recovery
    assert found["board"]["rows"] == 5000 and found["board"]["queries"]
    mqtt = found["mqtt"]         # the MQTT intake: every alert published was applied
    assert (mqtt["storm"]["applied"], mqtt["paced"]["applied"]) == (300, 200), mqtt
    http = found["alerts"]["http"]   # POST /api/v1/alerts: every alert a committed task
    assert (http["alerts"], http["created"]) == (100, 100), http

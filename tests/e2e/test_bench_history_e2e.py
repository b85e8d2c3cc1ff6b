"""`make bench` cannot rot unseen: the history bench (issue 21) runs as a subprocess in
its smoke size against the real PostgreSQL and must finish with every row reported.
Asserts completion and counts, never timings."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, _port_open


def test_history_bench_smoke_runs_every_measure():
    if not _port_open("127.0.0.1", 5432):
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    out = subprocess.run([sys.executable, "-m", "bench.history", "--smoke"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert re.search(r"history: 2,000 handoffs, 6,000 steps", text), text
    alerts = int(re.search(r"first sweep: ([\d,]+) alerts", text)[1].replace(",", ""))
    assert alerts > 0
    assert "sweep with nothing new: p50" in text
    views = re.findall(r"statistics (coordinator|county centre|enforcement unit) +by (\w+)",
                       text)
    assert len(views) == 15 and {w for w, _ in views} == {
        "coordinator", "county centre", "enforcement unit"}
    assert re.search(r"coordinator +by kind +: +[\d.]+ ms, +4 groups, +2,000 handoffs", text)

"""``liandong calendar`` as an operator runs it (a subprocess; no services needed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def liandong(*args, calendar_dir=None):
    env = {**os.environ, "LIANDONG_ENV": "development", "LIANDONG_CLOCK": ""}
    if calendar_dir:
        env["LIANDONG_CALENDAR_DIR"] = str(calendar_dir)
    return subprocess.run([sys.executable, "-m", "shared.cli", "calendar", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_show_a_year_says_its_source_and_rest_days():
    out = liandong("2027")
    assert out.returncode == 0, out.stderr
    assert "2027  provisional" in out.stdout
    assert "adjusted working days unknown" in out.stdout
    assert "rest 2027-02-05 .. 2027-02-10" in out.stdout
    data = json.loads(liandong("2026", "--json").stdout)
    assert data["years"][0]["source"] == "notice"
    assert data["years"][0]["reference"] == "国办发明电〔2025〕7号"


def test_check_accepts_the_shipped_notice_and_the_fixture():
    ok = liandong("check", "2026")
    assert ok.returncode == 0 and "OK" in ok.stdout
    fixture = liandong("check", str(ROOT / "tests" / "calendar" / "2027.yaml"))
    assert fixture.returncode == 0 and "国办发明电〔2026〕TEST号" in fixture.stdout


def test_check_rejects_a_bad_file_naming_each_problem(tmp_path):
    bad = tmp_path / "2027.yaml"
    bad.write_text("year: 2027\nnotice: 国办发明电〔2026〕1号\nholidays:\n"
                   "  - name: 春节\n    rest: [2027-02-06, 2027-02-12]\n"
                   "    work: [2027-02-17]\n", encoding="utf-8")
    out = liandong("check", str(bad))
    assert out.returncode == 1
    assert "NOT usable" in out.stderr
    assert "adjusted working day 2027-02-17 is a Wednesday" in out.stderr
    assert "statutory holiday 2027-02-05 (Chinese New Year's Eve) is not a rest day" \
        in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("args", [("check", "2027"), ("check", "twenty"), ("nonsense",)])
def test_clear_errors_without_a_traceback(args, tmp_path):
    out = liandong(*args, calendar_dir=tmp_path)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert out.stderr.strip()

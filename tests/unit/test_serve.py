"""The bounded stop of every service process (shared/serve.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shared import serve
from shared.cli import ROOT, service_command


def test_services_run_through_the_bounded_runner():
    cmd = service_command("tracker")
    assert cmd[1:3] == ["-m", "shared.serve"] and cmd[-1] == "services.tracker.service"


def test_stop_timeout_setting(monkeypatch):
    monkeypatch.delenv("LIANDONG_STOP_TIMEOUT", raising=False)
    assert serve.stop_timeout() == 10
    monkeypatch.setenv("LIANDONG_STOP_TIMEOUT", "2.5")
    assert serve.stop_timeout() == 2.5
    monkeypatch.setenv("LIANDONG_STOP_TIMEOUT", "0")
    with pytest.raises(ValueError, match="positive"):
        serve.stop_timeout()


def test_the_runner_arms_the_bound_once_then_stops_as_nameko_does(monkeypatch):
    from nameko.runners import ServiceRunner
    armed, stopped = [], []
    monkeypatch.setattr(serve, "arm_stop_bound", lambda s, names: armed.append((s, names)))
    monkeypatch.setattr(ServiceRunner, "stop", lambda self: stopped.append(self))
    monkeypatch.setenv("LIANDONG_STOP_TIMEOUT", "4")
    runner = serve.bounded_runner()({})
    runner.stop()
    runner.stop()                                  # SIGTERM, then Ctrl-C: one bound
    assert armed == [(4.0, [])] and stopped == [runner, runner]


def test_a_stop_past_the_bound_is_logged_and_forced(tmp_path):
    """The bound is kept outside the green threads (here one that would wait a minute)."""
    code = ("import eventlet; eventlet.monkey_patch()\n"
            "from shared.serve import arm_stop_bound\n"
            "arm_stop_bound(0.5, ['tracker'])\n"
            "eventlet.sleep(60)\n"
            "print('not forced')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=50)
    assert done.returncode == serve.FORCED_EXIT_STATUS == 1, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert "not forced" not in done.stdout
    assert len(lines) == 1 and lines[0]["event"] == "service_stop_forced", done.stdout
    assert lines[0]["service"] == "tracker" and lines[0]["stop_timeout_s"] == 0.5
    assert lines[0]["level"] == "error" and lines[0]["timestamp"].endswith("Z")

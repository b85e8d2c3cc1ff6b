"""The operator CLI against the running services: seed a demo, show the board,
rebuild the tracker from the services' event history and get the same board."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, wait_for

pytestmark = pytest.mark.e2e

COORD = ["--as", "coordinator", "--unit", "wenzhou-coordination"]


def cli(stack, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT,
                          env=stack.env, capture_output=True, text=True, timeout=300)


def board(stack) -> dict:
    with stack.rpc() as rpc:
        from tests.helpers import COORDINATOR, token
        rows = rpc.tracker.board(token(COORDINATOR), open_only=False, limit=5000)
    return {r["handoff_id"]: (r["state"], r["step"]) for r in rows}


def settled(stack) -> dict:
    """The board once nothing moves by itself any more: the demo's backdated joint actions
    have missed deadlines, which the command service escalates on its timer (every 5 s),
    a step each."""
    def quiet():
        first = board(stack)
        time.sleep(6)
        return first if board(stack) == first else None
    return wait_for(quiet, timeout=120, interval=0, message="the board to settle")


def test_help_on_every_command(stack):
    out = cli(stack, "--help")
    assert out.returncode == 0 and "dead-letters" in out.stdout
    for command in ("run", "board", "handoff", "rebuild-tracker", "demo", "dead-letters",
                    "outbox", "relay", "referral", "evaluate", "procedure", "token", "health",
                    "audit", "keys"):
        sub = cli(stack, command, "--help")
        assert sub.returncode == 0 and "usage: liandong" in sub.stdout, command


def test_demo_seed_board_and_rebuild(stack):
    seeded = cli(stack, "demo", "--count", "6")
    assert seeded.returncode == 0, seeded.stderr
    assert json.loads(seeded.stdout)["referrals"] >= 6   # the demo seeds a minimum
    with stack.rpc() as rpc:
        from tests.helpers import COORDINATOR, token
        expected = {r["id"]: (r["state"], r["step"])
                    for r in rpc.police_handoff.list(token(COORDINATOR), limit=1000)}
    wait_for(lambda: {k: v for k, v in board(stack).items() if k in expected} == expected,
             message="every seeded step tracked")
    before = settled(stack)
    shown = cli(stack, "board", *COORD, "--all")
    assert shown.returncode == 0 and f"{len(before)} handoff(s)" in shown.stdout
    rebuilt = cli(stack, "rebuild-tracker", "--page", "7")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "'applied'" in rebuilt.stdout
    audit = cli(stack, "audit")
    assert audit.returncode == 0 and "police_handoff" in audit.stdout, audit.stdout
    assert "BROKEN" not in audit.stdout
    # every token the CLI signed above is in the token audit, chained
    tokens = cli(stack, "audit", "--tokens")
    assert tokens.returncode == 0 and "chain intact" in tokens.stdout, tokens.stdout
    commands = {line.split()[2] for line in tokens.stdout.splitlines()[:-1]}
    assert {"demo", "board", "rebuild-tracker", "audit"} <= commands, commands
    after = board(stack)
    # every handoff the services ever published comes back with the same state and step
    # (events other tests put on the bus by hand are in no outbox: not rebuilt)
    published = _published_subjects(stack)
    before = {k: v for k, v in before.items() if k in published}
    assert set(expected) <= set(before)
    assert {k: v for k, v in after.items() if k in before} == before


def _published_subjects(stack) -> set[str]:
    from shared.auth import Actor, issue_token
    operator = issue_token(Actor("test-operator", "operator", "wenzhou-ops"))
    subjects = set()
    with stack.rpc() as rpc:
        for name in ("police_handoff", "market_referral", "command"):
            after = 0
            while page := getattr(rpc, name).export_events(operator, after, 2000):
                subjects |= {p["envelope"]["subject"] for p in page}
                after = page[-1]["id"]
    return subjects


def test_bad_cli_input_is_a_clear_error(stack):
    out = cli(stack, "referral", "create", *COORD, "--payload", "{not json")
    assert out.returncode != 0 and "--payload is not valid JSON" in out.stderr
    out = cli(stack, "referral", "create", "--as", "enforcement_unit", "--unit", "x",
              "--payload", '{"case_number": "A"}')
    assert out.returncode == 2 and "invalid_input" in out.stdout

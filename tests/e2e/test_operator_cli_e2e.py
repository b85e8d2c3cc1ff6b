"""Every command of the README's operating table, run as an operator runs it: the
``liandong`` CLI as a subprocess against one running stack (PostgreSQL), checking its
exit status and a line that says it did its job. The data a command needs is made
first (an unsent outbox row left by a relay that crashed, a dead letter to replay).

Nothing is listed by hand that could drift: ``--help`` is asked of every command and
sub-command found by walking the argparse parser, and the last step fails if a command
or option the README's operating table names was not run here.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from tests.conftest import ROOT, vhost, wait_for
from tests.e2e.test_reliability_e2e import (
    _create_under_fault,
    dead_letter,
    dead_lettered_for_want_of_key,
    tracked,
)
from tests.helpers import COORDINATOR, token

pytestmark = [pytest.mark.e2e,
              pytest.mark.parametrize("stack", ["postgres"], indirect=True)]

COORD = ["--as", "coordinator", "--unit", "wenzhou-coordination"]
UNIT = ["--as", "enforcement_unit", "--unit", "lucheng-team-1", "--county", "lucheng"]
RAN: list[tuple[str, ...]] = []          # every command line run by cli()


def cli(env: dict, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    RAN.append(tuple(args))
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def ok(out: subprocess.CompletedProcess, *expected: str) -> str:
    """Exit status 0 and every expected text in the output."""
    shown = f"exit {out.returncode}\nstdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-3000:]}"
    assert out.returncode == 0, shown
    for text in expected:
        assert text in out.stdout, f"{text!r} not in output\n{shown}"
    return out.stdout


# ------------------------------------------------------------------ --help everywhere

def command_paths(parser: argparse.ArgumentParser, prefix=()) -> list[tuple[str, ...]]:
    """Every command and sub-command of the parser (argparse's sub-parsers, recursively)."""
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += command_paths(sub, (*prefix, name))
    return paths


def test_help_of_every_command_and_subcommand(stack):
    from shared.cli import build_parser
    paths = command_paths(build_parser())
    assert ("keys", "rotate") in paths and ("outbox",) in paths   # the walk finds them
    # each --help is its own process, as an operator runs it; two at a time (the
    # machine's two cores: it is start-up CPU, ~1 s each, ~70 commands)
    with ThreadPoolExecutor(max_workers=2) as pool:
        outs = list(pool.map(lambda path: cli(stack.env, *path, "--help", timeout=60), paths))
    for path, out in zip(paths, outs, strict=True):
        ok(out, f"usage: liandong {' '.join(path)}".rstrip())
        described = out.stdout.split("\n\n", 1)[-1]
        assert "-h, --help" in described, path


# ------------------------------------------------------------------ the operating table

def readme_commands() -> list[tuple[tuple[str, ...], set[str]]]:
    """(command words, options) of every `liandong ...` of the README's operating table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Operating it", 1)[1].strip().split("\n\n", 1)[0]
    found = []
    for span in re.findall(r"`(liandong [^`]*)`", table):
        words = []
        for word in span.split()[1:]:
            if not re.fullmatch(r"[a-z][a-z_-]*", word):
                break
            words.append(word)
        found.append((tuple(words), set(re.findall(r"--[a-z][a-z-]*", span))))
    return found


# commands whose own end-to-end file runs them as a subprocess against a stack (the
# operating table names them; running them here again would double that file's setup)
ELSEWHERE = {"alerts": "test_alerts_e2e.py (send, replay, list, act, stats), "
                       "test_alerts_mqtt_e2e.py (dead-letters, intake)",
             "users": "test_sessions_e2e.py (add, totp, revoke; audit --security)",
             "notifications": "test_notifications_e2e.py (--status)",
             "bus": "test_bus_e2e.py (definitions --out, migrate-queues --check --service); "
                    "users show: tests/unit/test_bususers.py"}
SECURITY_AUDIT = {"--security", "--user", "--kind", "--limit"}   # test_sessions_e2e.py


def test_every_command_of_the_operating_table(stack, servers, tmp_path):
    table = readme_commands()
    assert len(table) >= 10, table
    steps = [_health, _migrate, _demo_board_handoff, _referral_create_with_key, _outbox_and_relay,
             _dead_letters, _rebuild_and_audit, _keys, _run_detached]
    for step in steps:
        step(stack, servers=servers, tmp=tmp_path)
    table = [(words, flags - SECURITY_AUDIT if words == ("audit",) else flags)
             for words, flags in table if words[0] not in ELSEWHERE]
    missing = [(words, flags) for words, flags in table
               if not flags <= {arg for ran in RAN if ran[:len(words)] == words
                                for arg in ran if arg.startswith("--")}
               or not any(ran[:len(words)] == words for ran in RAN)]
    assert not missing, f"README operating-table commands this test does not run: {missing}"


def _health(stack, **_):
    from shared.cli import SERVICES
    out = ok(cli(stack.env, "health"))
    for name in SERVICES:
        assert f'"service": "{name}"' in out, name
    # a broker (vhost) where no service answers: non-zero, saying which one
    down = cli({**stack.env, "AMQP_URI": f"{stack.amqp_uri}-nobody-{uuid.uuid4().hex[:6]}"},
               "health", "--service", "tracker", "--timeout", "2")
    assert down.returncode == 1 and "tracker: unhealthy" in down.stdout, down.stdout
    # any command needing the services there: one line that says so, no traceback
    down = cli({**stack.env, "AMQP_URI": f"{stack.amqp_uri}-nobody-{uuid.uuid4().hex[:6]}"},
               "board", *COORD)
    assert down.returncode == 1 and "is RabbitMQ at" in down.stderr, down.stderr
    assert "Traceback" not in down.stderr, down.stderr


def _migrate(stack, **_):
    """Each service migrated its database on start: ``migrate`` finds them all at the
    newest revision, and ``--sql`` has nothing to add after the revision it names."""
    from shared import migrations
    from shared.cli import DATABASES
    out = ok(cli(stack.env, "migrate"))
    for name in DATABASES:
        assert f"{name:16s} at {migrations.heads(name)[0]}" in out, out
    head = migrations.heads("tracker")[0]
    sql = ok(cli(stack.env, "migrate", "--service", "tracker", "--sql"), f"from {head}")
    assert "CREATE TABLE" not in sql and "ALTER TABLE" not in sql, sql


def _demo_board_handoff(stack, **_):
    seeded = json.loads(ok(cli(stack.env, "demo", "--count", "4")))
    assert seeded["referrals"] >= 4          # the demo seeds a minimum of each stage
    with stack.rpc() as rpc:
        expected = {r["id"]: (r["state"], r["step"])
                    for r in rpc.police_handoff.list(token(COORDINATOR), limit=1000)}
    wait_for(lambda: {k: v for k, v in board(stack).items() if k in expected} == expected,
             message="every seeded step tracked")
    rows = board(stack)
    ok(cli(stack.env, "board", *COORD, "--all"), f"{len(rows)} handoff(s)")
    ok(cli(stack.env, "board", *COORD, "--overdue"), "handoff(s)")
    some = next(iter(expected))
    shown = json.loads(ok(cli(stack.env, "handoff", some, *COORD)))
    assert shown["handoff_id"] == some and shown["timeline"], shown


def _referral_create_with_key(stack, **_):
    from tests.helpers import draft_payload
    key = f"ops-{uuid.uuid4()}"
    payload = json.dumps(draft_payload(f"OPS-{uuid.uuid4().hex[:6]}"), ensure_ascii=False)
    first = json.loads(ok(cli(stack.env, "referral", "create", *UNIT, "--payload", payload,
                              "--idempotency-key", key)))
    again = json.loads(ok(cli(stack.env, "referral", "create", *UNIT, "--payload", payload,
                              "--idempotency-key", key)))
    assert first["id"] == again["id"] and first["state"] == "draft"


def _outbox_and_relay(stack, **_):
    """The relay died between commit and publish: the outbox says so while the service is
    down, and `relay --once` publishes the backlog from outside the service."""
    referral_id = _create_under_fault(stack, "crash_before_publish")
    try:
        unsent = _unsent_of(ok(cli(stack.env, "outbox"), "tracker ", "command "),
                            "police_handoff")
        assert unsent >= 1
        out = ok(cli(stack.env, "relay", "--service", "police_handoff", "--once"))
        assert int(re.search(r"published (\d+) events", out).group(1)) >= unsent
        tracked(stack, referral_id, 1)
        out = ok(cli(stack.env, "outbox", "--service", "police_handoff"))
        assert _unsent_of(out, "police_handoff") == 0
    finally:
        stack.start("police_handoff")
    wrong = cli({**stack.env, "DATABASE_URL": stack.database_url.replace("lt_", "absent_")},
                "outbox")
    assert wrong.returncode == 1 and "no database" in wrong.stdout, wrong.stdout


def _unsent_of(out: str, service: str) -> int:
    found = re.search(rf"^{service}\s+unsent\s+(\d+)", out, re.M)
    assert found, out
    return int(found.group(1))


def _dead_letters(stack, **_):
    """An event signed by a key the tracker does not know yet is dead-lettered; once the
    key is there the operator lists and replays it."""
    event, _letter = dead_lettered_for_want_of_key(stack)
    ok(cli(stack.env, "dead-letters", "list", "--limit", "1000"), "queue=tracker.events",
       "no public key", "dead letter(s) shown")
    out = ok(cli(stack.env, "dead-letters", "replay", "--queue", "tracker.events"))
    assert int(re.search(r"replayed (\d+)", out).group(1)) >= 1, out
    assert tracked(stack, event["subject"], 1)["timeline"][0]["event_id"] == event["id"]
    assert dead_letter(stack.amqp_uri, event["id"], "tracker.events") is None
    # other consumers of the event (supervision) dead-lettered it too: replay them all
    ok(cli(stack.env, "dead-letters", "replay"), "replayed")
    wait_for(lambda: dead_letter(stack.amqp_uri, event["id"]) is None,
             message="every dead letter of the event replayed")


def _rebuild_and_audit(stack, **_):
    before = settled(stack)
    ok(cli(stack.env, "rebuild-tracker", "--page", "7"), "'applied'")
    out = ok(cli(stack.env, "audit"), "police_handoff")
    assert "BROKEN" not in out
    # every token the CLI signed above is in the token audit, chained
    out = ok(cli(stack.env, "audit", "--tokens"), "chain intact")
    commands = {line.split()[2] for line in out.splitlines()[:-1]}
    assert {"demo", "board", "rebuild-tracker", "audit", "referral"} <= commands, commands
    # every handoff the services ever published comes back with the same state and step
    # (events put on the bus by hand are in no outbox: not rebuilt)
    published = _published_subjects(stack)
    before = {k: v for k, v in before.items() if k in published}
    after = board(stack)
    assert before and {k: v for k, v in after.items() if k in before} == before


def _keys(stack, tmp, **_):
    """Key commands in a folder of their own (never the stack's keys)."""
    folder = ["--dir", str(tmp / "token-keys")]
    ok(cli(stack.env, "keys", "init", *folder), "gateway ", "operator ", "created")
    ok(cli(stack.env, "keys", "list", *folder), "2 key(s)")
    out = ok(cli(stack.env, "keys", "rotate", "gateway", *folder), "not signing yet")
    new_kid = re.search(r"new gateway key (\S+)", out).group(1)
    out = ok(cli(stack.env, "keys", "rotate", "gateway", "--activate", *folder),
             f"now signs with {new_kid}")
    old_kid = re.search(r"\(was (\S+)\)", out).group(1)
    ok(cli(stack.env, "keys", "retire", old_kid, *folder), f"retired {old_kid}")
    assert old_kid not in ok(cli(stack.env, "keys", "list", *folder))


def _run_detached(stack, servers, tmp, **_):
    """`run --detach` returns once healthy and leaves the services running (they must not
    die with it); a service that does not become healthy is a non-zero exit."""
    host, _port, _dsn = servers
    with vhost(f"liandong-detach-{uuid.uuid4().hex[:8]}", host.endswith("@127.0.0.1")) as vh:
        if vh == "/":
            pytest.skip("no vhost of our own on this broker")
        data = tmp / "detached"
        detached_env = {**stack.env, "AMQP_URI": f"{stack.amqp_uri.rsplit('/', 1)[0]}/"
                        f"{quote(vh, safe='')}", "LIANDONG_DATA_DIR": str(data),
                        "LIANDONG_KEYS_DIR": str(data / "keys")}
        detached_env.pop("DATABASE_URL")
        failed = cli(detached_env, "run", "--detach", "--service", "tracker",
                     "--timeout", "0.001")
        assert failed.returncode == 1 and "did not become healthy" in failed.stderr, failed
        out = ok(cli(detached_env, "run", "--detach", "--service", "tracker"),
                 "tracker          ready", "Detached")
        pids = [int(p) for p in re.search(r"\(pids ([\d ]+)\)", out).group(1).split()]
        try:
            ok(cli(detached_env, "health", "--service", "tracker"), '"service": "tracker"')
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=30,
                     message="detached services stopped")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:        # a zombie (exited, not reaped: its parent is gone) counts as stopped
        return " Z" not in open(f"/proc/{pid}/stat").read().split(")", 1)[1][:3]
    except OSError:
        return False


def settled(stack) -> dict:
    """The board once nothing moves by itself any more: the demo's backdated joint actions
    have missed deadlines, which the command service escalates on its timer (every 5 s),
    a step each."""
    def quiet():
        first = board(stack)
        time.sleep(6)
        return first if board(stack) == first else None
    return wait_for(quiet, timeout=120, interval=0, message="the board to settle")


def board(stack) -> dict:
    with stack.rpc() as rpc:
        rows = rpc.tracker.board(token(COORDINATOR), open_only=False, limit=5000)
    return {r["handoff_id"]: (r["state"], r["step"]) for r in rows}


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
    out = cli(stack.env, "referral", "create", *COORD, "--payload", "{not json")
    assert out.returncode != 0 and "--payload is not valid JSON" in out.stderr
    out = cli(stack.env, "referral", "create", "--as", "enforcement_unit", "--unit", "x",
              "--payload", '{"case_number": "A"}')
    assert out.returncode == 2 and "invalid_input" in out.stdout
    out = cli(stack.env, "outbox", "--service", "no-such-service")
    assert out.returncode == 2 and "invalid choice: 'no-such-service'" in out.stderr

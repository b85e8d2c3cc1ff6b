"""``liandong``: operate and use Liandong from a terminal.

Every command has ``--help``. Commands that act on handoffs take ``--as ROLE`` with
``--unit`` (and ``--county``) and sign a token for that identity with the operator key
(``operator.key`` in LIANDONG_TOKEN_KEYS_DIR; ``liandong keys init`` makes it), so the
services check roles exactly as they do for the HTTP API. Every token the CLI signs is
recorded in the token audit (``liandong audit --tokens``).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from shared import calendar_cli, tokenaudit, tokenkeys
from shared.auth import ROLES, Actor, mint
from shared.deadletters import amqp_uri

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ["police_handoff", "tracker", "gateway", "market_referral", "command",
            "supervision", "alerts", "documents", "notifications"]
# the services whose steps are events with hash-chained audit trails (rebuild, audit)
EVENT_SOURCES = [s for s in SERVICES
                 if s not in ("tracker", "gateway", "documents", "notifications")]
HANDOFF_SERVICES = EVENT_SOURCES     # the services that keep handoffs


def _has_database(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(f"services.{name}.store") is not None


# services with a database of their own (services/<name>/store.py), hence an outbox
DATABASES = [name for name in SERVICES if _has_database(name)]


def _print(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _issue(actor: Actor, command: str) -> str:
    """A token signed with the operator key, recorded in the token audit first."""
    if os.environ.get("LIANDONG_SECRET") is not None:
        print("warning: LIANDONG_SECRET is no longer used (tokens are signed with Ed25519 "
              "keys); remove it", file=sys.stderr)
    try:
        issued = mint(actor, issuer="operator")
    except tokenkeys.KeySetupError as exc:
        raise SystemExit(f"liandong: cannot sign a token: {exc}") from None
    tokenaudit.record(issued, command)
    return issued.token


def _command(args) -> str:
    return " ".join(str(part) for part in (args.cmd, getattr(args, "action", None)) if part)


def _token(args) -> str:
    return _issue(Actor(user_id=args.user or f"{args.role}@{args.unit}", role=args.role,
                        unit=args.unit, county=args.county), _command(args))


def _payload(text: str | None) -> dict:
    if not text:
        return {}
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--payload is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise SystemExit("--payload must be a JSON object")
    return value


def _rpc():
    from nameko.standalone.rpc import ClusterRpcProxy
    return ClusterRpcProxy({"AMQP_URI": amqp_uri()}, timeout=30)


def _call(fn, *args):
    from shared.errors import Rejected
    try:
        return fn(*args)
    except Rejected as exc:
        _print({"error": exc.to_dict()})
        raise SystemExit(2) from None


# ------------------------------------------------------------------ run

def service_command(name: str) -> list[str]:
    """``nameko run`` with a bounded stop (shared/serve.py); the last argument names the
    service module (bench/live.py swaps it for the plain nameko peer)."""
    return [sys.executable, "-m", "shared.serve", "--config", str(ROOT / "config.yaml"),
            f"services.{name}.service"]


# the process `liandong run` starts besides the nameko services (with alerts)
MQTT_INTAKE = "alerts-mqtt"


def process_command(name: str) -> list[str]:
    """The command of a service, or of the alerts service's MQTT intake process."""
    if name == MQTT_INTAKE:
        return [sys.executable, "-m", "services.alerts.mqtt_intake"]
    return service_command(name)


def _die_with_parent() -> None:
    """Linux: a service gets SIGTERM when `liandong run` itself dies, even by SIGKILL,
    so no orphaned service keeps consuming."""
    import contextlib
    import ctypes
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_healthy(name: str, timeout: float = 60.0) -> bool:
    from shared.healthcheck import check
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            check(name, timeout=3)
            return True
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    return False


def _migrate_rpc_queues(services: list[str]) -> None:
    """Before the services start: a vhost's classic rpc-<service> queues become quorum
    queues (shared/busqueues.py); what cannot be moved is said, and that service stops."""
    from shared import busqueues
    try:
        done, refused = busqueues.migrate(amqp_uri(), services)
    except Exception as exc:  # noqa: BLE001 - the broker is not there: services will say
        print(f"liandong run: RPC queues not checked ({exc})", file=sys.stderr)
        return
    for line in done:
        if "classic -> quorum" in line or "moved back" in line:
            print(f"  {line}", flush=True)
    for line in refused:
        print(f"liandong run: {line}", file=sys.stderr)


def cmd_run(args) -> int:
    services = args.service or SERVICES
    log_dir = Path(os.environ.get("LIANDONG_DATA_DIR", ROOT / "var")) / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    children: dict[str, subprocess.Popen] = {}

    def start(name):
        log = open(log_dir / f"{name}.log", "ab")
        # supervised: a service dies with `liandong run`; detached: it outlives it, in a
        # session of its own (no SIGHUP when the terminal closes)
        extra = {"start_new_session": True} if args.detach else \
            {"preexec_fn": _die_with_parent}
        children[name] = subprocess.Popen(process_command(name), cwd=ROOT, env=env,
                                          stdout=log, stderr=subprocess.STDOUT, **extra)

    def stop_all():
        for proc in children.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in children.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _migrate_rpc_queues(services)
    for i, name in enumerate(services, 1):
        start(name)
        print(f"[{i}/{len(services)}] starting {name} ...", flush=True)
    for name in services:
        if stopping or not wait_healthy(name, args.timeout):
            print(f"liandong run: {name} did not become healthy in {args.timeout:g}s; "
                  f"stopping every service. See {log_dir / (name + '.log')}", file=sys.stderr)
            stop_all()
            return 1
        print(f"  {name:16s} ready  rpc: {name}.*  log: {log_dir / (name + '.log')}", flush=True)
    if "alerts" in services and not args.no_mqtt:
        # the MQTT intake: devices' QoS-1 alerts, its own process (services/alerts/mqtt_intake)
        start(MQTT_INTAKE)
        print(f"  {MQTT_INTAKE:16s} started  broker: "
              f"{os.environ.get('MQTT_URL', 'mqtt://127.0.0.1:1883').rsplit('@', 1)[-1]}  "
              f"log: {log_dir / (MQTT_INTAKE + '.log')}", flush=True)
    databases = os.environ.get("DATABASE_URL") or f"SQLite in {log_dir.parent}"
    web = os.environ.get("WEB_SERVER_ADDRESS", "127.0.0.1:8000")
    print(f"Liandong is running on {amqp_uri().rsplit('@', 1)[-1]} (databases: {databases}).\n"
          f"  HTTP API: http://{web}/api/v1/  (OpenAPI: http://{web}/api/v1/openapi.json,"
          f" metrics: http://{web}/metrics)", flush=True)
    if args.detach:
        pids = " ".join(str(proc.pid) for proc in children.values())
        print(f"  Detached: the services run on (pids {pids}); stop them with: kill {pids}",
              flush=True)
        return 0
    print("  Try: liandong procedure | liandong --help. Ctrl-C stops.", flush=True)
    while not stopping:
        for name, proc in list(children.items()):
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; restarting", file=sys.stderr)
                start(name)
        time.sleep(1)
    stop_all()
    return 0


# ------------------------------------------------------------------ commands

def cmd_token(args) -> int:
    print(_token(args))
    return 0


def cmd_procedure(args) -> int:
    from shared.procedure import Procedure
    proc = Procedure.load(args.kind)
    for row in proc.table():
        target = row["to"] or " | ".join(f"{k}->{v}" for k, v in row["outcomes"].items())
        sources = ",".join(row["from"]) or "(new)"
        print(f"{row['command']:24s} {sources:45s} -> {target:28s} "
              f"by {','.join(row['roles']):28s} source: {row['article'] or '-'}")
    return 0


def cmd_evaluate(args) -> int:
    from shared.errors import InvalidInput
    from shared.standards import FactError, judgment_rules
    try:
        _print([r.to_dict() for r in judgment_rules().evaluate(_payload(args.facts))])
    except FactError as exc:
        _print({"error": InvalidInput("invalid facts", {"facts": exc.errors}).to_dict()})
        return 2
    return 0


def _retrying(fn, *args, key: str, attempts: int = 3):
    """Call a state-changing RPC with an idempotency key; when no reply comes (lost
    reply, service restarting) ask again with the same key: done once, whatever the
    number of attempts."""
    from nameko.exceptions import RpcTimeout
    for attempt in range(1, attempts + 1):
        try:
            return _call(fn, *args, key)
        except RpcTimeout:
            print(f"no reply (attempt {attempt}/{attempts}); retrying with idempotency key "
                  f"{key}", file=sys.stderr)
    print(f"no reply after {attempts} attempts; run again with --idempotency-key {key} "
          "to learn the outcome without doing it twice", file=sys.stderr)
    raise SystemExit(3)


def cmd_referral(args) -> int:
    token = _token(args)
    with _rpc() as rpc:
        svc = rpc.police_handoff
        key = getattr(args, "idempotency_key", None) or str(uuid.uuid4())
        if args.action == "create":
            _print(_retrying(svc.create, token, args.command, _payload(args.payload), key=key))
        elif args.action == "act":
            _print(_retrying(svc.act, token, args.referral_id, args.command,
                             _payload(args.payload), key=key))
        elif args.action == "show":
            _print(_call(svc.get, token, args.referral_id))
        elif args.action == "list":
            _print(_call(svc.list, token, args.state, args.county_filter))
    return 0


def _source_token(args) -> str:
    """A token for an alert source (a system client, role alert_source, unit = client)."""
    return _issue(Actor(user_id=args.client, role="alert_source", unit=args.client),
                  _command(args))


def csv_alerts(path: str):
    """(line, alert) for each row of a CSV of alerts: a header of field names (alert_id,
    kind and the kind's fields); empty cells are left out, numbers by the kind's types."""
    import contextlib
    import csv

    from services.alerts.reference import reference
    kinds = reference().kinds
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            alert = {k: v.strip() for k, v in row.items() if k and v and v.strip()}
            spec = kinds[alert["kind"]].fields if alert.get("kind") in kinds else {}
            for name, value in list(alert.items()):
                if spec.get(name, {}).get("type") == "number":
                    with contextlib.suppress(ValueError):   # else the service names it
                        alert[name] = float(value)
            yield line, alert


def cmd_alerts(args) -> int:
    from shared.errors import Rejected
    with _rpc() as rpc:
        svc = rpc.alerts
        if args.action == "send":
            _print(_call(svc.intake, _source_token(args), _payload(args.payload)))
        elif args.action == "replay":
            token, counts, refused = _source_token(args), {}, 0
            for line, alert in csv_alerts(args.file):
                try:
                    outcome = svc.intake(token, alert)["outcome"]
                except Rejected as exc:
                    refused += 1
                    errors = json.dumps(exc.errors, ensure_ascii=False)
                    print(f"line {line}: refused: {exc.message} {errors}", file=sys.stderr)
                    continue
                counts[outcome] = counts.get(outcome, 0) + 1
            _print({**counts, "refused": refused})
            return 2 if refused else 0
        elif args.action == "kinds":
            _print(_call(svc.kinds, _operator_token(args)))
        elif args.action == "list":
            rows = _call(svc.list, _token(args), args.state, args.county_filter, args.limit)
            for r in rows:
                print(f"{'!' if r['urgency'] == 'urgent' else ' '} {r['id'][:8]} "
                      f"{r['case_number']:18s} {r['alert_kind']:22s} {r['county']:9s} "
                      f"{r['counterpart_unit']:24s} {r['state']:13s} x{1 + r['repeats']}")
            print(f"{len(rows)} task(s)")
        elif args.action == "show":
            _print(_call(svc.get, _token(args), args.task_id))
        elif args.action == "act":
            key = args.idempotency_key or str(uuid.uuid4())
            _print(_retrying(svc.act, _token(args), args.task_id, args.command,
                             _payload(args.payload), key=key))
        elif args.action == "stats":
            _print(_call(svc.statistics, _token(args), args.group_by))
        elif args.action == "dead-letters":
            rows = _call(svc.dead_letters, _operator_token(args), args.limit, args.source)
            for r in rows:
                print(f"{r['received_at'][:19]} {r['source']:20s} {r['reason']}\n"
                      f"    topic {r['topic']}  payload {r['payload'][:200]}")
            print(f"{len(rows)} dead letter(s)")
        elif args.action == "intake":
            _print(_call(svc.intake_status, _operator_token(args)))
    return 0


def _operator_token(args) -> str:
    """The operator's own identity for maintenance commands, named after the OS user."""
    return _issue(Actor(user_id=f"{tokenaudit.os_user()}@cli", role="operator",
                        unit="wenzhou-ops"), _command(args))


def _progress(total=None, desc=""):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="ev", file=sys.stderr,
                disable=not sys.stderr.isatty() and os.environ.get("LIANDONG_PROGRESS") != "1")


def cmd_board(args) -> int:
    with _rpc() as rpc:
        rows = _call(rpc.tracker.board, _token(args), args.kind, args.in_county, args.agency,
                     None, args.state, args.q, not args.all, args.overdue, args.limit, 0)
    for r in rows:
        d = r.get("deadline") or {}
        left = r.get("time_left_seconds")
        left_text = "-" if left is None else f"{left / 3600:+.1f}h"
        print(f"{'!' if r.get('overdue') else ' '} {r['handoff_id'][:8]} {r['kind']:18s} "
              f"{r['case_number']:22s} {r['state']:26s} {d.get('id', '-'):24s} {left_text}")
    print(f"{len(rows)} handoff(s)")
    return 0


def cmd_handoff(args) -> int:
    with _rpc() as rpc:
        _print(_call(rpc.tracker.handoff, _token(args), args.handoff_id))
    return 0


def cmd_rebuild(args) -> int:
    """Reset the tracker and re-apply every service's event history, page by page."""
    token = _operator_token(args)
    sources = EVENT_SOURCES
    totals = {"applied": 0, "duplicate": 0, "stale": 0, "skipped": 0}
    with _rpc() as rpc:
        _call(rpc.tracker.reset, token)
        for name in sources:
            export = getattr(rpc, name).export_events
            # the next page is read while the tracker applies this one (issue 16): the
            # producer's export and the tracker's apply run side by side, in order
            # raw: each envelope stays the JSON text the producer stored, parsed only by
            # the tracker
            reply = export.call_async(token, 0, args.page, True)
            with _progress(desc=f"{name:16s}") as bar:
                while page := _call(reply.result):
                    reply = export.call_async(token, page[-1]["id"], args.page, True)
                    counts = _call(rpc.tracker.ingest, token, [p["body"] for p in page])
                    for k, v in counts.items():
                        totals[k] = totals.get(k, 0) + v
                    bar.update(len(page))
    print(f"rebuilt from {', '.join(sources)}: {totals}")
    return 0


def cmd_demo(args) -> int:
    """Seed a demo: every kind of handoff, every county, every stage, backdated over a
    past year (development only; idempotent)."""
    from shared.demo import plan, seed
    tokens: dict[Actor, str] = {}     # one audited token per demo identity

    def token(actor: Actor) -> str:
        if actor not in tokens:
            tokens[actor] = _issue(actor, "demo")
        return tokens[actor]

    with _rpc() as rpc, _progress(total=plan(args.count), desc="handoffs") as bar:
        result = seed(rpc, args.count, progress=bar.update, token=token)
    _print(result)
    return 0


def cmd_audit(args) -> int:
    """Verify the hash-chained audit trail of each handoff service (or one handoff)."""
    if args.tokens:
        return _token_audit()
    if args.security:
        from services.gateway.admin import cmd_security_audit
        return cmd_security_audit(args)
    token = _operator_token(args)
    failed = False
    with _rpc() as rpc:
        for name in args.service or EVENT_SOURCES:
            result = _call(getattr(rpc, name).verify_audit, token, args.id)
            status = "BROKEN" if result["problems"] else "intact"
            print(f"{name:16s} {result['handoffs']} handoff(s), {result['steps']} step(s): "
                  f"{status}")
            for handoff_id, problems in result["problems"].items():
                failed = True
                for problem in problems:
                    print(f"  {handoff_id}: {problem}")
        if not args.id and not args.service:
            failed |= _blob_audit(rpc, token)
    return 1 if failed else 0


def _blob_audit(rpc, token) -> bool:
    """Re-hash every stored case-file document (the documents service); True if any is
    missing or altered."""
    result = _call(rpc.documents.verify, token)
    bad = result["missing"] + result["altered"]
    print(f"{'documents':16s} {result['checked']} blob(s) in {result['store']}: "
          f"{'BROKEN' if bad else 'intact'}")
    for problem in ("missing", "altered"):
        for sha in result[problem]:
            print(f"  {sha}: {problem}")
    return bool(bad)


def _token_audit() -> int:
    """List the tokens the CLI issued (tokenaudit) and check their hash chain."""
    records = tokenaudit.read()
    for r in records:
        if "unreadable" in r:
            print(f"line {r['line']}: unreadable")
            continue
        county = f"/{r['county']}" if r.get("county") else ""
        print(f"{r['at']}  {r['os_user']}@{r['host']}  {r['command']:16s} "
              f"{r['role']}@{r['unit']}{county} as {r['sub']}  kid={r['kid']}  "
              f"jti={r['jti']}  expires={r['expires']}")
    problems = tokenaudit.verify(records)
    print(f"{len(records)} token(s) in {tokenaudit.audit_path()}: "
          f"{'BROKEN' if problems else 'chain intact'}")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


# ------------------------------------------------------------------ keys

ROTATION = """Next steps of the rotation (README: Operating it > Rotating token keys):
  1. copy {public} to every service's LIANDONG_TOKEN_PUBLIC_KEYS (they accept it at once,
     without a restart, beside the current key)
  2. liandong keys rotate {issuer} --activate     (then restart the {issuer}: it signs
     with {kid} from now on; tokens of the old key stay valid)
  3. after the longest token lifetime (8 h): liandong keys retire OLD_KID, and remove
     OLD_KID.jwk from every service's public keys"""


def _key_dirs(args) -> tuple[Path, Path]:
    directory = Path(args.dir) if args.dir else tokenkeys.keys_dir()
    public = directory / "public" if args.dir else tokenkeys.public_dir()
    return directory, public


def cmd_keys(args) -> int:
    directory, public = _key_dirs(args)
    try:
        if args.action == "init":
            for issuer, key, created in tokenkeys.init(args.issuer or tokenkeys.ISSUERS,
                                                       directory, public):
                state = "created" if created else "exists, kept"
                dev = " (DEVELOPMENT key: not accepted in production)" \
                    if key.development else ""
                print(f"{issuer:8s} {state:13s} kid={key.kid}{dev}\n"
                      f"         private {key.path} (mode 0600: for the {issuer} only)\n"
                      f"         public  {public / (key.kid + '.jwk')} (copy to every "
                      f"service's LIANDONG_TOKEN_PUBLIC_KEYS)")
        elif args.action == "rotate" and args.activate:
            old, new = tokenkeys.activate(args.issuer_name, directory)
            print(f"{args.issuer_name} now signs with {new.kid} (was {old.kid}); restart the "
                  f"{args.issuer_name}. Tokens of {old.kid} stay valid until you run\n"
                  f"  liandong keys retire {old.kid}\n"
                  f"after the longest token lifetime (8 h), and remove {old.kid}.jwk from "
                  f"every service's public keys.")
        elif args.action == "rotate":
            key = tokenkeys.rotate(args.issuer_name, directory, public)
            print(f"new {args.issuer_name} key {key.kid} in {key.path} (not signing yet)")
            print(ROTATION.format(public=public / f"{key.kid}.jwk", issuer=args.issuer_name,
                                  kid=key.kid))
        elif args.action == "retire":
            print(f"retired {args.kid}: removed {tokenkeys.retire(args.kid, directory, public)}"
                  f"; tokens it signed are refused from now on (remove it from every other "
                  f"copy of the public keys too)")
        else:
            rows = tokenkeys.inventory(directory, public)
            for r in rows:
                print(f"{r['kid']:34s} {r['use']:24s} {'trusted' if r['trusted'] else '-':8s}"
                      f"{r['env']:12s} {r['created']:21s} {r['file']}")
            print(f"{len(rows)} key(s); LIANDONG_ENV={tokenkeys.mode()}")
    except tokenkeys.KeySetupError as exc:
        print(f"liandong keys {args.action}: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_outbox(args) -> int:
    """Unsent outbox rows per service, read from each service's own database (it works
    while the service is down: that is when the operator needs it)."""
    from shared.messaging import backlog
    status = 0
    for name in args.service or [s for s in DATABASES if s != "documents"]:  # no outbox
        store = _store(name)
        try:
            found = backlog(store)
        except Exception as exc:  # noqa: BLE001 - one unreadable database, go on
            print(f"{name:16s} cannot read the outbox: {_reason(exc)}")
            status = 1
            continue
        finally:
            store.dispose()
        print(f"{name:16s} unsent {found['unsent']:6d}   oldest {found['oldest'] or '-'}")
    return status


def _store(name: str):
    """An operator's handle on a service's existing database: creates nothing."""
    import importlib
    if name not in DATABASES:
        raise SystemExit(f"liandong: {name} has no database (hence no outbox)")
    return importlib.import_module(f"services.{name}.store").store.existing()


def _reason(exc: Exception) -> str:
    """One line for an operator, not a stack trace."""
    from sqlalchemy.exc import DBAPIError
    if isinstance(exc, DBAPIError):
        exc = exc.orig or exc
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"


def cmd_relay(args) -> int:
    from shared.logging import configure_logging
    from shared.messaging import Relay
    configure_logging(f"{args.service}.relay")
    store = _store(args.service)
    try:
        store.engine  # noqa: B018 - fails now, clearly, if the database is not there
    except Exception as exc:  # noqa: BLE001
        raise SystemExit(f"liandong relay: cannot open {args.service}'s database: "
                         f"{_reason(exc)}") from None
    relay = Relay(store, amqp_uri())
    if args.once:
        print(f"published {relay.drain()} events")
        return 0
    running = True

    def stop(*_):
        nonlocal running
        running = False
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    relay.run(stop=lambda: not running, wake=time.sleep)
    return 0


def cmd_notifications(args) -> int:
    """Deliveries of the notifications service: pending, failing (retried and still not
    through: look at the channel) or sent."""
    token = _operator_token(args)
    with _rpc() as rpc:
        rows = _call(rpc.notifications.list, token, args.status, args.limit)
    for r in rows:
        print(f"{r['created_at']}  {r['status']:8s} tries={r['attempts']}  {r['unit']:22s} "
              f"{r['channel']:12s} {r['topic']:20s} key={r['key'][:12]}"
              + (f"\n   last error: {r['last_error']}" if r.get("last_error") else ""))
    print(f"{len(rows)} deliver{'y' if len(rows) == 1 else 'ies'} shown")
    return 1 if args.status == "failing" and rows else 0


def cmd_dead_letters(args) -> int:
    from shared import deadletters
    if args.action == "list":
        items = deadletters.list_dead_letters(args.limit)
        for i, item in enumerate(items):
            print(f"#{i} queue={item['queue']} key={item['routing_key']} "
                  f"error={item['error']} at={item['failed_at']}\n   reason: {item['reason']}")
        print(f"{len(items)} dead letter(s) shown")
    elif args.action == "replay":
        def progress(n):
            print(f"\rreplayed {n}", end="", flush=True)
        match = (lambda d: d["queue"] == args.queue) if args.queue else (lambda d: True)
        result = deadletters.replay(match=match, limit=args.limit, progress=progress)
        print(f"\nreplayed {result['replayed']}, left {result['skipped']} in the queue")
    elif args.action == "purge":
        print(f"purged {deadletters.purge()} dead letter(s)")
    return 0


def cmd_migrate(args) -> int:
    """Bring each service database to its newest schema revision, or print the SQL."""
    import importlib

    from shared import migrations
    from shared.db import MissingDatabase, Store, database_url, normalize_url
    status = 0
    for name in args.service or DATABASES:
        metadata = importlib.import_module(f"services.{name}.store").metadata
        url = database_url(name)
        if args.sql:
            start = None
            existing = Store(name, metadata, url, create=False)
            try:
                with existing.engine.connect() as conn:
                    start = migrations.current(conn)
            except MissingDatabase:
                pass
            finally:
                existing.dispose()
            print(f"-- {name}: from {start or 'an empty database'}")
            migrations.sql(name, metadata, normalize_url(url).get_backend_name(), start)
            continue
        store = Store(name, metadata, url)     # creates the database if missing
        try:
            with store.engine.connect() as conn:
                print(f"{name:16s} at {migrations.current(conn)}")
        except migrations.SchemaMismatch as exc:
            print(f"{name:16s} refused: {exc}")
            status = 1
        finally:
            store.dispose()
    return status


def cmd_health(args) -> int:
    from shared.healthcheck import check
    status = 0
    for name in args.service or SERVICES:
        try:
            _print(check(name, timeout=args.timeout))
        except Exception as exc:  # noqa: BLE001
            print(f"{name}: unhealthy ({type(exc).__name__}: {exc})")
            status = 1
    return status


# ------------------------------------------------------------------ parser

def _key_option(parser) -> None:
    parser.add_argument("--idempotency-key", metavar="KEY",
                        help="name this request (default: a new UUID); the same key again "
                             "returns the first result instead of acting twice")


def _identity(p) -> None:
    p.add_argument("--as", dest="role", required=True, choices=sorted(ROLES),
                   help="role to act as")
    p.add_argument("--unit", required=True, help="the acting unit, e.g. lucheng-team-1")
    p.add_argument("--county", help="county code of the actor (e.g. lucheng)")
    p.add_argument("--user", help="user id (default ROLE@UNIT)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liandong", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="start the services and supervise them")
    p.add_argument("--service", action="append", choices=SERVICES,
                   help="only this service (repeatable); default all")
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for health")
    p.add_argument("--no-mqtt", action="store_true",
                   help="do not start the alerts service's MQTT intake (alerts-mqtt)")
    p.add_argument("--detach", action="store_true",
                   help="return once healthy, leaving the services running")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("migrate", help="migrate each service database to its newest schema",
                       description="Apply each service's schema migrations "
                       "(services/<service>/migrations/versions/) to its database, as each "
                       "service does on start; a database made before migrations is "
                       "recognised and stamped if it matches a revision, refused otherwise. "
                       "--sql prints the SQL instead (from the revision the database is at, "
                       "or from empty), for a DBA to apply by hand.")
    p.add_argument("--service", action="append", choices=DATABASES,
                   help="only this service (repeatable); default every database")
    p.add_argument("--sql", action="store_true", help="print the SQL, change nothing")
    p.set_defaults(fn=cmd_migrate)

    p = sub.add_parser("health", help="ask each service's health RPC")
    p.add_argument("--service", action="append", choices=SERVICES)
    p.add_argument("--timeout", type=float, default=5)
    p.set_defaults(fn=cmd_health)

    p = sub.add_parser("token", help="print a signed bearer token for an identity")
    _identity(p)
    p.set_defaults(fn=cmd_token)

    p = sub.add_parser("procedure", help="print a procedure's transition table")
    p.add_argument("--kind", default="criminal_referral")
    p.set_defaults(fn=cmd_procedure)

    p = sub.add_parser("evaluate", help="judgment standards on a case's facts (JSON)")
    p.add_argument("facts", help='JSON object, or @file, e.g. \'{"passengers": 63, ...}\'')
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("referral", help="criminal referrals: create, act, show, list")
    rsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    r = rsub.add_parser("create", help="draft a referral or open a reverse transfer")
    _identity(r)
    r.add_argument("--command", default="draft", choices=["draft", "open_reverse_transfer"])
    r.add_argument("--payload", required=True, help="JSON object or @file")
    _key_option(r)
    r.set_defaults(fn=cmd_referral)
    r = rsub.add_parser("act", help="apply a procedure step (see `liandong procedure`)")
    _identity(r)
    r.add_argument("referral_id")
    r.add_argument("command")
    r.add_argument("--payload", help="JSON object or @file")
    _key_option(r)
    r.set_defaults(fn=cmd_referral)
    r = rsub.add_parser("show", help="status, timeline, next actions for your role")
    _identity(r)
    r.add_argument("referral_id")
    r.set_defaults(fn=cmd_referral)
    r = rsub.add_parser("list", help="referrals visible to you")
    _identity(r)
    r.add_argument("--state")
    r.add_argument("--in-county", dest="county_filter")
    r.set_defaults(fn=cmd_referral)

    from shared import clidocs
    clidocs.add_parsers(sub, _identity, _key_option, _token)

    p = sub.add_parser("alerts", help="online alerts and their tasks: send, replay a CSV, "
                       "list, show, act, stats, kinds, dead-letters, intake",
                       description="Alerts (线上+线下联动): send one as a system client, replay "
                       "a CSV of them, and work their tasks (acknowledge, arrive, dispose, "
                       "close). Kinds and their fields: `liandong alerts kinds`.")
    asub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = asub.add_parser("send", help="send one alert (JSON) as a system client")
    a.add_argument("--client", required=True, help="the alert source, e.g. wim-platform")
    a.add_argument("--payload", required=True,
                   help='JSON object or @file: {"alert_id", "kind", ...the kind\'s fields}')
    a.set_defaults(fn=cmd_alerts)
    a = asub.add_parser("replay", help="send every alert of a CSV file (header: field "
                        "names); prints created/merged/duplicate/refused, exit 2 if any "
                        "was refused")
    a.add_argument("file")
    a.add_argument("--client", required=True, help="the alert source, e.g. hotline-12328")
    a.set_defaults(fn=cmd_alerts)
    a = asub.add_parser("kinds", help="kinds of alert, sites, berths, periods in force")
    a.set_defaults(fn=cmd_alerts)
    a = asub.add_parser("list", help="tasks visible to you (! = urgent, xN = alerts merged)")
    _identity(a)
    a.add_argument("--state")
    a.add_argument("--in-county", dest="county_filter")
    a.add_argument("--limit", type=int, default=100)
    a.set_defaults(fn=cmd_alerts)
    a = asub.add_parser("show", help="one task with its timeline and your next actions")
    _identity(a)
    a.add_argument("task_id")
    a.set_defaults(fn=cmd_alerts)
    a = asub.add_parser("act", help="acknowledge | arrive | dispose | close a task")
    _identity(a)
    a.add_argument("task_id")
    a.add_argument("command", choices=["acknowledge", "arrive", "dispose", "close"])
    a.add_argument("--payload", help='JSON object or @file, e.g. {"result": "warning"}')
    _key_option(a)
    a.set_defaults(fn=cmd_alerts)
    a = asub.add_parser("stats", help="alerts -> tasks -> cases per county/domain/kind")
    _identity(a)
    a.add_argument("--group-by", default="county", choices=["county", "domain", "alert_kind"])
    a.set_defaults(fn=cmd_alerts)
    a = asub.add_parser("dead-letters", help="MQTT messages the intake could not apply, "
                        "newest first, with their reason (kept, never dropped)")
    a.add_argument("--source", help="only this device / gateway (its topic level)")
    a.add_argument("--limit", type=int, default=50)
    a.set_defaults(fn=cmd_alerts)
    a = asub.add_parser("intake", help="alerts a minute per source and whether it is a "
                        "storm (ALERTS_STORM_PER_MINUTE)")
    a.set_defaults(fn=cmd_alerts)

    from services.supervision.cli import add_parser as add_penalties
    add_penalties(sub, _identity)

    from shared.bususers import add_parser as add_bus
    add_bus(sub)

    p = sub.add_parser("board", help="open handoffs visible to you, nearest deadline first")
    _identity(p)
    p.add_argument("--kind")
    p.add_argument("--in-county", dest="in_county")
    p.add_argument("--agency")
    p.add_argument("--state")
    p.add_argument("--q", help="case number, plate or party")
    p.add_argument("--overdue", action="store_true")
    p.add_argument("--all", action="store_true", help="include closed")
    p.add_argument("--limit", type=int, default=200)
    p.set_defaults(fn=cmd_board)

    p = sub.add_parser("handoff", help="status, next deadline and timeline of one handoff")
    _identity(p)
    p.add_argument("handoff_id")
    p.set_defaults(fn=cmd_handoff)

    p = sub.add_parser("rebuild-tracker",
                       help="reset the tracker and re-apply every service's events")
    p.add_argument("--page", type=int, default=1000,
                   help="events per batch (at most 2000: a service exports no more at once)")
    p.set_defaults(fn=cmd_rebuild)

    p = sub.add_parser("demo", help="seed a demo scenario through the running services",
                       description="Every kind of handoff (criminal referrals, market "
                       "referrals both ways, joint actions, assistance requests) in every "
                       "county, at every stage, with steps backdated over the past year so "
                       "that some are overdue and every demo user of deploy/users.demo.yaml "
                       "has work; before each transfer it uploads small PDFs of the papers "
                       "Decree art. 6 requires, into the blob store this environment "
                       "configures. Development only (LIANDONG_ENV=development: the services "
                       "refuse backdated steps otherwise). Running it twice adds nothing.")
    p.add_argument("--count", type=int, default=20,
                   help="criminal referrals (at least 14); the other kinds in proportion")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("audit", help="verify the tamper-evident audit trails (hash chains)")
    p.add_argument("--service", action="append", help="only this service (repeatable)",
                   choices=[s for s in DATABASES if s != "tracker"])
    p.add_argument("--id", help="only this handoff")
    p.add_argument("--tokens", action="store_true",
                   help="instead: list every token this CLI issued (who ran it, for which "
                        "identity, kid, jti) from <LIANDONG_DATA_DIR>/audit/tokens.jsonl and "
                        "check its hash chain")
    p.add_argument("--security", action="store_true",
                   help="instead: the gateway's security audit (sign-ins, failures, "
                        "lock-outs, user changes, revocations) and its hash chain")
    p.add_argument("--kind", help="with --security: only records of this kind (prefix, "
                                  "e.g. signin.failed, user., token.revoked)")
    p.add_argument("--user", help="with --security: only this user's records")
    p.add_argument("--limit", type=int, help="with --security: the last N records")
    p.set_defaults(fn=cmd_audit)

    from services.gateway.admin import add_users_parser
    add_users_parser(sub)

    p = sub.add_parser("keys", help="token signing keys: init, list, rotate, retire",
                       description="Ed25519 keys of bearer tokens. The gateway signs people's "
                       "tokens, the operator key this CLI's; every service trusts the public "
                       "keys in LIANDONG_TOKEN_PUBLIC_KEYS. Rotation: `keys rotate ISSUER`, "
                       "copy the new public key to the services, `keys rotate ISSUER "
                       "--activate`, later `keys retire OLD_KID`.")
    ksub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    k = ksub.add_parser("init", help="create the issuers' production keys where missing")
    k.add_argument("--issuer", action="append", choices=tokenkeys.ISSUERS,
                   help="only this issuer (repeatable); default both")
    k = ksub.add_parser("list", help="keys in the folder: use, trusted, development or not")
    k = ksub.add_parser("rotate", help="create an issuer's next key (trusted, not signing); "
                                      "--activate switches the issuer to it")
    k.add_argument("issuer_name", metavar="ISSUER", choices=tokenkeys.ISSUERS,
                   help=" or ".join(tokenkeys.ISSUERS))
    k.add_argument("--activate", action="store_true",
                   help="step 2: sign with the next key from now on")
    k = ksub.add_parser("retire", help="stop trusting a key id (after its tokens expired)")
    k.add_argument("kid")
    for k in ksub.choices.values():
        k.add_argument("--dir", help="keys folder (default LIANDONG_TOKEN_KEYS_DIR, else "
                                     "<LIANDONG_KEYS_DIR>/tokens); public keys in its public/")
        k.set_defaults(fn=cmd_keys)

    p = sub.add_parser("outbox", help="show each service's unsent outbox backlog (read "
                       "from its database; works while the service is down)")
    p.add_argument("--service", action="append", choices=DATABASES)
    p.set_defaults(fn=cmd_outbox)

    p = sub.add_parser("relay", help="run a service's outbox relay as its own process")
    p.add_argument("--service", required=True, choices=DATABASES)
    p.add_argument("--once", action="store_true", help="publish the backlog and exit")
    p.set_defaults(fn=cmd_relay)

    p = sub.add_parser("notifications", help="deliveries of notifications: pending, failing, "
                       "sent (exit 1 when --status failing lists any)",
                       description="What the notifications service told whom, over which "
                       "channel (deploy/notifications.yaml). `failing`: tried three times or "
                       "more and still not through; the last error says why. Each delivery "
                       "is sent at least once with back-off, under one idempotency key.")
    p.add_argument("--status", choices=["pending", "failing", "sent"],
                   help="only these (default: all)")
    p.add_argument("--limit", type=int, default=100, help="at most this many, newest first")
    p.set_defaults(fn=cmd_notifications)

    calendar_cli.add_parser(sub)

    p = sub.add_parser("dead-letters", help="list, replay or purge dead letters")
    p.add_argument("action", choices=["list", "replay", "purge"])
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--queue", help="replay only messages that failed in this queue")
    p.set_defaults(fn=cmd_dead_letters)
    return parser


def main(argv=None) -> int:
    import warnings
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args) or 0
    except Exception as exc:
        if not _unreachable(exc):
            raise
        print(f"liandong {args.cmd}: {_reason(exc)}\n  (is RabbitMQ at "
              f"{amqp_uri().rsplit('@', 1)[-1]} and the service running? `liandong health` "
              "says which one answers)", file=sys.stderr)
        return 1


def _unreachable(exc: Exception) -> bool:
    """The broker or a service did not answer: an operator's error line, not a trace."""
    from nameko.exceptions import RpcTimeout, UnknownService
    return isinstance(exc, (RpcTimeout, UnknownService, ConnectionError)) or \
        type(exc).__module__.split(".")[0] in ("amqp", "kombu", "pika")


if __name__ == "__main__":
    sys.exit(main())

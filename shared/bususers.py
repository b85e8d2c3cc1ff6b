"""Every service's own RabbitMQ user with topic permissions (contracts/bus/publishers.yaml).

Each service connects as its own user, allowed to publish on ``liandong.events`` only the
routing keys of its own event types (a service that issues none: no routing key); RPC
and its own queues stay allowed. A service's password is ``LIANDONG_BUS_PASSWORD_<SERVICE>``.

* ``liandong bus users apply [--vhost /]`` creates (or updates) the users on a running
  broker with ``rabbitmqctl``; a password not given is generated and every URI written
  (mode 0600) to ``<LIANDONG_DATA_DIR>/bus-credentials.env`` as ``<SERVICE>_AMQP_URI=...``.
* ``liandong bus definitions --out FILE`` writes the broker's definitions (users with
  salted SHA-256 password hashes, the vhost, permissions, topic permissions), which the
  nodes of docker-compose.yml load at start (``load_definitions``); every password is
  required there, none is generated.
* ``liandong bus migrate-queues`` makes the ``rpc-<service>`` queues quorum queues
  (shared/busqueues.py).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import yaml

from shared import busqueues
from shared.standards import CONTRACTS_DIR

ADMIN_TAGS = "administrator"
HOW_TO_MAKE = "openssl rand -hex 24"


def publishers() -> dict:
    return yaml.safe_load((CONTRACTS_DIR / "bus" / "publishers.yaml").read_text("utf-8"))


def write_pattern(prefixes: list[str]) -> str:
    """Routing keys this publisher may write: its event types, nothing else."""
    if not prefixes:
        return "^$"
    return "^(" + "|".join(re.escape(p) for p in prefixes) + r")\..+$"


def bus_users() -> dict[str, tuple[str, str]]:
    """service -> (its RabbitMQ user, the routing keys it may publish on the exchange)."""
    doc = publishers()
    users = {service: (spec["user"], write_pattern(spec["event_prefixes"]))
             for service, spec in doc["publishers"].items()}
    users.update({service: (spec["user"], write_pattern([]))
                  for service, spec in (doc.get("consumers") or {}).items()})
    return users


def password_variable(service: str) -> str:
    return f"LIANDONG_BUS_PASSWORD_{service.upper()}"


def _password(service: str, generate: bool) -> str:
    name = password_variable(service)
    password = os.environ.get(name)
    if not password:
        if not generate:
            raise ValueError(f"{name} is not set: give {service} a password "
                             f"(e.g. {HOW_TO_MAKE})")
        password = secrets.token_hex(24)
    # rabbitmqctl would read a leading "-" as an option (a generated one is hex)
    if password.startswith("-"):
        raise ValueError(f"{name} must not start with '-' (rabbitmqctl takes it for an option)")
    return password


def uri(user: str, password: str, host: str, port: int, vhost: str) -> str:
    return f"amqp://{user}:{quote(password, safe='')}@{host}:{port}/{quote(vhost, safe='')}"


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True)


def apply(vhost: str = "/", host: str = "127.0.0.1", port: int = 5672,
          data_dir: Path | None = None) -> dict[str, str]:
    """Create/update the users; return service -> AMQP URI with its own credentials."""
    exchange = publishers()["exchange"]
    uris = {}
    for service, (user, writes) in bus_users().items():
        password = _password(service, generate=True)
        try:
            _ctl("add_user", user, password)
        except subprocess.CalledProcessError:
            _ctl("change_password", user, password)
        _ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        _ctl("set_topic_permissions", "-p", vhost, user, exchange, writes, ".*")
        uris[service] = uri(user, password, host, port, vhost)
    if data_dir is not None:
        path = Path(data_dir) / "bus-credentials.env"
        path.write_text("".join(f"{s.upper()}_AMQP_URI={u}\n" for s, u in uris.items()))
        path.chmod(0o600)
    return uris


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + pw))."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(vhost: str = "/", admin: str | None = None) -> dict:
    """The broker's definitions: the administrator (RABBITMQ_USER, default liandong, and
    RABBITMQ_PASSWORD: a node that loads definitions at start creates no default user)
    and every service's user, with permissions and topic permissions on ``vhost``."""
    admin = admin or os.environ.get("RABBITMQ_USER") or "liandong"
    admin_password = os.environ.get("RABBITMQ_PASSWORD")
    if not admin_password:
        raise ValueError(f"RABBITMQ_PASSWORD is not set: the administrator {admin!r} needs "
                         f"one (e.g. {HOW_TO_MAKE})")
    exchange = publishers()["exchange"]
    users = [(admin, admin_password, ADMIN_TAGS, ".*")]
    users += [(user, _password(service, generate=False), "", writes)
              for service, (user, writes) in bus_users().items()]
    return {
        "users": [{"name": name, "password_hash": password_hash(password),
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": tags}
                  for name, password, tags, _ in users],
        "vhosts": [{"name": vhost}],
        "permissions": [{"user": name, "vhost": vhost, "configure": ".*", "write": ".*",
                         "read": ".*"} for name, *_ in users],
        "topic_permissions": [{"user": name, "vhost": vhost, "exchange": exchange,
                               "write": writes, "read": ".*"}
                              for name, _, _, writes in users],
    }


# ------------------------------------------------------------------ `liandong bus`

def cmd_bus(args) -> int:
    if args.action == "users":
        if args.users_action == "show":
            for service, (user, writes) in bus_users().items():
                print(f"{service:16s} user {user:28s} may publish {writes}")
            return 0
        data_dir = Path(os.environ.get("LIANDONG_DATA_DIR", "var"))
        data_dir.mkdir(parents=True, exist_ok=True)
        uris = apply(args.vhost, data_dir=data_dir)
        print(f"{len(uris)} users set up in vhost {args.vhost!r}; credentials in "
              f"{data_dir / 'bus-credentials.env'}")
        return 0
    if args.action == "definitions":
        try:
            doc = definitions(args.vhost)
        except ValueError as exc:
            print(f"liandong bus definitions: {exc}", file=sys.stderr)
            return 2
        text = json.dumps(doc, indent=2) + "\n"
        if args.out in (None, "-"):
            sys.stdout.write(text)
        else:
            path = Path(args.out)
            path.write_text(text)
            path.chmod(0o600)
            print(f"{len(doc['users'])} users (password hashes) written to {path}",
                  file=sys.stderr)
        return 0
    return cmd_migrate_queues(args)


def cmd_migrate_queues(args) -> int:
    from shared.cli import SERVICES, amqp_uri
    services = args.service or SERVICES
    if args.check:
        states = busqueues.status(amqp_uri(), services)
        for state in states:
            print(f"{state.name:24s} {state.kind:8s} messages {state.messages:<6d} "
                  f"consumers {state.consumers}")
        return 1 if any(s.kind == "classic" for s in states) else 0
    done, refused = busqueues.migrate(amqp_uri(), services)
    for line in done:
        print(line)
    for line in refused:
        print(f"refused: {line}", file=sys.stderr)
    return 1 if refused else 0


def add_parser(sub) -> None:
    from shared.cli import SERVICES
    p = sub.add_parser("bus", help="the broker: services' users, definitions, RPC queues",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    bsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    b = bsub.add_parser("users", help="each service's own user with topic permissions "
                                      "(rabbitmqctl on a running node)")
    b.add_argument("users_action", choices=["apply", "show"],
                   help="apply: create/update the users; show: list them")
    b.add_argument("--vhost", default="/")
    b = bsub.add_parser("definitions", help="the broker's definitions file (users, "
                                            "permissions, topic permissions) from the "
                                            "RABBITMQ_PASSWORD and LIANDONG_BUS_PASSWORD_* "
                                            "variables, loaded by the nodes at start")
    b.add_argument("--vhost", default="/")
    b.add_argument("--out", help="file to write (mode 0600); default: standard output")
    b = bsub.add_parser("migrate-queues",
                        help="make the rpc-<service> queues quorum queues (a classic one "
                             "of a stopped service is moved: its waiting requests kept)",
                        description=busqueues.__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--service", action="append", choices=SERVICES,
                   help="only this service (repeatable); default: every service")
    b.add_argument("--check", action="store_true",
                   help="only list each queue's type; exit 1 while one is classic")
    p.set_defaults(fn=cmd_bus)


def main(argv=None) -> int:
    """``python -m shared.bususers apply|show``: kept for scripts; ``liandong bus users``."""
    parser = argparse.ArgumentParser(prog="python -m shared.bususers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("users_action", choices=["apply", "show"])
    parser.add_argument("--vhost", default="/")
    args = parser.parse_args(argv)
    args.action = "users"
    return cmd_bus(args)


if __name__ == "__main__":
    sys.exit(main())

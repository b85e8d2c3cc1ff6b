"""Per-agency RabbitMQ users with topic permissions, from contracts/bus/publishers.yaml.

``python -m shared.bususers apply --vhost /`` creates (or updates) one user per issuing
service, allowed to publish on ``liandong.events`` only routing keys of its own event
types; RPC and its own queues stay allowed. Passwords come from
``LIANDONG_BUS_PASSWORD_<SERVICE>`` or are generated and written (mode 0600) to
``<LIANDONG_DATA_DIR>/bus-credentials.env`` as ``<SERVICE>_AMQP_URI=...`` lines.
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import yaml

from shared.standards import CONTRACTS_DIR


def publishers() -> dict:
    return yaml.safe_load((CONTRACTS_DIR / "bus" / "publishers.yaml").read_text("utf-8"))


def write_pattern(prefixes: list[str]) -> str:
    """Routing keys this publisher may write: its event types, nothing else."""
    if not prefixes:
        return "^$"
    return "^(" + "|".join(re.escape(p) for p in prefixes) + r")\..+$"


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True)


def apply(vhost: str = "/", host: str = "127.0.0.1", port: int = 5672,
          data_dir: Path | None = None) -> dict[str, str]:
    """Create/update the users; return service -> AMQP URI with its own credentials."""
    doc = publishers()
    exchange = doc["exchange"]
    uris = {}
    for service, spec in doc["publishers"].items():
        user = spec["user"]
        # hex: a generated password never starts with "-" (rabbitmqctl would read it as
        # an option) and needs no quoting in a URI
        password = os.environ.get(f"LIANDONG_BUS_PASSWORD_{service.upper()}") or \
            secrets.token_hex(24)
        if password.startswith("-"):
            raise ValueError(f"LIANDONG_BUS_PASSWORD_{service.upper()} must not start with "
                             "'-' (rabbitmqctl takes it for an option)")
        try:
            _ctl("add_user", user, password)
        except subprocess.CalledProcessError:
            _ctl("change_password", user, password)
        _ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        _ctl("set_topic_permissions", "-p", vhost, user, exchange,
             write_pattern(spec["event_prefixes"]), ".*")
        uris[service] = f"amqp://{user}:{quote(password, safe='')}@{host}:{port}/" \
                        f"{quote(vhost, safe='')}"
    if data_dir is not None:
        path = Path(data_dir) / "bus-credentials.env"
        path.write_text("".join(f"{s.upper()}_AMQP_URI={u}\n" for s, u in uris.items()))
        path.chmod(0o600)
    return uris


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.bususers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["apply", "show"])
    parser.add_argument("--vhost", default="/")
    args = parser.parse_args(argv)
    if args.action == "show":
        for service, spec in publishers()["publishers"].items():
            print(f"{service:16s} user {spec['user']:28s} may publish "
                  f"{write_pattern(spec['event_prefixes'])}")
        return 0
    data_dir = Path(os.environ.get("LIANDONG_DATA_DIR", "var"))
    data_dir.mkdir(parents=True, exist_ok=True)
    uris = apply(args.vhost, data_dir=data_dir)
    print(f"{len(uris)} users set up in vhost {args.vhost!r}; credentials in "
          f"{data_dir / 'bus-credentials.env'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

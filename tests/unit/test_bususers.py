"""Each service's RabbitMQ user (shared/bususers.py): the broker definitions file
``liandong bus definitions`` writes, and the quorum ``rpc-<service>`` queue every service
declares (shared/topology.py, shared/nameko_ext.py)."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
from unittest import mock

import pytest
from kombu import Exchange

from shared import bususers
from shared.cli import SERVICES, build_parser

PASSWORDS = {bususers.password_variable(s): f"pw-{s}-0123456789" for s in SERVICES}


@pytest.fixture
def passwords(monkeypatch):
    for name, value in PASSWORDS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RABBITMQ_PASSWORD", "admin-secret-0123456789")
    monkeypatch.delenv("RABBITMQ_USER", raising=False)


def verifies(password: str, stored: str) -> bool:
    raw = base64.b64decode(stored)
    salt, digest = raw[:4], raw[4:]
    return hashlib.sha256(salt + password.encode()).digest() == digest


def test_every_service_has_a_user_of_its_own():
    users = bususers.bus_users()
    assert set(users) == set(SERVICES)
    assert len({user for user, _ in users.values()}) == len(users)
    # consumers-only services may publish nothing on the event exchange
    assert users["documents"][1] == users["notifications"][1] == "^$"
    assert re.fullmatch(users["police_handoff"][1], "criminal_referral.filed.v1")
    assert not re.fullmatch(users["police_handoff"][1], "market_referral.accepted.v1")


def test_definitions_hold_every_user_hashed_with_its_topic_permission(passwords):
    doc = bususers.definitions("/")
    users = {u["name"]: u for u in doc["users"]}
    assert set(users) == {"liandong", *(u for u, _ in bususers.bus_users().values())}
    assert users["liandong"]["tags"] == "administrator"
    assert verifies("admin-secret-0123456789", users["liandong"]["password_hash"])
    for service, (user, writes) in bususers.bus_users().items():
        assert users[user]["tags"] == ""
        assert users[user]["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        assert verifies(PASSWORDS[bususers.password_variable(service)],
                        users[user]["password_hash"])
        assert "pw-" not in json.dumps(users[user]), "a password in clear"
        (topic,) = [t for t in doc["topic_permissions"] if t["user"] == user]
        assert topic == {"user": user, "vhost": "/", "exchange": "liandong.events",
                         "write": writes, "read": ".*"}
    assert {p["user"] for p in doc["permissions"]} == set(users)
    assert doc["vhosts"] == [{"name": "/"}]


def test_salts_differ_between_users_and_runs():
    assert bususers.password_hash("same") != bususers.password_hash("same")
    assert verifies("same", bususers.password_hash("same"))


def test_definitions_refuse_a_missing_password(passwords, monkeypatch):
    monkeypatch.delenv("LIANDONG_BUS_PASSWORD_TRACKER")
    with pytest.raises(ValueError, match="LIANDONG_BUS_PASSWORD_TRACKER .*openssl rand"):
        bususers.definitions()
    monkeypatch.setenv("LIANDONG_BUS_PASSWORD_TRACKER", "x")
    monkeypatch.delenv("RABBITMQ_PASSWORD")
    with pytest.raises(ValueError, match="RABBITMQ_PASSWORD"):
        bususers.definitions()


def test_cli_bus_definitions_writes_a_private_file(passwords, tmp_path, capsys, monkeypatch):
    out = tmp_path / "definitions.json"
    args = build_parser().parse_args(["bus", "definitions", "--out", str(out)])
    assert args.fn(args) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert len(json.loads(out.read_text())["users"]) == len(SERVICES) + 1
    monkeypatch.delenv("LIANDONG_BUS_PASSWORD_GATEWAY")
    args = build_parser().parse_args(["bus", "definitions"])
    assert args.fn(args) == 2
    assert "LIANDONG_BUS_PASSWORD_GATEWAY is not set" in capsys.readouterr().err


def test_cli_bus_users_show(capsys):
    args = build_parser().parse_args(["bus", "users", "show"])
    assert args.fn(args) == 0
    shown = capsys.readouterr().out
    for service, (user, _) in bususers.bus_users().items():
        assert service in shown and user in shown


# --- the rpc-<service> queue ---------------------------------------------------------

def test_rpc_queue_is_a_durable_quorum_queue():
    from shared.topology import rpc_queue
    q = rpc_queue("tracker", Exchange("nameko-rpc", type="topic", durable=True))
    assert q.name == "rpc-tracker" and q.routing_key == "tracker.*"
    assert q.queue_arguments == {"x-queue-type": "quorum"}
    assert q.durable and not q.exclusive and not q.auto_delete


def test_every_service_declares_its_rpc_queue_as_quorum():
    from shared.nameko_ext import ResilientRpcConsumer
    consumer = ResilientRpcConsumer()
    consumer.container = mock.Mock(service_name="police_handoff", config={})
    consumer.queue_consumer = mock.Mock()
    consumer.setup()
    assert consumer.queue.name == "rpc-police_handoff"
    assert consumer.queue.queue_arguments["x-queue-type"] == "quorum"
    assert consumer.queue.exchange.name == "nameko-rpc"
    consumer.queue_consumer.register_provider.assert_called_once_with(consumer)


# --- the reply queue of a service that calls others -----------------------------------

def test_reply_queue_of_a_calling_service_is_a_quorum_queue_that_expires():
    """A classic reply queue lives on one node: while that node is down, the process's
    one nameko consumer (its rpc-<service> queue too) cannot reconnect at all."""
    from shared.nameko_ext import ResilientReplyListener
    listener = ResilientReplyListener()
    listener.container = mock.Mock(service_name="gateway", config={})
    listener.queue_consumer = mock.Mock()
    listener.setup()
    q = listener.queue
    assert q.name.startswith("rpc.reply-gateway-") and q.routing_key == listener.routing_key
    assert q.queue_arguments == {"x-queue-type": "quorum", "x-expires": 300_000}
    assert q.durable and not q.exclusive and not q.auto_delete
    assert q.exchange.name == "nameko-rpc"
    listener.queue_consumer.register_provider.assert_called_once_with(listener)


def test_every_service_calls_others_over_the_replicated_reply_queue():
    import importlib

    from nameko.rpc import RpcProxy as NamekoRpcProxy

    from shared.nameko_ext import RpcProxy
    callers = []
    for name in SERVICES:
        module = importlib.import_module(f"services.{name}.service")
        for cls in [v for v in vars(module).values() if isinstance(v, type)]:
            for attr, value in vars(cls).items():
                if isinstance(value, NamekoRpcProxy):
                    assert isinstance(value, RpcProxy), f"{name}: {cls.__name__}.{attr}"
                    callers.append(name)
    assert {"gateway", "alerts", "documents"} <= set(callers)

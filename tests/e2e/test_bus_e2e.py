"""The bus in production (issue 15 part 4), on a real RabbitMQ:

1. The machine's broker, in a vhost of this test: a vhost where nameko made the
   ``rpc-tracker`` queue a classic queue (with a request still waiting in it) is migrated
   by ``liandong bus migrate-queues``; the services then declare every ``rpc-<service>``
   queue as a quorum queue, RPC answers, and the waiting request gets its reply. A
   classic queue that still has a consumer is refused, not touched.
2. A private node (tests/brokers.py) that loads ``liandong bus definitions`` at start, as
   the compose nodes do: no ``guest``, each service connects as its own user, a publish
   outside a user's own event types is refused, RPC and events flow.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from urllib.parse import quote

import pika
import pytest
from kombu import Connection, Exchange, Queue
from pika.exceptions import ChannelClosedByBroker, ProbableAuthenticationError

from shared import bususers
from tests import brokers
from tests.conftest import ROOT, Stack, vhost, wait_for
from tests.e2e.test_security_e2e import _publish
from tests.helpers import UNIT, draft_payload, token

pytestmark = pytest.mark.e2e

RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True)


def cli(env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def queue_types(vh: str, ctl=None) -> dict[str, str]:
    """name -> type of every queue in ``vh`` (rabbitmqctl)."""
    args = ["list_queues", "-p", vh, "name", "type", "--formatter", "json"]
    out = ctl(*args).stdout if ctl else subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True).stdout
    return {q["name"]: q["type"] for q in json.loads(out[out.index("["):])}


def request(conn: Connection, method: str, reply_to: str, correlation_id: str) -> None:
    """An RPC request as nameko's proxy sends it."""
    with conn.Producer() as producer:
        producer.publish({"args": [], "kwargs": {}}, exchange=RPC_EXCHANGE,
                         routing_key=method, reply_to=reply_to,
                         correlation_id=correlation_id, delivery_mode=2,
                         headers={"nameko.call_id_stack": [f"test.{correlation_id}"]})


@pytest.mark.skipif(not shutil.which("rabbitmqctl"), reason="needs rabbitmqctl (local broker)")
def test_classic_rpc_queue_migrated_then_every_rpc_queue_is_quorum(servers, tmp_path):
    host, port, _pg = servers
    if not host.endswith("@127.0.0.1"):
        pytest.skip("needs the local broker (rabbitmqctl)")
    with vhost(f"liandong-bus-{uuid.uuid4().hex[:8]}", True) as vh:
        uri = f"amqp://{host}:{port}/{quote(vh, safe='')}"
        stack = Stack("sqlite", uri, tmp_path, None)
        # what nameko 2.14 declared: a classic rpc-tracker, a request waiting in it
        with Connection(uri) as conn:
            channel = conn.default_channel
            RPC_EXCHANGE(channel).declare()
            Queue("rpc-tracker", exchange=RPC_EXCHANGE, routing_key="tracker.*",
                  durable=True)(channel).declare()
            Queue("test-replies", exchange=RPC_EXCHANGE, routing_key="test-replies",
                  durable=False, auto_delete=False)(channel).declare()
            request(conn, "tracker.health", "test-replies", "waiting-1")
        assert queue_types(vh)["rpc-tracker"] == "classic"

        check = cli(stack.env, "bus", "migrate-queues", "--check")
        assert check.returncode == 1, check
        assert "rpc-tracker" in check.stdout and "classic" in check.stdout
        done = cli(stack.env, "bus", "migrate-queues")
        assert done.returncode == 0, done
        assert "rpc-tracker: classic -> quorum (1 waiting request(s) moved, 1 back)" \
            in done.stdout, done.stdout
        assert queue_types(vh)["rpc-tracker"] == "quorum"
        assert "rpc-tracker.migrating" not in queue_types(vh)

        try:
            for service in ("gateway", "tracker", "police_handoff"):   # gateway: revocations
                stack.start(service)
            types = queue_types(vh)
            assert types["rpc-tracker"] == types["rpc-police_handoff"] == "quorum", types
            # a calling service's reply queue is replicated too (shared.topology.reply_queue:
            # issue 15, a classic one on a stopped node kept the gateway's consumer down);
            # a standalone proxy's (the CLI, the revocation fetch) is its own, per call
            replies = [n for n in types if n.startswith("rpc.reply-")]
            services = [n for n in replies if not n.startswith("rpc.reply-standalone_rpc_proxy-")]
            assert any(n.startswith("rpc.reply-gateway-") for n in services), types
            assert all(types[n] == "quorum" for n in services), types
            assert all(types[n] == "classic" for n in replies if n not in services), types

            # the request that waited through the migration was answered
            def reply():
                with Connection(uri) as conn:
                    return conn.default_channel.basic_get("test-replies", no_ack=True)
            answer = wait_for(reply, timeout=30, message="reply to the waiting request")
            assert answer.properties["correlation_id"] == "waiting-1"
            assert json.loads(answer.body)["result"]["service"] == "tracker"

            # RPC through the quorum queues
            with stack.rpc() as rpc:
                rec = rpc.police_handoff.create(token(UNIT), "draft",
                                                draft_payload(f"BUS-{uuid.uuid4().hex[:6]}"))
                assert rpc.police_handoff.get(token(UNIT), rec["id"])["id"] == rec["id"]

            # a classic queue with a consumer (a replica of the old version still
            # running) is refused and left as it is
            with Connection(uri) as conn:
                channel = conn.channel()
                old = Queue("rpc-command", exchange=RPC_EXCHANGE, routing_key="command.*",
                            durable=True)(channel)
                old.declare()
                old.consume(consumer_tag="old-replica", callback=lambda m: None)
                refused = cli(stack.env, "bus", "migrate-queues", "--service", "command")
                assert refused.returncode == 1, refused
                assert "stop every replica of command" in refused.stderr, refused.stderr
                assert queue_types(vh)["rpc-command"] == "classic"
                old.cancel("old-replica")
            moved = cli(stack.env, "bus", "migrate-queues", "--service", "command")
            assert moved.returncode == 0 and "classic -> quorum" in moved.stdout, moved
            assert cli(stack.env, "bus", "migrate-queues", "--check").returncode == 0
        finally:
            stack.shutdown()


# ------------------------------------------------------------------ definitions at start

@pytest.mark.skipif(not brokers.available(), reason="rabbitmq-server is not installed")
def test_node_loads_bus_definitions_and_each_service_runs_as_its_own_user(tmp_path):
    passwords = {bususers.password_variable(s): uuid.uuid4().hex for s in bususers.bus_users()}
    admin_password = uuid.uuid4().hex
    env_ = {**os.environ, **passwords, "RABBITMQ_USER": "liandong",
            "RABBITMQ_PASSWORD": admin_password, "PYTHONWARNINGS": "ignore"}
    definitions = tmp_path / "definitions.json"
    made = cli(env_, "bus", "definitions", "--out", str(definitions))
    assert made.returncode == 0, made
    assert admin_password not in definitions.read_text()

    with brokers.Brokers() as b:
        node = b.new_node()
        node.extra_conf = [f"load_definitions = {definitions}"]
        node.start()
        users = node.ctl("list_users", "--formatter", "json").stdout
        names = {u["user"] for u in json.loads(users[users.index("["):])}
        assert names == {"liandong", *(u for u, _ in bususers.bus_users().values())}, names
        with pytest.raises(ProbableAuthenticationError):      # no guest user
            pika.BlockingConnection(pika.URLParameters(node.uri()))

        def uri_of(service: str) -> str:
            user = bususers.bus_users()[service][0]
            return node.uri("/", user, passwords[bususers.password_variable(service)])

        admin = node.uri("/", "liandong", admin_password)
        stack = Stack("sqlite", admin, tmp_path, None)
        try:
            for service in ("gateway", "tracker", "police_handoff"):  # gateway: revocations
                stack.start(service, AMQP_URI=uri_of(service))
            connections = node.ctl("list_connections", "user", "--formatter", "json").stdout
            connected = {c["user"] for c in json.loads(connections[connections.index("["):])}
            assert {bususers.bus_users()[s][0]
                    for s in ("gateway", "tracker", "police_handoff")} <= connected, connected
            with stack.rpc() as rpc:
                rec = rpc.police_handoff.create(token(UNIT), "draft",
                                                draft_payload(f"USR-{uuid.uuid4().hex[:6]}"))

                def tracked():
                    try:
                        return rpc.tracker.handoff(token(UNIT), rec["id"])
                    except Exception:  # noqa: BLE001 - not applied yet
                        return None
                wait_for(tracked, timeout=30, message="the tracker applied the event")
            # topic permissions from the definitions: its own event types only
            _publish(uri_of("police_handoff"), "criminal_referral.bogus_probe.v1")
            with pytest.raises(ChannelClosedByBroker) as refused:
                _publish(uri_of("police_handoff"), "market_referral.accepted.v1")
            assert refused.value.reply_code == 403
            with pytest.raises(ChannelClosedByBroker):
                _publish(uri_of("documents"), "criminal_referral.filed.v1")
            assert queue_types("/", node.ctl)["rpc-police_handoff"] == "quorum"
        finally:
            stack.shutdown()


"""Agency isolation on the bus (topic permissions per publishing user), and the audit
trail checked through the running services on both databases."""
from __future__ import annotations

import shutil
import uuid

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from shared import bususers
from shared import envelope as env
from tests.helpers import COORDINATOR, HEAD, UNIT, draft_payload, token

pytestmark = pytest.mark.e2e


def _vhost(stack) -> str:
    from urllib.parse import unquote
    return unquote(stack.amqp_uri.rsplit("/", 1)[1]) or "/"


def _publish(uri: str, routing_key: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish(env.EXCHANGE, routing_key, b"{}",
                         pika.BasicProperties(message_id=uuid.uuid4().hex))
    finally:
        if conn.is_open:
            conn.close()


@pytest.mark.skipif(not shutil.which("rabbitmqctl"), reason="needs rabbitmqctl (local broker)")
def test_each_publisher_may_publish_only_its_own_event_types(stack):
    uris = bususers.apply(_vhost(stack), data_dir=stack.tmp)
    assert (stack.tmp / "bus-credentials.env").stat().st_mode & 0o777 == 0o600
    _publish(uris["police_handoff"], "criminal_referral.bogus_probe.v1")   # its own: allowed
    for service, forged in (("police_handoff", "market_referral.accepted.v1"),
                            ("market_referral", "criminal_referral.filed.v1"),
                            ("tracker", "joint_action.closed.v1"),
                            ("gateway", "deadline.breached.v1")):
        with pytest.raises(ChannelClosedByBroker) as refused:
            _publish(uris[service], forged)
        assert refused.value.reply_code == 403, (service, forged)
        assert "ACCESS_REFUSED" in refused.value.reply_text


def test_audit_trail_verifies_and_detects_tampering(stack):
    with stack.rpc() as rpc:
        svc = rpc.police_handoff
        rec = svc.create(token(UNIT), "draft", draft_payload(f"AUD-{uuid.uuid4().hex[:6]}"))
        svc.act(token(UNIT), rec["id"], "request_approval", {"transfer_report": "报告"})
        svc.act(token(HEAD), rec["id"], "approve", {"opinion": "同意"})
        intact = svc.verify_audit(token(COORDINATOR), rec["id"])
        assert intact["steps"] == 3 and intact["problems"] == {}
        stack.tamper("police_handoff", "handoff_steps", "UPDATE handoff_steps SET command = "
                     "'refuse' WHERE handoff_id = :h AND step = 3", {"h": rec["id"]})
        broken = svc.verify_audit(token(COORDINATOR), rec["id"])
        assert broken["problems"][rec["id"]] == ["step 3: content does not match its hash"]

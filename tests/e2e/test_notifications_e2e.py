"""Notifications out, end to end: a referral transferred to lucheng's police reaches them
over a signed DingTalk-style robot webhook, a generic HMAC-signed JSON webhook (a real
local HTTP receiver) and e-mail (a real SMTP server, aiosmtpd) -- each once by its
idempotency key, also when the notifier dies between sending and recording it (sent
again after the restart under the same key: at least once, never a second key)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import ROOT, free_port, wait_for
from tests.helpers import (
    HEAD,
    TRANSFER,
    UNIT,
    attach_required_files,
    draft_payload,
    token,
)

pytestmark = pytest.mark.e2e

HOOK_SECRET, DING_SECRET = "hook-test-secret", "ding-test-secret"


class Receiver(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.got.append({"path": self.path, "headers": dict(self.headers), "body": body})
        answer = b'{"errcode": 0, "errmsg": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture()
def receivers(stack, tmp_path):
    from aiosmtpd.controller import Controller
    http_port, smtp_port = free_port(), free_port()
    server = ThreadingHTTPServer(("127.0.0.1", http_port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    config = tmp_path / "notifications.yaml"
    config.write_text(json.dumps({"default": [{"type": "log"}], "units": {"lucheng-psb": [
        {"type": "dingtalk", "name": "duty-robot",
         "url": f"http://127.0.0.1:{http_port}/robot/send?access_token=abc",
         "secret_env": "TEST_DING_SECRET"},
        {"type": "webhook", "name": "hook", "url": f"http://127.0.0.1:{http_port}/hook",
         "secret_env": "TEST_HOOK_SECRET"},
        {"type": "smtp", "name": "mail", "host": "127.0.0.1", "port": smtp_port,
         "from": "liandong@example.test", "to": "duty@lucheng-psb.example.test"}]}}))
    env = {"NOTIFICATIONS_CONFIG": str(config), "TEST_DING_SECRET": DING_SECRET,
           "TEST_HOOK_SECRET": HOOK_SECRET}
    Receiver.got = []
    try:
        yield env, mailbox
    finally:
        server.shutdown()
        smtp.stop()
        if "notifications" in stack.procs:
            stack.stop("notifications")
        stack.start("notifications")          # back to the shipped configuration


def _transfer(stack, number: str) -> None:
    with stack.rpc() as rpc:
        svc = rpc.police_handoff
        rec = svc.create(token(UNIT), "draft", draft_payload(number))
        attach_required_files(svc, rec["id"])
        for actor, command, payload in ((UNIT, "request_approval", {"transfer_report": "r"}),
                                        (HEAD, "approve", {}), (UNIT, "transfer", TRANSFER)):
            rec = svc.act(token(actor), rec["id"], command, payload)


def test_each_channel_gets_the_alert_once_across_a_notifier_crash(stack, receivers):
    env, mailbox = receivers
    # the crashed sender's lease on its delivery runs out after NOTIFICATIONS_LEASE_SECONDS
    # (60 by default, which left this test's 60 s wait on the edge): 5 here
    env = {**env, "NOTIFICATIONS_LEASE_SECONDS": "5"}
    stack.stop("notifications")
    proc = stack.start("notifications", LIANDONG_FAULT="crash_after_send", **env)
    number = f"NOTE-{uuid.uuid4().hex[:6].upper()}"
    _transfer(stack, number)
    wait_for(lambda: proc.poll() is not None, timeout=60,
             message="the notifier to die right after its first send")
    assert proc.returncode == 137
    stack.procs.pop("notifications")
    stack.start("notifications", **env)

    def mine():
        hooks = [g for g in Receiver.got if g["path"] == "/hook" and number in g["body"].decode()]
        robot = [g for g in Receiver.got if g["path"].startswith("/robot/")
                 and number in g["body"].decode()]
        mails = [m for m in mailbox.messages if number in m.get_payload(decode=True).decode()]
        return (hooks, robot, mails) if hooks and robot and mails else None
    hooks, robot, mails = wait_for(mine, timeout=60, message="all three channels")
    time.sleep(2)                              # anything sent twice would be here by now
    hooks, robot, mails = mine()

    # once per channel by its idempotency key; the one sent before the crash may come twice
    keys = {h["headers"]["Idempotency-Key"] for h in hooks}
    assert len(keys) == 1 and len(hooks) <= 2
    assert len({r["headers"]["Idempotency-Key"] for r in robot}) == 1 and len(robot) <= 2
    assert len({m["Message-ID"] for m in mails}) == 1 and len(mails) <= 2
    assert len(hooks) + len(robot) + len(mails) <= 4          # one channel at most twice

    # the generic webhook is signed over its body
    body = hooks[0]["body"]
    expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hooks[0]["headers"]["X-Liandong-Signature"] == expected
    assert json.loads(body)["unit"] == "lucheng-psb"
    # the robot's URL carries the timestamp and the robots' signature
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(robot[0]["path"]).query)
    ts = query["timestamp"][0]
    sign = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(),
                                     hashlib.sha256).digest()).decode()
    assert query["sign"] == [sign] and query["access_token"] == ["abc"]
    assert json.loads(robot[0]["body"])["msgtype"] == "markdown"
    assert mails[0]["To"] == "duty@lucheng-psb.example.test"

    # the operator sees them sent, none failing
    out = subprocess.run([sys.executable, "-m", "shared.cli", "notifications", "--status",
                          "sent"], cwd=ROOT, env=stack.env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("lucheng-psb") >= 3
    failing = subprocess.run([sys.executable, "-m", "shared.cli", "notifications",
                              "--status", "failing"], cwd=ROOT, env=stack.env,
                             capture_output=True, text=True, timeout=60)
    assert failing.returncode == 0 and "0 deliveries shown" in failing.stdout

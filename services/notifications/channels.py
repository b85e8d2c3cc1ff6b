"""Sending one delivery over its channel (blocking I/O made cooperative by eventlet's
monkey patching under nameko). Each raises on failure; the service retries."""
from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from email.utils import formatdate

import requests
import structlog

from services.notifications import domain

log = structlog.get_logger(__name__)
TIMEOUT = 10


def send(delivery: dict, channel: dict) -> None:
    kind = channel["type"]
    if kind == "log":
        log.info("notification", unit=delivery["unit"], topic=delivery["topic"],
                 key=delivery["key"], text=delivery["text"])
        return
    if kind == "dingtalk":
        url = domain.dingtalk_url(domain._secret(channel, "url"),
                                  domain._secret(channel, "secret"), int(time.time() * 1000))
        r = requests.post(url, json=domain.dingtalk_body(delivery["title"], delivery["text"]),
                          headers={"Idempotency-Key": delivery["key"]}, timeout=TIMEOUT)
        r.raise_for_status()
        body = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else {}
        if body.get("errcode", 0) != 0:     # the robots answer 200 with an error code
            raise RuntimeError(f"dingtalk errcode {body.get('errcode')}: {body.get('errmsg')}")
        return
    if kind == "webhook":
        body = domain.webhook_body(delivery)
        headers = {"Content-Type": "application/json", "Idempotency-Key": delivery["key"]}
        secret = domain._secret(channel, "secret")
        if secret:
            headers["X-Liandong-Signature"] = domain.webhook_signature(secret, body)
        r = requests.post(domain._secret(channel, "url"), data=body, headers=headers,
                          timeout=TIMEOUT)
        r.raise_for_status()
        return
    if kind == "smtp":
        msg = EmailMessage()
        msg["Subject"] = delivery["title"]
        msg["From"] = channel.get("from", "liandong@localhost")
        msg["To"] = channel["to"]
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = f"<{delivery['key']}@liandong>"    # the receiver can de-duplicate
        msg.set_content(delivery["text"])
        with smtplib.SMTP(channel["host"], int(channel.get("port", 25)), timeout=TIMEOUT) as s:
            if channel.get("starttls"):
                s.starttls()
            user = domain._secret(channel, "username")
            if user:
                s.login(user, domain._secret(channel, "password") or "")
            s.send_message(msg)
        return
    raise ValueError(f"unknown channel type {kind!r}")

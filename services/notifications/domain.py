"""Notifications in plain Python: which events tell which unit what (deadline alerts,
a handoff addressed to it, an escalation, a returned referral), the channels each unit
is reached by (deploy/notifications.yaml), and how each channel's request is signed.
No nameko, no database here."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import urllib.parse
from functools import cache
from pathlib import Path

import yaml

from shared.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]
CONFIG_ENV = "NOTIFICATIONS_CONFIG"
CHANNEL_TYPES = ("log", "dingtalk", "webhook", "smtp")
KIND_NAMES = {"criminal_referral": "涉嫌犯罪案件移送", "market_referral": "市场监管移送",
              "joint_action": "联合行动", "assistance_request": "协查请求"}
# the side of a handoff a deadline's actor is on: the transport side owns it
OWNER_SIDE = {"enforcement_unit", "agency_head", "sender"}


def notices(envelope: dict) -> list[dict]:
    """[{unit, topic, title, text}] the event calls for (often none)."""
    kind_of, data = envelope["type"], envelope["data"]
    details = data.get("details") or {}
    name = KIND_NAMES.get(data.get("kind"), data.get("kind") or "")
    number = data.get("case_number", "")
    out: list[tuple[str | None, str, str]] = []
    if kind_of.startswith("deadline."):
        deadline = data.get("deadline") or {}
        role = deadline.get("actor_role")
        unit = data.get("owner_unit") if role in OWNER_SIDE or not data.get(
            "counterpart_unit") else data.get("counterpart_unit")
        level = "已超期" if data.get("level") == "breached" else "即将到期"
        what = f"{deadline.get('title', '期限')}{level}（{deadline.get('due')}）"
        out.append((unit, f"deadline_{data.get('level')}", f"{name} {number}：{what}"))
    elif kind_of == "criminal_referral.transferred.v1":
        out.append((details.get("police_unit") or data.get("counterpart_unit"), "new_handoff",
                    f"新移送案件 {number}：请签收回执"))
    elif kind_of in ("market_referral.sent.v1", "market_referral.sent_to_transport.v1",
                     "market_referral.resent.v1"):
        out.append((data.get("counterpart_unit"), "new_handoff", f"{name} {number}：请签收"))
    elif kind_of == "joint_action.dispatched.v1":
        for unit in details.get("recipients") or []:
            title = details.get("title", "")
            out.append((unit, "new_handoff", f"联合行动 {number}「{title}」：请签收"))
    elif kind_of in ("assistance_request.requested.v1", "assistance_request.approved.v1") \
            and data.get("state") == "requested":
        out.append((details.get("target_unit") or data.get("counterpart_unit"), "new_handoff",
                    f"协查请求 {number}：请签收"))
    elif kind_of == "joint_action.escalated.v1":
        miss = "签收" if details.get("miss") == "acknowledgement" else "报送结果"
        out.append((details.get("escalated_to"), "escalation",
                    f"联合行动 {number}：{details.get('recipient')} 超时未{miss}，已升级"))
    elif kind_of in ("market_referral.returned.v1", "criminal_referral.returned_for_penalty.v1"):
        reason = details.get("reason", "")
        out.append((data.get("owner_unit"), "returned", f"{name} {number} 已退回：{reason}"))
    return [{"unit": unit, "topic": topic, "title": f"联动提醒：{topic_title(topic)}", "text": text}
            for unit, topic, text in out if unit]


def topic_title(topic: str) -> str:
    return {"deadline_approaching": "期限将至", "deadline_breached": "已超期",
            "new_handoff": "新的待办", "escalation": "超时升级",
            "returned": "案件退回"}.get(topic, topic)


def delivery_key(event_id: str, unit: str, channel: str) -> str:
    """One delivery per event, unit and channel: the idempotency key receivers see."""
    return hashlib.sha256(f"{event_id}|{unit}|{channel}".encode()).hexdigest()[:40]


# ------------------------------------------------------------------ configuration

def _secret(channel: dict, field: str) -> str | None:
    env_name = channel.get(f"{field}_env")
    return os.environ.get(env_name) if env_name else channel.get(field)


def check_config(doc: dict) -> dict:
    """Check deploy/notifications.yaml: {default: [channels], units: {unit: [channels]}};
    secrets only by the name of an environment variable (``secret_env``, ``url_env``)."""
    if not isinstance(doc, dict):
        raise InvalidInput("notifications config must be a mapping", {"config": ["mapping"]})
    problems: dict[str, list[str]] = {}
    lists = {"default": doc.get("default") or []}
    lists |= {f"units.{u}": chs for u, chs in (doc.get("units") or {}).items()}
    for where, channels in lists.items():
        for i, ch in enumerate(channels):
            kind = ch.get("type") if isinstance(ch, dict) else None
            if kind not in CHANNEL_TYPES:
                problems.setdefault(f"{where}[{i}]", []).append(
                    f"type: one of {', '.join(CHANNEL_TYPES)}")
                continue
            if "secret" in ch or "password" in ch:
                problems.setdefault(f"{where}[{i}]", []).append(
                    "secrets go in the environment: name it with secret_env / password_env")
            if kind in ("dingtalk", "webhook") and not (ch.get("url") or ch.get("url_env")):
                problems.setdefault(f"{where}[{i}]", []).append("url or url_env")
            if kind == "smtp" and not (ch.get("host") and ch.get("to")):
                problems.setdefault(f"{where}[{i}]", []).append("host and to")
    if problems:
        raise InvalidInput("invalid notifications config", problems)
    return doc


@cache
def config() -> dict:
    path = Path(os.environ.get(CONFIG_ENV) or ROOT / "deploy" / "notifications.yaml")
    with path.open(encoding="utf-8") as fh:
        return check_config(yaml.safe_load(fh) or {})


def channels_of(unit: str, doc: dict | None = None) -> list[tuple[str, dict]]:
    """(name, channel) for each channel the unit is reached by; the default otherwise."""
    doc = doc if doc is not None else config()
    chosen = (doc.get("units") or {}).get(unit) or doc.get("default") or [{"type": "log"}]
    return [(ch.get("name") or f"{ch['type']}{i}", ch) for i, ch in enumerate(chosen)]


# ------------------------------------------------------------------ signing

def dingtalk_url(url: str, secret: str | None, now_ms: int) -> str:
    """A DingTalk/浙政钉 robot URL with its signature: ``timestamp`` and
    ``sign = base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>"))``, URL-encoded."""
    if not secret:
        return url
    digest = hmac.new(secret.encode(), f"{now_ms}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    return f"{url}{'&' if '?' in url else '?'}timestamp={now_ms}&sign={sign}"


def dingtalk_body(title: str, text: str) -> dict:
    return {"msgtype": "markdown", "markdown": {"title": title, "text": f"#### {title}\n\n{text}"}}


def webhook_signature(secret: str, body: bytes) -> str:
    """``X-Liandong-Signature``: ``sha256=<hex HMAC-SHA256(secret, body)>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(delivery: dict) -> bytes:
    return json.dumps({"key": delivery["key"], "event_id": delivery["event_id"],
                       "unit": delivery["unit"], "topic": delivery["topic"],
                       "title": delivery["title"], "text": delivery["text"]},
                      ensure_ascii=False, sort_keys=True).encode()


def backoff_seconds(attempts: int) -> float:
    """2, 4, 8 ... seconds, at most an hour."""
    return float(min(2 ** attempts, 3600))


FAILING_AFTER = 3     # attempts after which a delivery counts as failing (reported)

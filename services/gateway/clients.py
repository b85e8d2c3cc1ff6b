"""System clients that send alerts (monitoring platforms, roadside-site gateways, the
12328 hotline system): their own credentials, not a person's sign-in.

A YAML file (``LIANDONG_ALERT_CLIENTS``, default ``deploy/alert-clients.demo.yaml``) of
clients with a PBKDF2-SHA256 hash of their secret (``python -m services.gateway.users
hash`` prints one). A client sends ``Authorization: Basic base64(client_id:secret)`` with
``POST /api/v1/alerts``; the gateway checks it and calls the alerts service with a
short-lived token of role ``alert_source`` for that client (unit = client id).

PBKDF2 is slow on purpose; a device sends many alerts, so a secret once verified is
remembered by its SHA-256 (in memory, per process) and the client's token is reused
until shortly before it expires.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
import time
from functools import lru_cache
from pathlib import Path

import yaml

from services.gateway.security import check_password
from shared.auth import Actor, issue_token
from shared.errors import Unauthenticated

ROOT = Path(__file__).resolve().parents[2]
TOKEN_TTL = 600
_verified: dict[str, str] = {}     # client id -> sha256 of the secret that passed
_tokens: dict[str, tuple[float, str]] = {}
_lock = threading.Lock()


@lru_cache(maxsize=4)
def load_clients(path: str | None = None) -> dict[str, dict]:
    """The clients file; the demo file only in development (production names its own)."""
    path = path or os.environ.get("LIANDONG_ALERT_CLIENTS")
    if not path:
        if os.environ.get("LIANDONG_ENV", "production") != "development":
            return {}     # production without LIANDONG_ALERT_CLIENTS: no client signs in
        path = str(ROOT / "deploy" / "alert-clients.demo.yaml")
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return dict(doc.get("clients") or {})


def _credentials(header: str) -> tuple[str, str]:
    if not header.startswith("Basic "):
        raise Unauthenticated("an alert source signs in with its client credentials",
                              {"Authorization": ["expected 'Basic base64(client_id:secret)'"]})
    try:
        text = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    client, sep, secret = text.partition(":")
    if not sep or not client:
        raise Unauthenticated("malformed client credentials",
                              {"Authorization": ["expected 'Basic base64(client_id:secret)'"]})
    return client, secret


def authenticate(header: str) -> str:
    """The ``alert_source`` token of the client the Basic header names, or 401."""
    client_id, secret = _credentials(header or "")
    client = load_clients().get(client_id)
    digest = hashlib.sha256(secret.encode()).hexdigest()
    if client is None:
        if not load_clients():
            raise Unauthenticated("no alert clients are configured: set "
                                  "LIANDONG_ALERT_CLIENTS to the clients file",
                                  {"Authorization": ["no clients"]})
        raise Unauthenticated("wrong client id or secret", {"Authorization": ["wrong"]})
    if _verified.get(client_id) != digest:
        if not check_password(secret, client["secret"])[0]:   # Argon2id or legacy PBKDF2
            raise Unauthenticated("wrong client id or secret", {"Authorization": ["wrong"]})
        _verified[client_id] = digest
    with _lock:
        expires, token = _tokens.get(client_id, (0.0, ""))
        if time.monotonic() > expires:
            token = issue_token(Actor(user_id=client_id, role="alert_source", unit=client_id),
                                ttl_seconds=TOKEN_TTL, issuer="gateway")
            _tokens[client_id] = (time.monotonic() + TOKEN_TTL - 60, token)
    return token

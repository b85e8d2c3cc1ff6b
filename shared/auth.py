"""Who is acting: roles, signed bearer tokens and the one role check.

A token is ``base64url(json claims) + "." + base64url(HMAC-SHA256)`` signed with
``LIANDONG_SECRET``. Services verify the token themselves (they never trust a role
claimed in a payload), so authorization holds even behind a misconfigured gateway.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from dataclasses import asdict, dataclass

from shared.errors import NotAllowed, Unauthenticated

DEV_SECRET = "liandong-dev-secret-change-me"

# role -> agency it belongs to
ROLES: dict[str, str] = {
    "city_command": "transport",        # 市指挥中心
    "county_command": "transport",      # 县/区指挥中心
    "enforcement_unit": "transport",    # 执法大队
    "agency_head": "transport",         # 交通运输执法机构负责人
    "police": "police",                 # 公安
    "procuratorate": "procuratorate",   # 检察院
    "court": "court",                   # 人民法院: records its judgment on a referral (issue 22)
    "market_regulation": "market_regulation",  # 市场监管
    "coordinator": "transport",         # 协调员 (read-only)
    "operator": "transport",            # 运维
    "system": "system",                 # a service acting on its own (timers)
}


@dataclass(frozen=True)
class Actor:
    user_id: str
    role: str
    unit: str
    county: str | None = None

    @property
    def agency(self) -> str:
        return ROLES[self.role]

    def to_dict(self) -> dict:
        return {**asdict(self), "agency": self.agency}


SYSTEM = Actor(user_id="system", role="system", unit="liandong")


def _secret() -> bytes:
    return os.environ.get("LIANDONG_SECRET", DEV_SECRET).encode("utf-8")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(actor: Actor, ttl_seconds: int = 8 * 3600) -> str:
    if actor.role not in ROLES:
        raise ValueError(f"unknown role {actor.role!r}")
    claims = {**asdict(actor), "exp": int(time.time()) + ttl_seconds}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    sig = _b64(hmac.new(_secret(), payload.encode("ascii"), hashlib.sha256).digest())
    return f"{payload}.{sig}"


def verify_token(token) -> Actor:
    """Return the Actor a token names, or raise Unauthenticated saying why."""
    if not isinstance(token, str) or token.count(".") != 1:
        raise Unauthenticated("missing or malformed bearer token")
    payload, sig = token.split(".")
    expected = _b64(hmac.new(_secret(), payload.encode("ascii"), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, expected):
        raise Unauthenticated("token signature is not valid")
    try:
        claims = json.loads(_unb64(payload))
    except ValueError:
        raise Unauthenticated("token payload is not valid") from None
    if claims.get("exp", 0) < time.time():
        raise Unauthenticated("token has expired")
    if claims.get("role") not in ROLES:
        raise Unauthenticated(f"token names an unknown role {claims.get('role')!r}")
    return Actor(user_id=claims["user_id"], role=claims["role"], unit=claims["unit"],
                 county=claims.get("county"))


def require_role(actor: Actor, allowed, action: str) -> None:
    """The one role check: raise NotAllowed naming the action and who may do it."""
    if actor.role not in allowed:
        raise NotAllowed(
            f"role {actor.role!r} may not {action}",
            {"role": [f"{action} requires one of: {', '.join(sorted(allowed))}"]})

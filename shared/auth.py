"""Who is acting: roles, signed bearer tokens and the one role check.

A token is a JWT signed with Ed25519 (``alg: EdDSA``): the header carries the ``kid`` of
the key that signed it, the claims ``iss`` (gateway or operator), ``sub`` (the user),
``role``, ``unit``, ``county``, ``iat``, ``exp`` and a unique ``jti``. Only the gateway
and the operator CLI hold a private key; every service verifies with the public keys it
trusts (shared/tokenkeys.py). Services verify the token themselves (they never trust a
role claimed in a payload), so authorization holds even behind a misconfigured gateway.

PyJWT does the encoding and the standard checks (signature, ``exp``, ``iat``, required
claims) with the algorithm pinned to EdDSA, so an ``alg: none`` or HMAC token signed
with a public key or an old shared secret is refused whatever its header says.
"""
from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import asdict, dataclass

import jwt

from shared import tokenkeys
from shared.errors import NotAllowed, Unauthenticated

TTL_DEFAULT = "8h"          # a working shift; LIANDONG_TOKEN_TTL changes it
LEEWAY_SECONDS = 30         # clock difference tolerated between hosts (exp, iat)
CLAIMS = ("iss", "sub", "role", "unit", "iat", "exp", "jti")
NOT_SIGNED = ("token signature is not valid: expected an Ed25519-signed token "
              "(header.payload.signature); shared-secret (HMAC) tokens are no longer accepted")

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
    "port_shipping": "port_shipping",   # 港航 (港航管理中心 and its county units; issue 17)
    "coordinator": "transport",         # 协调员 (read-only)
    "operator": "transport",            # 运维
    "system": "system",                 # a service acting on its own (timers)
    "alert_source": "system",           # a monitoring platform, roadside site or hotline
                                        # system sending alerts (a client, not a person)
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


@dataclass(frozen=True)
class Issued:
    """A token just signed, with what an audit records of it (never the token itself)."""
    token: str
    kid: str
    claims: dict


def duration_seconds(text: str, name: str) -> int:
    """``"8h"``, ``"30m"``, ``"90s"``, ``"2d"`` or plain seconds, as seconds (ValueError
    naming the setting otherwise)."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"{name}={text!r}: expected a positive duration such as 8h, 30m, "
                         f"90s or a number of seconds")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def ttl_seconds() -> int:
    """How long a token lives: ``LIANDONG_TOKEN_TTL`` (default 8 h, a working shift)."""
    return duration_seconds(os.environ.get("LIANDONG_TOKEN_TTL", TTL_DEFAULT),
                            "LIANDONG_TOKEN_TTL")


TTL_SECONDS = ttl_seconds()


def mint(actor: Actor, ttl_seconds: int | None = None, issuer: str = "gateway") -> Issued:
    """Sign a token for ``actor`` with ``issuer``'s private key (tokenkeys.KeySetupError
    when this process holds none: a service with only public keys cannot issue)."""
    if actor.role not in ROLES:
        raise ValueError(f"unknown role {actor.role!r}")
    ttl_seconds = ttl_seconds or TTL_SECONDS
    key = tokenkeys.signing_key(issuer)
    now = int(time.time())
    claims = {"iss": issuer, "sub": actor.user_id, "role": actor.role, "unit": actor.unit,
              "county": actor.county, "iat": now, "exp": now + ttl_seconds,
              "jti": uuid.uuid4().hex}
    token = jwt.encode(claims, key.key, algorithm="EdDSA", headers={"kid": key.kid})
    return Issued(token=token, kid=key.kid, claims=claims)


def issue_token(actor: Actor, ttl_seconds: int | None = None, issuer: str = "gateway") -> str:
    """A signed bearer token for ``actor``, by default with the gateway's key."""
    return mint(actor, ttl_seconds, issuer).token


# The process's revocation check: claims -> True when revoked (it may also raise
# Unavailable when it cannot know). Installed by the gateway (its own database) and by
# every service's ``Revocations`` dependency (shared/revocations.py); a process without
# one (the CLI, unit tests) checks signature and expiry only.
_revocation_check = None


def set_revocation_check(check) -> None:
    global _revocation_check
    _revocation_check = check


def is_revoked(claims: dict) -> bool:
    """True when the token (its ``jti``, or every token of ``sub`` issued before a
    revocation of the user) has been revoked."""
    return bool(_revocation_check and _revocation_check(claims))


def verify_token(token) -> Actor:
    """Return the Actor a token names, or raise Unauthenticated saying why."""
    if not isinstance(token, str) or not token:
        raise Unauthenticated("missing or malformed bearer token")
    if not token.isascii() or len(token) > 8192:
        raise Unauthenticated("malformed bearer token: a token is ASCII text "
                              "(header.payload.signature) of at most 8192 characters")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthenticated(NOT_SIGNED) from None
    if header.get("alg") != "EdDSA":
        raise Unauthenticated(f"token signature is not valid: algorithm "
                              f"{header.get('alg')!r} is not accepted (EdDSA only)")
    kid = header.get("kid")
    key = tokenkeys.trusted().get(kid) if isinstance(kid, str) else None
    if key is None:
        raise Unauthenticated(f"token key {header.get('kid')!r} is not trusted (unknown or "
                              f"retired): sign in again")
    try:
        claims = jwt.decode(token, key.key, algorithms=["EdDSA"], leeway=LEEWAY_SECONDS,
                            options={"require": list(CLAIMS)})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("token has expired") from None
    except jwt.InvalidSignatureError:
        raise Unauthenticated("token signature is not valid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"token lacks the {exc.claim!r} claim") from None
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"token is not valid: {exc}") from None
    if not all(isinstance(claims[k], str) for k in ("iss", "role", "unit")) or \
            not isinstance(claims.get("county"), str | None):
        raise Unauthenticated("token claims iss, role, unit and county must be text")
    if claims["iss"] != key.issuer:
        raise Unauthenticated(f"token issuer {claims['iss']!r} does not hold key {key.kid}")
    if claims["role"] not in ROLES:
        raise Unauthenticated(f"token names an unknown role {claims['role']!r}")
    if is_revoked(claims):
        raise Unauthenticated("token has been revoked")
    return Actor(user_id=claims["sub"], role=claims["role"], unit=claims["unit"],
                 county=claims.get("county"))


def require_role(actor: Actor, allowed, action: str) -> None:
    """The one role check: raise NotAllowed naming the action and who may do it."""
    if actor.role not in allowed:
        raise NotAllowed(
            f"role {actor.role!r} may not {action}",
            {"role": [f"{action} requires one of: {', '.join(sorted(allowed))}"]})


def unverified_claims(token: str) -> dict:
    """The claims of a token already verified by ``verify_token`` (no check here)."""
    return jwt.decode(token, options={"verify_signature": False})

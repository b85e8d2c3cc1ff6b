"""Sign-in: the one path from user name, password (and one-time code) to a token.

Users live in the gateway's database (``liandong users add|passwd|disable|enable|totp``);
in development the demo file ``deploy/users.demo.yaml`` (marked ``development_only``,
refused in production) seeds it. See services/gateway/security.py for the rules.
"""
from __future__ import annotations

import ipaddress
import os
import time
from functools import lru_cache

from sqlalchemy import update

from services.gateway import security as sec
from services.gateway import store as st
from shared.auth import Actor, mint
from shared.errors import TooManyAttempts, Unauthenticated

WRONG = "wrong user name or password"


@lru_cache(maxsize=1)
def policy() -> sec.ThrottlePolicy:
    return sec.ThrottlePolicy.from_env()


@lru_cache(maxsize=1)
def trusted_proxies() -> tuple:
    """``LIANDONG_TRUSTED_PROXIES``: addresses or networks (comma-separated) whose
    ``X-Forwarded-For`` is believed: the load balancers in front of the gateway."""
    text = os.environ.get("LIANDONG_TRUSTED_PROXIES", "")
    try:
        return tuple(ipaddress.ip_network(p.strip(), strict=False)
                     for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise ValueError(f"LIANDONG_TRUSTED_PROXIES: {exc}") from None


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted_proxies())


def client_address(remote_addr: str | None, forwarded_for: str | None) -> str:
    """The caller's address: the peer, or — when the peer is a trusted proxy — the
    right-most address of ``X-Forwarded-For`` that is not a trusted proxy."""
    address = remote_addr or "unknown"
    if forwarded_for and _trusted(address):
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
            address = hop[:64]
            if not _trusted(hop):
                break
    return address


def sign_in(username, password, otp=None, address: str | None = None,
            now: float | None = None) -> dict:
    """A token for valid credentials; 401 (the same message for any wrong part of user
    name and password), 429 with ``retry_after`` while the name or address is locked."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise Unauthenticated("user name and password must be strings",
                              {"username": ["string"], "password": ["string"]})
    if otp is not None and not isinstance(otp, str):
        raise Unauthenticated("otp must be a string of 6 digits", {"otp": ["string"]})
    now = now or time.time()
    with st.store.transaction() as s:
        wait = sec.locked_for(s, username, address, now)
        if wait:
            sec.record(s, "signin.throttled", username, address, retry_after=wait)
            failure, locked = "throttled", []
        else:
            failure, locked, result = _attempt(s, username, password, otp, address, now)
    if failure == "throttled" or locked:
        wait = wait or max(seconds for _, _, seconds in locked)
        raise TooManyAttempts(f"too many failed sign-ins: try again in {wait} s",
                              {"username": ["locked for now"]}, retry_after=wait)
    if failure == "otp_required":
        raise Unauthenticated("a one-time code is required", {"otp": [
            "the 6-digit code of your authenticator app"]}, code="otp_required")
    if failure == "otp_wrong":
        raise Unauthenticated("wrong or already used one-time code", {"otp": ["wrong"]},
                              code="otp_required")
    if failure == "otp_not_enrolled":
        raise Unauthenticated("this role signs in with a second factor, and none is set up "
                              "for you: ask an operator (`liandong users totp USER`)",
                              {"otp": ["not enrolled"]}, code="otp_not_enrolled")
    if failure:
        raise Unauthenticated(WRONG, {"password": [WRONG]})
    return result


def _attempt(s, username, password, otp, address, now):
    """(failure reason or None, keys locked by this failure, result)."""
    user = sec.get_user(s, username)
    ok, rehash = sec.check_password(password, user["password"] if user else None)
    failure, step = None, None
    if not ok or user is None:
        failure = "wrong_password"
    elif user["disabled"]:
        failure = "disabled"
    elif user["totp_secret"]:
        step = sec.totp_step(user["totp_secret"], otp, now) if otp else None
        if not otp:
            failure = "otp_required"
        elif step is None or step <= (user["totp_last_step"] or -1):
            failure = "otp_wrong"
    elif user["role"] in sec.totp_required_roles():
        failure = "otp_not_enrolled"
    if failure:
        locked = sec.record_failure(s, policy(), username, address, now)
        sec.record(s, "signin.failed", username, address, reason=failure)
        for scope, key, seconds in locked:
            sec.record(s, "signin.locked", username, address, scope=scope, key=key,
                       seconds=seconds)
        return failure, locked, None
    changes = {}
    if rehash:
        changes["password"] = sec.hash_password(password)
    if step is not None:
        changes["totp_last_step"] = step
    if changes:
        s.execute(update(st.users).where(st.users.c.username == username).values(**changes))
    sec.record_success(s, username)
    actor = Actor(user_id=username, role=user["role"], unit=user["unit"],
                  county=user["county"])
    issued = mint(actor, issuer="gateway")
    sec.record(s, "signin.succeeded", username, address, jti=issued.claims["jti"],
               role=actor.role, unit=actor.unit, second_factor=step is not None)
    return None, [], {"token": issued.token, **actor.to_dict(),
                      "display_name": user["display_name"] or username,
                      "expires": issued.claims["exp"]}

"""Sign-in, sessions and their audit, as plain Python over the gateway's database
(services/gateway/store.py); the nameko service and the ``liandong users`` CLI are thin
callers. Every function takes an open session: its changes commit with the caller's.

* Passwords: Argon2id (argon2-cffi, per-user random salt); a legacy PBKDF2 hash (the demo
  file) is accepted and replaced by an Argon2id hash at the next sign-in. Policy for new
  passwords: ``LIANDONG_PASSWORD_MIN_LENGTH`` (12) characters, three of four classes
  (lower, upper, digit, other), not containing the user name.
* Throttling: failures are counted per user name (known or not) and per address; at
  ``user_failures`` / ``address_failures`` the key is locked for ``lockout_seconds``,
  doubling (``growth``) with each lock-out up to ``max_lockout_seconds``; while locked,
  every attempt (even with the right password) is answered 429 with ``Retry-After``.
  The rows live in the database: a restart or another replica sees the same lock.
* Second factor: a user with a TOTP secret (``liandong users totp USER``) must send
  ``otp``; each code is accepted once. Roles in ``LIANDONG_TOTP_REQUIRED_ROLES``
  (production default ``coordinator,operator``) cannot sign in until enrolled.
* Revocations: ``revoke_token`` (one jti) and ``revoke_user`` (every token of the user
  issued until now) write ``token_revocations`` and stage ``token.revoked.v1``.
* Security audit: sign-ins, failures, lock-outs, user changes, revocations as a hash
  chain (shared/audit.py ``link``), append-only; ``verify_audit`` finds any change.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from services.gateway import store as st
from shared import revocations
from shared.audit import GENESIS, link
from shared.auth import ROLES, TTL_SECONDS
from shared.db import dialect_insert
from shared.errors import InvalidInput, NotFound
from shared.messaging import stage
from shared.standards import json_object

HASHER = PasswordHasher()            # Argon2id, RFC 9106 low-memory profile
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
HUMAN_ROLES = sorted(r for r in ROLES if r != "system")


def production() -> bool:
    return os.environ.get("LIANDONG_ENV", "production") != "development"


# ------------------------------------------------------------------ passwords

def _off_hub(fn, *args):
    """Run an Argon2 computation (~0.1 s of CPU, the GIL released) in an OS thread when
    under eventlet, so one sign-in does not stall every other request of the gateway."""
    try:
        import eventlet.patcher
        if eventlet.patcher.is_monkey_patched("socket"):
            from eventlet import tpool
            return tpool.execute(fn, *args)
    except ImportError:  # pragma: no cover - eventlet is a dependency
        pass
    return fn(*args)


def hash_password(password: str) -> str:
    return _off_hub(HASHER.hash, password)


def _legacy_pbkdf2(password: str, stored: str) -> bool:
    import base64
    import hmac
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        computed = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                       int(iterations))
        return hmac.compare_digest(computed, base64.b64decode(digest))
    except ValueError:
        return False


_DUMMY = None


def check_password(password: str, stored: str | None) -> tuple[bool, bool]:
    """(matches, should be re-hashed). ``stored`` None still costs one Argon2 check, so an
    unknown user name takes as long as a wrong password."""
    global _DUMMY
    if stored is None:
        _DUMMY = _DUMMY or HASHER.hash(secrets.token_hex(8))
        stored = _DUMMY
    if stored.startswith("pbkdf2_sha256$"):
        return _legacy_pbkdf2(password, stored), True
    try:
        _off_hub(HASHER.verify, stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, HASHER.check_needs_rehash(stored)


def password_problems(password, username: str) -> list[str]:
    """What is wrong with a new password (empty when it meets the policy)."""
    if not isinstance(password, str):
        return ["must be text"]
    minimum = int(os.environ.get("LIANDONG_PASSWORD_MIN_LENGTH", "12"))
    problems = []
    if len(password) < minimum:
        problems.append(f"at least {minimum} characters")
    classes = sum(bool(re.search(p, password))
                  for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]"))
    if classes < 3:
        problems.append("three of: lower-case, upper-case, digit, other character")
    if username and username.lower() in password.lower():
        problems.append("must not contain the user name")
    if len(set(password)) < 4:
        problems.append("too few different characters")
    return problems


# ------------------------------------------------------------------ throttling

@dataclass(frozen=True)
class ThrottlePolicy:
    user_failures: int = 5
    address_failures: int = 20
    lockout_seconds: int = 60
    growth: float = 2.0
    max_lockout_seconds: int = 3600
    window_seconds: int = 900          # failures older than this are forgotten

    @classmethod
    def from_env(cls) -> ThrottlePolicy:
        """Defaults, overridden by ``LIANDONG_SIGNIN_THROTTLE`` (JSON object)."""
        raw = json_object(os.environ.get("LIANDONG_SIGNIN_THROTTLE"),
                          "LIANDONG_SIGNIN_THROTTLE", "throttle settings")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"LIANDONG_SIGNIN_THROTTLE: unknown setting(s) "
                             f"{', '.join(sorted(unknown))}; known: "
                             f"{', '.join(cls.__dataclass_fields__)}")
        if not all(isinstance(v, int | float) and v > 0 for v in raw.values()):
            raise ValueError("LIANDONG_SIGNIN_THROTTLE: every setting must be a positive "
                             "number")
        return cls(**raw)

    def limit(self, scope: str) -> int:
        return self.user_failures if scope == "user" else self.address_failures

    def lock_seconds(self, lockouts: int) -> int:
        return int(min(self.lockout_seconds * self.growth ** max(lockouts - 1, 0),
                       self.max_lockout_seconds))


def _keys(username, address) -> list[tuple[str, str]]:
    keys = [("user", str(username).strip().lower()[:200])]
    if address:
        keys.append(("address", address[:200]))
    return keys


def locked_for(session, username, address, now: float) -> int:
    """Seconds until the next attempt is heard (0: go ahead)."""
    t = st.signin_throttle
    rows = session.execute(select(t.c.locked_until).where(or_(*[
        (t.c.scope == scope) & (t.c.key == key) for scope, key in _keys(username, address)])
    )).scalars().all()
    until = max([u for u in rows if u] or [0])
    return math.ceil(until - now) if until > now else 0


def _row(session, scope: str, key: str):
    t = st.signin_throttle
    session.execute(dialect_insert(session)(t).values(scope=scope, key=key, failures=0, lockouts=0)
                    .on_conflict_do_nothing())
    return session.execute(select(t).where(t.c.scope == scope, t.c.key == key)
                           .with_for_update()).one()


def record_failure(session, policy: ThrottlePolicy, username, address, now: float) -> list:
    """Count a failure; return [(scope, key, seconds)] of the keys it locked."""
    t, locked = st.signin_throttle, []
    for scope, key in _keys(username, address):
        row = _row(session, scope, key)
        failures = row.failures if (row.last_failure or 0) > now - policy.window_seconds \
            else 0
        failures, lockouts, until = failures + 1, row.lockouts, row.locked_until
        if failures >= policy.limit(scope):
            lockouts += 1
            seconds = policy.lock_seconds(lockouts)
            until, failures = now + seconds, 0
            locked.append((scope, key, seconds))
        session.execute(update(t).where(t.c.scope == scope, t.c.key == key).values(
            failures=failures, lockouts=lockouts, locked_until=until, last_failure=now))
    return locked


def record_success(session, username) -> None:
    """A user who signed in starts again from zero (their address keeps its count)."""
    t = st.signin_throttle
    session.execute(delete(t).where(t.c.scope == "user",
                                    t.c.key == str(username).strip().lower()))


# ------------------------------------------------------------------ second factor

def totp_required_roles() -> set[str]:
    default = "coordinator,operator" if production() else ""
    text = os.environ.get("LIANDONG_TOTP_REQUIRED_ROLES", default)
    roles = {r.strip() for r in text.split(",") if r.strip()}
    unknown = roles - set(ROLES)
    if unknown:
        raise ValueError(f"LIANDONG_TOTP_REQUIRED_ROLES names unknown role(s) "
                         f"{', '.join(sorted(unknown))}")
    return roles


def totp_step(secret: str, code, now: float) -> int | None:
    """The time step ``code`` belongs to (now, or one step either side), else None."""
    if not isinstance(code, str) or not re.fullmatch(r"\d{6}", code.strip()):
        return None
    totp, step = pyotp.TOTP(secret), int(now // 30)
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.at(candidate * 30), code.strip()):
            return candidate
    return None


# ------------------------------------------------------------------ security audit

def _canonical(entry: dict) -> bytes:
    facts = {k: entry[k] for k in ("at", "kind", "username", "address", "detail")}
    return json.dumps(facts, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str).encode("utf-8")


def record(session, kind: str, username=None, address=None, **detail) -> dict:
    """Append a security audit record, chained to the last one."""
    t = st.security_audit
    entry = {"at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "kind": kind,
             "username": None if username is None else str(username)[:200],
             "address": address, "detail": detail}
    for _ in range(20):
        prev = session.execute(select(t.c.hash).order_by(t.c.id.desc()).limit(1)).scalar()
        entry["prev_hash"] = prev or GENESIS
        entry["hash"] = link(entry["prev_hash"], _canonical(entry))
        if session.get_bind().dialect.name != "postgresql":
            # SQLite: one writer at a time, the transaction holds the database
            session.execute(insert(t).values(**entry))
            return entry
        try:
            with session.begin_nested():
                session.execute(insert(t).values(**entry))
            return entry
        except IntegrityError:      # another replica chained to the same record first
            time.sleep(0.01)
    raise RuntimeError("security audit: could not append (chain contended)")


def audit_records(session, kind: str | None = None, user: str | None = None,
                  limit: int | None = None) -> list[dict]:
    t = st.security_audit
    q = select(t).order_by(t.c.id)
    rows = [dict(r._mapping) for r in session.execute(q)]
    if kind:
        rows = [r for r in rows if r["kind"].startswith(kind)]
    if user:
        rows = [r for r in rows if r["username"] == user]
    return rows[-limit:] if limit else rows


def verify_audit(rows: list[dict]) -> list[str]:
    """Problems of the whole chain (empty when intact)."""
    problems, prev = [], GENESIS
    for r in rows:
        if r["prev_hash"] != prev:
            problems.append(f"record {r['id']}: link to the previous record is broken")
        if link(r["prev_hash"], _canonical(r)) != r["hash"]:
            problems.append(f"record {r['id']}: content does not match its hash")
        prev = r["hash"]
    return problems


# ------------------------------------------------------------------ revocations

def _revoke(session, entry: dict, address=None) -> dict:
    session.execute(insert(st.token_revocations).values(**entry, at=time.time()))
    stage(session, st.metadata, revocations.envelope(entry))
    record(session, "token.revoked", entry["sub"], address, jti=entry.get("jti"),
           not_before=entry.get("not_before"), reason=entry["reason"], by=entry["by"])
    return entry


def revoke_token(session, claims: dict, reason: str, by: str, address=None) -> dict:
    """Revoke one token (its jti) until it would have expired anyway."""
    exists = session.execute(select(st.token_revocations.c.id).where(
        st.token_revocations.c.jti == claims["jti"])).first()
    entry = {"jti": claims["jti"], "sub": claims["sub"], "not_before": None,
             "expires": int(claims["exp"]) + 60, "reason": reason, "by": by}
    return entry if exists else _revoke(session, entry, address)


def revoke_user(session, username: str, reason: str, by: str, now: float | None = None) -> dict:
    """Revoke every token of ``username`` issued up to now (this second included)."""
    now = now or time.time()
    not_before = int(now) + 1
    return _revoke(session, {"jti": None, "sub": username, "not_before": not_before,
                             "expires": not_before + TTL_SECONDS + 60, "reason": reason,
                             "by": by})


def active_revocations(session, now: float | None = None) -> list[dict]:
    t = st.token_revocations
    rows = session.execute(select(t.c.jti, t.c.sub, t.c.not_before, t.c.expires)
                           .where(t.c.expires > (now or time.time()))).all()
    return [dict(r._mapping) for r in rows]


def is_revoked(session, claims: dict) -> bool:
    t = st.token_revocations
    return session.execute(select(t.c.id).where(or_(
        t.c.jti == claims.get("jti"),
        (t.c.sub == claims.get("sub")) & (t.c.not_before > int(claims.get("iat", 0))))
    ).limit(1)).first() is not None


# ------------------------------------------------------------------ users

def get_user(session, username) -> dict | None:
    if not isinstance(username, str):
        return None
    row = session.execute(select(st.users).where(st.users.c.username == username)).first()
    return dict(row._mapping) if row else None


def _need(session, username) -> dict:
    user = get_user(session, username)
    if user is None:
        raise NotFound(f"no user {username!r}", {"username": ["not found"]})
    return user


def add_user(session, username: str, role: str, unit: str, password: str, by: str,
             county: str | None = None, display_name: str | None = None) -> dict:
    errors = {}
    if not isinstance(username, str) or not USERNAME.match(username):
        errors["username"] = ["2-64 of a-z 0-9 . _ @ -, starting with a letter or digit"]
    if role not in HUMAN_ROLES:
        errors["role"] = [f"one of: {', '.join(HUMAN_ROLES)}"]
    if not unit:
        errors["unit"] = ["required"]
    problems = password_problems(password, username if isinstance(username, str) else "")
    if problems:
        errors["password"] = problems
    if errors:
        raise InvalidInput("the user cannot be added", errors)
    if get_user(session, username):
        raise InvalidInput(f"user {username!r} exists", {"username": ["exists"]})
    now = time.time()
    session.execute(insert(st.users).values(
        username=username, role=role, unit=unit, county=county, display_name=display_name,
        password=hash_password(password), disabled=False, development_only=False,
        created_at=now, updated_at=now))
    record(session, "user.added", username, by=by, role=role, unit=unit, county=county)
    return public_user(get_user(session, username))


def set_password(session, username: str, password: str, by: str) -> dict:
    _need(session, username)
    problems = password_problems(password, username)
    if problems:
        raise InvalidInput("the password does not meet the policy", {"password": problems})
    session.execute(update(st.users).where(st.users.c.username == username).values(
        password=hash_password(password), development_only=False, updated_at=time.time()))
    record(session, "user.password_changed", username, by=by)
    revoke_user(session, username, "password changed", by)
    return public_user(get_user(session, username))


def set_disabled(session, username: str, disabled: bool, by: str) -> dict:
    _need(session, username)
    session.execute(update(st.users).where(st.users.c.username == username).values(
        disabled=disabled, updated_at=time.time()))
    record(session, "user.disabled" if disabled else "user.enabled", username, by=by)
    if disabled:
        revoke_user(session, username, "user disabled", by)
    return public_user(get_user(session, username))


def set_totp(session, username: str, by: str, off: bool = False) -> dict:
    """Enrol (a new secret; returned once, with its otpauth URI) or remove the second
    factor."""
    user = _need(session, username)
    secret = None if off else pyotp.random_base32()
    session.execute(update(st.users).where(st.users.c.username == username).values(
        totp_secret=secret, totp_last_step=None, updated_at=time.time()))
    record(session, "user.totp_removed" if off else "user.totp_enrolled", username, by=by)
    if off:
        return public_user(get_user(session, username))
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="Liandong")
    return {**public_user({**user, "totp_secret": secret}), "totp_secret": secret,
            "otpauth_uri": uri}


def public_user(user: dict) -> dict:
    return {"username": user["username"], "role": user["role"], "unit": user["unit"],
            "county": user["county"], "display_name": user["display_name"],
            "disabled": bool(user["disabled"]), "totp": bool(user["totp_secret"]),
            "development_only": bool(user["development_only"])}


def list_users(session) -> list[dict]:
    rows = session.execute(select(st.users).order_by(st.users.c.username)).all()
    return [public_user(dict(r._mapping)) for r in rows]


# ------------------------------------------------------------------ the users file

def users_file() -> Path | None:
    """``LIANDONG_USERS``; in development the demo file when unset; else none."""
    configured = os.environ.get("LIANDONG_USERS")
    if configured:
        return Path(configured)
    if production():
        return None
    return Path(__file__).resolve().parents[2] / "deploy" / "users.demo.yaml"


def load_users_file(path: Path) -> tuple[dict, bool]:
    """(users, development_only) of a users file; ValueError naming what is wrong, and
    in production for a file marked ``development_only``."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    development_only = bool(doc.get("development_only"))
    if development_only and production():
        raise ValueError(f"{path} is marked development_only (shared demo passwords): a "
                         f"production gateway refuses it. Unset LIANDONG_USERS and add "
                         f"users with `liandong users add`")
    users = doc.get("users") or {}
    for name, user in users.items():
        if user.get("role") not in HUMAN_ROLES:
            raise ValueError(f"{path}: user {name!r} has unknown role {user.get('role')!r}")
        if not user.get("unit") or not user.get("password"):
            raise ValueError(f"{path}: user {name!r} needs unit and password (a hash)")
    return users, development_only


def seed_users(session, path: Path | None) -> int:
    """Add the users of the file that the database does not have yet (hashes as given;
    a legacy hash becomes Argon2id at the user's first sign-in). Returns how many."""
    if path is None:
        return 0
    users, development_only = load_users_file(path)
    added, now = 0, time.time()
    for name, user in users.items():
        if get_user(session, name):
            continue
        # replicas starting together seed the same file: the first insert wins, the
        # others add nothing (a plain insert failed the second replica's start-up)
        done = session.execute(dialect_insert(session)(st.users).values(
            username=name, role=user["role"], unit=user["unit"], county=user.get("county"),
            display_name=user.get("display_name"), password=user["password"],
            disabled=False, development_only=development_only, created_at=now,
            updated_at=now).on_conflict_do_nothing(index_elements=["username"]))
        added += done.rowcount or 0
    if added:
        record(session, "user.imported", None, file=str(path), count=added,
               development_only=development_only)
    return added

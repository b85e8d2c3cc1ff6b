"""Sign-in rules of issue 15 as plain Python: password policy and hashing, throttling with
a growing lock-out, TOTP, the security audit chain, revocation lists, the caller's
address behind a proxy, deep JSON, the WSGI wrapper, configuration errors."""
from __future__ import annotations

import io
import time
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import update

from services.gateway import security as sec
from services.gateway import store as st
from services.gateway import users
from shared.auth import duration_seconds
from shared.db import Store
from shared.errors import InvalidInput, TooManyAttempts, Unauthenticated
from shared.revocations import RevocationList

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "users.demo.yaml"
GOOD = "Str0ng-enough-pass"


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("LIANDONG_ENV", "development")
    store = Store("gateway", st.metadata, f"sqlite:///{tmp_path / 'gateway.db'}")
    monkeypatch.setattr(st, "store", store)
    monkeypatch.setattr(users, "policy", lambda: sec.ThrottlePolicy(
        user_failures=3, address_failures=5, lockout_seconds=10, growth=2,
        max_lockout_seconds=25))
    with store.transaction() as s:
        sec.add_user(s, "alice", "enforcement_unit", "lucheng-team-1", GOOD, "test",
                     county="lucheng")
    yield store
    store.dispose()


def test_password_policy():
    assert sec.password_problems(GOOD, "alice") == []
    assert "at least 12 characters" in sec.password_problems("Aa1!short", "x")
    assert any("three of" in p for p in sec.password_problems("alllowercaseletters", "x"))
    assert "must not contain the user name" in sec.password_problems("Alice-Str0ng-x", "alice")
    assert sec.password_problems(None, "x") == ["must be text"]


def test_argon2id_with_own_salt_and_the_legacy_demo_hash():
    one, two = sec.hash_password(GOOD), sec.hash_password(GOOD)
    assert one.startswith("$argon2id$") and one != two          # a salt per hash
    assert sec.check_password(GOOD, one) == (True, False)
    assert sec.check_password("wrong", one)[0] is False
    legacy = sec.load_users_file(DEMO)[0]["city"]["password"]
    assert sec.check_password("demo", legacy) == (True, True)   # re-hashed at sign-in
    assert sec.check_password("x", None)[0] is False


def test_lockout_grows_and_applies_to_the_right_password(db):
    now = 1_000_000.0
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            users.sign_in("alice", "wrong", address="192.0.2.1", now=now)
    with pytest.raises(TooManyAttempts) as locked:
        users.sign_in("alice", "wrong", address="192.0.2.1", now=now)
    assert locked.value.retry_after == 10
    with pytest.raises(TooManyAttempts):
        users.sign_in("alice", GOOD, address="192.0.2.2", now=now + 5)
    for _ in range(2):                                  # after the lock: 3 more -> 20 s
        with pytest.raises(Unauthenticated):
            users.sign_in("alice", "wrong", address="192.0.2.3", now=now + 11)
    with pytest.raises(TooManyAttempts) as longer:
        users.sign_in("alice", "wrong", address="192.0.2.3", now=now + 11)
    assert longer.value.retry_after == 20
    for _ in range(3):
        with pytest.raises((Unauthenticated, TooManyAttempts)):
            users.sign_in("alice", "wrong", address="192.0.2.4", now=now + 32)
    with pytest.raises(TooManyAttempts) as capped:
        users.sign_in("alice", GOOD, address="192.0.2.4", now=now + 32)
    assert capped.value.retry_after == 25                 # max_lockout_seconds
    ok = users.sign_in("alice", GOOD, address="192.0.2.4", now=now + 60)
    assert ok["role"] == "enforcement_unit" and ok["token"]


def test_address_lockout_covers_every_user_name(db):
    now = 2_000_000.0
    for n in range(4):
        with pytest.raises(Unauthenticated):
            users.sign_in(f"ghost{n}", "x", address="203.0.113.5", now=now)
    with pytest.raises(TooManyAttempts):
        users.sign_in("ghost9", "x", address="203.0.113.5", now=now)
    with pytest.raises(TooManyAttempts):
        users.sign_in("alice", GOOD, address="203.0.113.5", now=now + 1)
    assert users.sign_in("alice", GOOD, address="203.0.113.6", now=now + 1)["token"]


def test_totp_required_once_enrolled_and_never_replayed(db, monkeypatch):
    with db.transaction() as s:
        secret = sec.set_totp(s, "alice", "test")["totp_secret"]
    now = time.time()
    with pytest.raises(Unauthenticated) as missing:
        users.sign_in("alice", GOOD, now=now)
    assert missing.value.code == "otp_required"
    code = pyotp.TOTP(secret).at(now)
    assert users.sign_in("alice", GOOD, otp=code, now=now)["token"]
    with pytest.raises(Unauthenticated):
        users.sign_in("alice", GOOD, otp=code, now=now)
    with db.transaction() as s:
        sec.set_totp(s, "alice", "test", off=True)
        s.execute(update(st.users).where(st.users.c.username == "alice").values(
            role="operator"))
    monkeypatch.setenv("LIANDONG_TOTP_REQUIRED_ROLES", "operator")
    with pytest.raises(Unauthenticated) as bare:
        users.sign_in("alice", GOOD, now=now + 60)
    assert bare.value.code == "otp_not_enrolled"


def test_disabled_user_and_revocations(db):
    token = users.sign_in("alice", GOOD)
    issued_at = int(time.time())
    with db.transaction() as s:
        sec.set_disabled(s, "alice", True, "test")
    with pytest.raises(Unauthenticated):
        users.sign_in("alice", GOOD, address="192.0.2.9")
    with db.session() as s:
        active = sec.active_revocations(s)
        claims = {"sub": "alice", "jti": "x", "iat": issued_at}
        assert sec.is_revoked(s, claims)
        assert not sec.is_revoked(s, {**claims, "iat": active[0]["not_before"]})
    assert token["token"]
    with db.session() as s:
        from sqlalchemy import select
        staged = s.execute(select(st.metadata.tables["outbox"].c.type)).scalars().all()
    assert staged == ["token.revoked.v1"]


def test_users_add_refuses_weak_passwords_and_unknown_roles(db):
    with db.transaction() as s, pytest.raises(InvalidInput) as bad:
        sec.add_user(s, "Bob!", "wizard", "u", "short", "test")
    assert set(bad.value.errors) == {"username", "role", "password"}


def test_security_audit_is_a_hash_chain(db):
    with pytest.raises(Unauthenticated):
        users.sign_in("alice", "wrong", address="192.0.2.1")
    users.sign_in("alice", GOOD, address="192.0.2.1")
    with db.session() as s:
        rows = sec.audit_records(s)
    assert [r["kind"] for r in rows] == ["user.added", "signin.failed", "signin.succeeded"]
    assert sec.verify_audit(rows) == []
    rows[1]["address"] = "10.0.0.1"
    assert sec.verify_audit(rows) == ["record 2: content does not match its hash"]


def test_demo_users_are_development_only(monkeypatch, tmp_path):
    monkeypatch.setenv("LIANDONG_ENV", "production")
    with pytest.raises(ValueError, match="development_only"):
        sec.load_users_file(DEMO)
    monkeypatch.delenv("LIANDONG_USERS", raising=False)
    assert sec.users_file() is None
    monkeypatch.setenv("LIANDONG_ENV", "development")
    users_, dev = sec.load_users_file(DEMO)
    assert dev and "coordinator" in users_


def test_revocation_list():
    revoked = RevocationList()
    revoked.add({"jti": "a", "sub": "x", "not_before": None, "expires": 200})
    revoked.add({"jti": None, "sub": "bob", "not_before": 100, "expires": 300})
    assert revoked.revoked({"jti": "a", "sub": "y", "iat": 1})
    assert revoked.revoked({"jti": "b", "sub": "bob", "iat": 99})
    assert not revoked.revoked({"jti": "b", "sub": "bob", "iat": 100})
    revoked.prune(now=250)
    assert not revoked.revoked({"jti": "a", "sub": "y", "iat": 1})
    assert revoked.revoked({"jti": "c", "sub": "bob", "iat": 50})


def test_client_address_believes_only_trusted_proxies(monkeypatch):
    monkeypatch.setenv("LIANDONG_TRUSTED_PROXIES", "10.0.0.0/8")
    users.trusted_proxies.cache_clear()
    try:
        assert users.client_address("10.1.2.3", "198.51.100.1, 10.0.0.5") == "198.51.100.1"
        assert users.client_address("192.0.2.7", "198.51.100.1") == "192.0.2.7"
        assert users.client_address("10.1.2.3", None) == "10.1.2.3"
    finally:
        users.trusted_proxies.cache_clear()


def test_configuration_errors_name_the_setting(monkeypatch):
    assert duration_seconds("8h", "X") == 28800 and duration_seconds("90", "X") == 90
    with pytest.raises(ValueError, match="LIANDONG_TOKEN_TTL"):
        duration_seconds("soon", "LIANDONG_TOKEN_TTL")
    monkeypatch.setenv("LIANDONG_SIGNIN_THROTTLE", '{"user_failure": 3}')
    with pytest.raises(ValueError, match="unknown setting"):
        sec.ThrottlePolicy.from_env()
    monkeypatch.setenv("LIANDONG_TOTP_REQUIRED_ROLES", "wizard")
    with pytest.raises(ValueError, match="unknown role"):
        sec.totp_required_roles()


def test_json_nested_10000_deep_is_a_422_not_a_crash():
    from shared.boundaries import parse_json
    from shared.errors import InvalidInput
    assert parse_json('{"a": [1, {"b": "[[[[["}]}') == {"a": [1, {"b": "[[[[["}]}
    with pytest.raises(InvalidInput):
        parse_json("[" * 10000 + "]" * 10000)


def _call(app, **environ):
    seen = {}

    def start(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)
    body = b"".join(app({"PATH_INFO": "/api/v1/x", "wsgi.input": io.BytesIO(b"{}"),
                         "wsgi.url_scheme": "http", **environ}, start))
    return seen["status"], seen["headers"], body


def test_wsgi_wrapper_limits_bodies_and_adds_headers(monkeypatch):
    from services.gateway.wsgi import secure

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [environ["wsgi.input"].read()]
    monkeypatch.setenv("LIANDONG_MAX_BODY_BYTES", "10")
    wrapped = secure(app)
    status, headers, _ = _call(wrapped, CONTENT_LENGTH="11")
    assert status.startswith("413")
    status, _, _ = _call(wrapped, CONTENT_LENGTH="ten")
    assert status.startswith("400")
    status, _, _ = _call(wrapped, HTTP_TRANSFER_ENCODING="chunked",
                         **{"wsgi.input": io.BytesIO(b"x" * 11)})
    assert status.startswith("413")
    status, headers, body = _call(wrapped, HTTP_TRANSFER_ENCODING="chunked",
                                  **{"wsgi.input": io.BytesIO(b"[1,2]")})
    assert status.startswith("200") and body == b"[1,2]"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in headers
    _, tls, _ = _call(wrapped, **{"wsgi.url_scheme": "https"})
    assert tls["Strict-Transport-Security"].startswith("max-age=")
    _, page, _ = _call(wrapped, PATH_INFO="/")
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert "Cache-Control" not in page


def _seed_demo_users(url: str) -> int:
    import os
    os.environ["LIANDONG_ENV"] = "development"
    store = Store("gateway", st.metadata, url)
    try:
        with store.transaction() as s:
            return sec.seed_users(s, DEMO)
    finally:
        store.dispose()


def test_replicas_seeding_the_user_file_together_all_start(monkeypatch):
    """Two gateway replicas started together seed the same user file: one adds the users,
    the other adds nothing — it does not fail on a duplicate key (it did: users_pkey).
    Replica A has inserted the users but not committed when replica B (another process)
    seeds; B waits on A's rows, then must add nothing."""
    import multiprocessing
    import socket
    import uuid

    from sqlalchemy import create_engine, func, select, text

    from shared.db import normalize_url
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    monkeypatch.setenv("LIANDONG_ENV", "development")
    name = f"liandong_seed_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    expected = len(sec.load_users_file(DEMO)[0])
    store = Store("gateway", st.metadata, url)
    try:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            with store.transaction() as s:
                assert sec.seed_users(s, DEMO) == expected            # replica A
                other = pool.apply_async(_seed_demo_users, (url,))    # replica B
                time.sleep(3)                  # B is now waiting on A's uncommitted rows
            assert other.get(timeout=60) == 0
        with store.transaction() as s:
            assert s.execute(select(func.count()).select_from(st.users)).scalar() == expected
    finally:
        store.dispose()
        admin = create_engine(normalize_url("postgresql://postgres@127.0.0.1:5432/postgres"),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

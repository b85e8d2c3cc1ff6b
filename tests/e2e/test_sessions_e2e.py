"""Sign-in and sessions end to end (issue 15 parts 2-3), through the gateway over HTTP,
the services over RPC and the ``liandong`` CLI as a subprocess: throttling shared by two
gateway processes and kept over a restart, logout and ``users revoke`` reaching every
service, services failing closed without a current revocation list, TOTP, the security
audit, body limits, deep JSON and security headers."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pyotp
import pytest
import requests

from shared.errors import Unauthenticated, Unavailable
from tests.conftest import ROOT, free_port, wait_for

pytestmark = pytest.mark.e2e
PASSWORD = "Str0ng-enough-pass"


def cli(stack, *args, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT,
                          env={**stack.env, "LIANDONG_NEW_PASSWORD": PASSWORD, **env},
                          capture_output=True, text=True, timeout=120)


def add_user(stack, role="enforcement_unit", unit="lucheng-team-1", county="lucheng") -> str:
    name = f"u{uuid.uuid4().hex[:10]}"
    out = cli(stack, "users", "add", name, "--role", role, "--unit", unit,
              *(["--county", county] if county else []))
    assert out.returncode == 0, out.stdout + out.stderr
    return name


def up(base) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def login(base, username, password=PASSWORD, address="192.0.2.10", **extra):
    return requests.post(f"{base}/api/v1/login", timeout=30,
                         json={"username": username, "password": password, **extra},
                         headers={"X-Forwarded-For": address})


def me(base, bearer):
    return requests.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {bearer}"},
                        timeout=30)


class SecondGateway:
    """Another gateway process on the same database and vhost (a replica)."""

    def __init__(self, stack, **env):
        from shared.cli import service_command
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(stack.tmp / f"gateway-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            service_command("gateway"), cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            env={**stack.env, "WEB_SERVER_ADDRESS": f"127.0.0.1:{self.port}", **env})
        wait_for(lambda: up(self.base) or self.proc.poll() is not None, timeout=60,
                 message="second gateway")
        assert self.proc.poll() is None, (stack.tmp / f"gateway-{self.port}.log").read_text()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def web(stack):
    wait_for(lambda: up(stack.base_url), message="gateway HTTP")
    return stack


def test_lockout_is_shared_by_replicas_and_survives_a_restart(web):
    name = add_user(web)
    other = SecondGateway(web, LIANDONG_SIGNIN_THROTTLE='{"address_failures": 3}')
    try:
        # per user (5 failures, any address): alternately on replica A and B
        for n, base in enumerate((web.base_url, other.base, web.base_url, other.base)):
            assert login(base, name, "wrong", address=f"192.0.2.{20 + n}").status_code == 401
        locked = login(other.base, name, "wrong", address="192.0.2.30")   # the 5th
        assert locked.status_code == 429, locked.text
        assert 0 < int(locked.headers["Retry-After"]) <= 60
        right = login(web.base_url, name)                   # replica A: locked too
        assert right.status_code == 429 and right.json()["code"] == "too_many_attempts"

        # per address: replica B counts 3 failures per address, whatever the user name
        for n in range(3):
            assert login(other.base, f"nobody-{n}", "x", address="198.51.100.9") \
                .status_code in (401, 429)
        assert login(other.base, "lucheng-team1", "demo", address="198.51.100.9") \
            .status_code == 429
        assert login(other.base, "lucheng-team1", "demo", address="198.51.100.10") \
            .status_code == 200
    finally:
        other.stop()
    web.stop("gateway")
    web.start("gateway")
    wait_for(lambda: up(web.base_url), message="gateway after restart")
    still = login(web.base_url, name)
    assert still.status_code == 429, still.text
    assert login(web.base_url, "lucheng-team1", "demo", address="198.51.100.9") \
        .status_code == 429


def _refused_by_services(stack, bearer, reason="revoked"):
    with stack.rpc() as rpc:
        for call in (lambda: rpc.police_handoff.list(bearer),
                     lambda: rpc.market_referral.list(bearer),
                     lambda: rpc.command.list(bearer, kind="joint_action"),
                     lambda: rpc.tracker.board(bearer)):
            with pytest.raises(Unauthenticated) as err:
                call()
            assert reason in err.value.message, err.value.message
    return True


def _eventually_refused(stack, bearer):
    def refused():
        try:
            return _refused_by_services(stack, bearer)
        except AssertionError:
            return False
        except pytest.fail.Exception:
            return False
    wait_for(refused, timeout=20, interval=0.3, message="revocation at every service")


def test_logout_and_users_revoke_reach_every_service(web):
    name = add_user(web)
    first = login(web.base_url, name).json()
    assert first["expires"] - time.time() > 7 * 3600        # default: 8 h
    with web.rpc() as rpc:
        assert isinstance(rpc.police_handoff.list(first["token"]), list)
    out = requests.post(f"{web.base_url}/api/v1/logout", timeout=30,
                        headers={"Authorization": f"Bearer {first['token']}"})
    assert out.status_code == 200, out.text
    refused = me(web.base_url, first["token"])
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    _eventually_refused(web, first["token"])

    second, third = (login(web.base_url, name).json()["token"] for _ in range(2))
    revoked = cli(web, "users", "revoke", name)
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    for bearer in (second, third):
        assert me(web.base_url, bearer).status_code == 401
        _eventually_refused(web, bearer)

    # a service started after the revocations loads them from the gateway
    web.stop("market_referral")
    web.start("market_referral")
    with web.rpc() as rpc, pytest.raises(Unauthenticated):
        rpc.market_referral.list(second)
    time.sleep(1.1)                                        # a new token of the next second
    fresh = login(web.base_url, name).json()["token"]
    assert me(web.base_url, fresh).status_code == 200
    with web.rpc() as rpc:
        assert isinstance(rpc.market_referral.list(fresh), list)


def test_a_service_without_a_current_revocation_list_fails_closed(web):
    bearer = login(web.base_url, add_user(web)).json()["token"]
    web.stop("gateway")
    try:
        web.stop("police_handoff")
        web.start("police_handoff", LIANDONG_REVOCATION_WAIT="1")
        with web.rpc() as rpc, pytest.raises(Unavailable) as err:
            rpc.police_handoff.list(bearer)
        assert "revocation list is not current" in err.value.message
        assert rpc_health(web, "police_handoff")["revocations"]["current"] is False
    finally:
        web.start("gateway")
    wait_for(lambda: rpc_health(web, "police_handoff")["revocations"]["current"],
             message="police_handoff current again")
    with web.rpc() as rpc:
        assert isinstance(rpc.police_handoff.list(bearer), list)


def rpc_health(stack, service):
    with stack.rpc() as rpc:
        return getattr(rpc, service).health()


def test_disabled_user_and_password_change(web):
    name = add_user(web)
    bearer = login(web.base_url, name).json()["token"]
    assert cli(web, "users", "disable", name).returncode == 0
    assert login(web.base_url, name, address="192.0.2.77").status_code == 401
    assert me(web.base_url, bearer).status_code == 401
    assert cli(web, "users", "enable", name).returncode == 0
    weak = cli(web, "users", "passwd", name, LIANDONG_NEW_PASSWORD=f"{name}Aa1!")
    assert weak.returncode == 2 and "user name" in weak.stdout
    assert cli(web, "users", "passwd", name,
               LIANDONG_NEW_PASSWORD="An0ther-good-one").returncode == 0
    time.sleep(1.1)
    assert login(web.base_url, name, "An0ther-good-one", address="192.0.2.78") \
        .status_code == 200
    listed = cli(web, "users", "list")
    assert name in listed.stdout and "lucheng-team1" in listed.stdout


def test_totp_second_factor(web):
    name = add_user(web, role="coordinator", unit="wenzhou-coordination", county=None)
    enrolled = cli(web, "users", "totp", name)
    assert enrolled.returncode == 0, enrolled.stderr
    secret = json.loads(enrolled.stdout)["totp_secret"]
    assert json.loads(enrolled.stdout)["otpauth_uri"].startswith("otpauth://totp/")
    missing = login(web.base_url, name)
    assert missing.status_code == 401 and missing.json()["code"] == "otp_required"
    assert login(web.base_url, name, otp="000000").status_code == 401
    code = pyotp.TOTP(secret).now()
    ok = login(web.base_url, name, otp=code)
    assert ok.status_code == 200 and ok.json()["role"] == "coordinator"
    replay = login(web.base_url, name, otp=code)
    assert replay.status_code == 401, "a one-time code is accepted once"

    # a role that must have a second factor cannot sign in without one
    bare = add_user(web, role="operator", unit="liandong-ops", county=None)
    strict = SecondGateway(web, LIANDONG_TOTP_REQUIRED_ROLES="coordinator,operator")
    try:
        refused = login(strict.base, bare)
        assert refused.status_code == 401 and refused.json()["code"] == "otp_not_enrolled"
    finally:
        strict.stop()


def test_security_audit_lists_and_detects_tampering(web):
    name = add_user(web)
    login(web.base_url, name, "wrong", address="192.0.2.200")
    token_ = login(web.base_url, name, address="192.0.2.200").json()["token"]
    requests.post(f"{web.base_url}/api/v1/logout", timeout=30,
                  headers={"Authorization": f"Bearer {token_}"})
    out = cli(web, "audit", "--security", "--user", name)
    assert out.returncode == 0, out.stdout + out.stderr
    for kind in ("user.added", "signin.failed", "signin.succeeded", "token.revoked"):
        assert kind in out.stdout, out.stdout
    assert "192.0.2.200" in out.stdout and "chain intact" in out.stdout

    web.tamper("gateway", "security_audit", "UPDATE security_audit SET address = "
               "'10.9.9.9' WHERE username = :u AND kind = 'signin.failed'", {"u": name})
    broken = cli(web, "audit", "--security", "--user", name)
    assert broken.returncode == 1 and "BROKEN" in broken.stdout
    assert "content does not match its hash" in broken.stdout


def test_bad_requests_and_security_headers(web):
    base = web.base_url
    big = requests.post(f"{base}/api/v1/login", data=b"{" + b" " * (20 * 1024 * 1024) + b"}",
                        headers={"Content-Type": "application/json"}, timeout=60)
    assert big.status_code == 413 and big.json()["code"] == "payload_too_large"

    def chunks():
        for _ in range(40):
            yield b" " * 65536
    chunked = requests.post(f"{base}/api/v1/login", data=chunks(), timeout=60)
    assert chunked.status_code == 413

    deep = requests.post(f"{base}/api/v1/login", data="[" * 10000 + "]" * 10000,
                         timeout=30)
    assert deep.status_code == 422 and "too deep" in deep.json()["message"]
    ok = login(base, "lucheng-team1", "demo")
    assert ok.status_code == 200
    for response in (ok, deep, big, requests.get(f"{base}/", timeout=30)):
        h = response.headers
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in h
    assert ok.headers["Cache-Control"] == "no-store"
    tls = requests.get(f"{base}/api/v1/openapi.json", timeout=30,
                       headers={"X-Forwarded-Proto": "https"})
    assert tls.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "logout" in json.dumps(tls.json()["paths"])

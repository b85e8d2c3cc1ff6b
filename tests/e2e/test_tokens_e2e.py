"""Bearer tokens against the running services (issue 20): a token of the old default
secret, a tampered, an expired or a self-signed one is refused by the gateway over HTTP
and by a service over RPC; rotating the gateway's key keeps sessions; in production a
service without fit keys does not start, with the reason, and one given the keys of
`liandong keys init` does, serving the operator CLI whose tokens are audited."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import jwt
import pytest
import requests

from shared.cli import service_command
from shared.errors import Unauthenticated
from tests.conftest import ROOT, Stack, free_port, vhost, wait_for
from tests.helpers import (
    COORDINATOR,
    OLD_DEFAULT_SECRETS,
    b64,
    old_hmac_token,
    token,
    unb64,
)

pytestmark = pytest.mark.e2e


def http(stack, bearer: str, path: str = "/api/v1/handoffs") -> requests.Response:
    return requests.get(stack.base_url + path, headers={"Authorization": f"Bearer {bearer}"},
                        timeout=30)


def refused_everywhere(stack, bearer: str, reason: str) -> None:
    """401 JSON from the gateway, Unauthenticated from police_handoff and the tracker."""
    wait_for(lambda: _http_up(stack), message="gateway HTTP")
    response = http(stack, bearer)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthenticated"
    assert reason in response.json()["message"], response.json()
    with stack.rpc() as rpc:
        for call in (lambda: rpc.police_handoff.list(bearer),
                     lambda: rpc.tracker.board(bearer)):
            with pytest.raises(Unauthenticated) as err:
                call()
            assert reason in err.value.message, err.value.message


def _http_up(stack) -> bool:
    try:
        return requests.get(stack.base_url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def login(stack, username: str = "coordinator") -> str:
    r = requests.post(stack.base_url + "/api/v1/login", timeout=30,
                      data=json.dumps({"username": username, "password": "demo"}))
    assert r.status_code == 200, r.text
    return r.json()["token"]


def kid(bearer: str) -> str:
    return jwt.get_unverified_header(bearer)["kid"]


# ------------------------------------------------------------------ against the stack

@pytest.mark.parametrize("secret", OLD_DEFAULT_SECRETS)
def test_a_token_of_the_old_default_secret_is_refused(stack, secret):
    refused_everywhere(stack, old_hmac_token(secret), "no longer accepted")
    claims = {"iss": "gateway", "sub": "x", "role": "coordinator",
              "unit": "wenzhou-coordination", "iat": 1, "exp": 4102444800, "jti": "j"}
    as_jwt = jwt.encode(claims, secret, algorithm="HS256",
                        headers={"kid": kid(token(COORDINATOR))})
    refused_everywhere(stack, as_jwt, "'HS256' is not accepted")


def test_tampered_and_expired_tokens_are_refused(stack):
    from shared.auth import issue_token
    good = token(COORDINATOR)
    assert http(stack, good).status_code == 200
    head, payload, sig = good.split(".")
    claims = {**json.loads(unb64(payload)), "role": "city_command"}
    refused_everywhere(stack, ".".join([head, b64(json.dumps(claims).encode()), sig]),
                       "signature is not valid")
    refused_everywhere(stack, issue_token(COORDINATOR, ttl_seconds=-120), "expired")


def test_a_process_with_only_public_keys_cannot_issue_an_accepted_token(stack, tmp_path):
    """A service holds only the public keys: issuing fails; a key pair it makes up
    itself signs tokens that the gateway and the services refuse."""
    script = ("from shared.auth import Actor, issue_token; print(issue_token(Actor("
              "'x', 'coordinator', 'wenzhou-coordination')))")
    public = os.environ["LIANDONG_TOKEN_KEYS_DIR"] + "/public"
    env = {**stack.env, "LIANDONG_ENV": "production", "LIANDONG_TOKEN_PUBLIC_KEYS": public,
           "LIANDONG_TOKEN_KEYS_DIR": str(tmp_path / "no-private-key")}
    only_public = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=60)
    assert only_public.returncode != 0 and "no private key" in only_public.stderr
    assert "liandong keys init" in only_public.stderr and not only_public.stdout

    # development, on a host of its own: it makes a key pair, trusted only by itself
    env = {**env, "LIANDONG_ENV": "development"}
    env.pop("LIANDONG_TOKEN_PUBLIC_KEYS")
    own = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert own.returncode == 0, own.stderr
    refused_everywhere(stack, own.stdout.strip(), "is not trusted")
    head, payload, sig = own.stdout.strip().split(".")     # ... even under a trusted kid
    header = {**json.loads(unb64(head)), "kid": kid(token(COORDINATOR))}
    refused_everywhere(stack, ".".join([b64(json.dumps(header).encode()), payload, sig]),
                       "signature is not valid")


def test_rotating_the_gateway_key_keeps_sessions(stack):
    env = stack.env
    old_session = login(stack)
    old_kid = kid(old_session)
    rotated = cli(env, "keys", "rotate", "gateway")
    assert rotated.returncode == 0, rotated.stderr
    assert "Next steps of the rotation" in rotated.stdout
    activated = cli(env, "keys", "rotate", "gateway", "--activate")
    assert activated.returncode == 0 and f"keys retire {old_kid}" in activated.stdout

    new_session = login(stack)                          # the gateway signs with the new kid
    assert kid(new_session) != old_kid and kid(new_session) in rotated.stdout
    for session in (old_session, new_session):          # both accepted everywhere
        assert http(stack, session).status_code == 200
        assert http(stack, session, "/api/v1/me").json()["role"] == "coordinator"
        with stack.rpc() as rpc:
            rpc.police_handoff.list(session)

    retired = cli(env, "keys", "retire", old_kid)
    assert retired.returncode == 0, retired.stderr
    refused_everywhere(stack, old_session, "is not trusted")
    assert http(stack, new_session).status_code == 200
    listed = cli(env, "keys", "list")
    assert kid(new_session) in listed.stdout and old_kid not in listed.stdout


# ------------------------------------------------------------------ production mode

def start_in_production(name: str, env: dict) -> subprocess.CompletedProcess:
    """Start a service as `nameko run` does and wait for it to stop."""
    return subprocess.run(service_command(name), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def production_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LIANDONG_") and k != "DATABASE_URL"}
    # no LIANDONG_ENV at all: production is the default
    return {**env, "LIANDONG_DATA_DIR": str(tmp_path), "PYTHONWARNINGS": "ignore", **extra}


def test_a_service_without_fit_keys_in_production_exits_with_the_reason(tmp_path):
    done = start_in_production("police_handoff", production_env(tmp_path))
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "police_handoff refuses to start" in done.stderr
    assert "LIANDONG_TOKEN_PUBLIC_KEYS" in done.stderr and "liandong keys init" in done.stderr

    init = cli(production_env(tmp_path), "keys", "init", "--issuer", "operator")
    assert init.returncode == 0, init.stderr
    gateway = start_in_production("gateway", production_env(tmp_path))   # no gateway key
    assert gateway.returncode == 1 and "no private key of the token issuer 'gateway'" \
        in gateway.stderr and "--issuer gateway" in gateway.stderr

    dev = tmp_path / "dev"                              # keys made in development mode
    cli(production_env(dev, LIANDONG_ENV="development"), "token", "--as", "coordinator",
        "--unit", "u")
    old = start_in_production("tracker", production_env(dev, LIANDONG_SECRET="s3cret"))
    assert old.returncode == 1 and "is a development key" in old.stderr
    assert "LIANDONG_SECRET is set" in old.stderr


class ProductionStack(Stack):
    """Services started with exactly ``env`` (production, no development default)."""

    def __init__(self, amqp_uri: str, tmp, env: dict):
        super().__init__("sqlite", amqp_uri, tmp, None)
        self._env = env

    @property
    def env(self) -> dict:
        return self._env


def test_a_production_service_with_initialised_keys_serves_the_audited_cli(servers,
                                                                             tmp_path):
    host, port, _ = servers
    keys = tmp_path / "keys"
    assert cli(production_env(tmp_path), "keys", "init", "--dir", str(keys)).returncode == 0
    with vhost(f"liandong-test-prod-{uuid.uuid4().hex[:8]}",
               host.endswith("@127.0.0.1")) as vh:
        from urllib.parse import quote
        uri = f"amqp://{host}:{port}/{quote(vh, safe='')}"
        env = production_env(tmp_path, AMQP_URI=uri, LIANDONG_TOKEN_KEYS_DIR=str(keys),
                             WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")
        stack = ProductionStack(uri, tmp_path, env)
        try:
            stack.start("police_handoff")
            assert "token_keys_checked" in stack.log("police_handoff")
            # the gateway (no users file in production) serves the revocations the
            # service loads before it accepts any token (shared/revocations.py)
            stack.start("gateway")
            listed = cli(env, "referral", "list", "--as", "coordinator", "--unit",
                         "wenzhou-coordination", "--user", "coord-audited")
            assert listed.returncode == 0, listed.stderr
            assert json.loads(listed.stdout) == []
            with stack.rpc() as rpc, pytest.raises(Unauthenticated):
                rpc.police_handoff.list(old_hmac_token(OLD_DEFAULT_SECRETS[0]))
        finally:
            stack.shutdown()
    audit = cli(env, "audit", "--tokens")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "coordinator@wenzhou-coordination as coord-audited" in audit.stdout
    assert "1 token(s)" in audit.stdout and "chain intact" in audit.stdout
    (record,) = [json.loads(line) for line in
                 (tmp_path / "audit" / "tokens.jsonl").read_text().splitlines()]
    assert record["command"] == "referral list" and record["kid"].startswith("operator-")
    assert record["os_user"] and record["issuer"] == "operator"

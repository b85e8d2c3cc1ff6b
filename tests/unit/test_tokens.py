"""Bearer tokens (issue 20): Ed25519-signed JWTs, keys by kid, rotation, production mode,
and the audit of the CLI's tokens. No services: shared/auth.py, shared/tokenkeys.py and
shared/tokenaudit.py in this process, each test in its own keys folder."""
from __future__ import annotations

import json
import threading

import jwt
import pytest

from shared import tokenaudit, tokenkeys
from shared.auth import Actor, issue_token, mint, verify_token
from shared.errors import Unauthenticated
from shared.tokenkeys import KeySetupError
from tests.helpers import OLD_DEFAULT_SECRETS, b64, old_hmac_token, unb64

ALICE = Actor("coord-lin", "coordinator", "wenzhou-coordination", None)
UNIT = Actor("officer-li", "enforcement_unit", "lucheng-team-1", "lucheng")


@pytest.fixture
def keys(tmp_path, monkeypatch):
    """A fresh token keys folder for this test, in development mode."""
    monkeypatch.setenv("LIANDONG_TOKEN_KEYS_DIR", str(tmp_path / "tokens"))
    monkeypatch.delenv("LIANDONG_TOKEN_PUBLIC_KEYS", raising=False)
    monkeypatch.delenv("LIANDONG_SECRET", raising=False)
    monkeypatch.setenv("LIANDONG_ENV", "development")
    return tmp_path / "tokens"


@pytest.fixture
def production(keys, monkeypatch):
    """Production mode with the keys `liandong keys init` makes."""
    monkeypatch.setenv("LIANDONG_ENV", "production")
    tokenkeys.init(directory=keys)
    return keys


def refused(token, reason: str) -> None:
    with pytest.raises(Unauthenticated) as err:
        verify_token(token)
    assert reason in err.value.message, err.value.message


def test_token_carries_the_identity_a_kid_and_a_unique_jti(keys):
    token = issue_token(UNIT)
    assert verify_token(token) == UNIT
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "EdDSA" and header["kid"].startswith("dev-gateway-")
    assert {k: claims[k] for k in ("iss", "sub", "role", "unit", "county")} == {
        "iss": "gateway", "sub": "officer-li", "role": "enforcement_unit",
        "unit": "lucheng-team-1", "county": "lucheng"}
    assert claims["exp"] - claims["iat"] == 8 * 3600
    assert len({mint(UNIT).claims["jti"] for _ in range(50)} | {claims["jti"]}) == 51
    # the key files: the private one for its owner only, the public one named by its kid
    assert (keys / "gateway.key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (keys / "public").iterdir()] == [f"{header['kid']}.jwk"]
    assert "d" not in json.loads((keys / "public" / f"{header['kid']}.jwk").read_text())


@pytest.mark.parametrize("secret", OLD_DEFAULT_SECRETS)
def test_a_token_signed_with_an_old_default_secret_is_refused(keys, secret):
    kid = jwt.get_unverified_header(issue_token(ALICE))["kid"]   # a trusted kid exists
    refused(old_hmac_token(secret), "no longer accepted")
    claims = {"iss": "gateway", "sub": "x", "role": "coordinator", "unit": "u", "iat": 1,
              "exp": 4102444800, "jti": "j"}
    # the same secret as an HS256 JWT, even naming a trusted kid: the algorithm is pinned
    refused(jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid}),
            "'HS256' is not accepted")
    refused(jwt.encode(claims, None, algorithm="none", headers={"kid": kid}),
            "'none' is not accepted")


def test_an_expired_token_is_refused(keys):
    refused(issue_token(ALICE, ttl_seconds=-120), "expired")
    assert verify_token(issue_token(ALICE, ttl_seconds=5)) == ALICE


def _other_trusted_kid() -> str:
    return jwt.get_unverified_header(issue_token(ALICE, issuer="operator"))["kid"]


def _change_claims(token: str, **changes) -> str:
    head, payload, sig = token.split(".")
    claims = {**json.loads(unb64(payload)), **changes}
    return ".".join([head, b64(json.dumps(claims).encode()), sig])


def _change_header(token: str, **changes) -> str:
    head, payload, sig = token.split(".")
    return ".".join([b64(json.dumps({**json.loads(unb64(head)), **changes}).encode()),
                     payload, sig])


def _flip(token: str, part: int) -> str:
    parts = token.split(".")
    raw = bytearray(unb64(parts[part]))
    raw[len(raw) // 2] ^= 0x01
    parts[part] = b64(bytes(raw))
    return ".".join(parts)


@pytest.mark.parametrize("tamper, reason", [
    (lambda t: _change_claims(t, role="coordinator"), "signature is not valid"),
    (lambda t: _change_claims(t, unit="wenzhou-coordination"), "signature is not valid"),
    (lambda t: _change_claims(t, exp=4102444800), "signature is not valid"),
    (lambda t: _flip(t, 1), "not valid"),
    (lambda t: _flip(t, 2), "signature is not valid"),
    (lambda t: t[:-4], "not valid"),
    (lambda t: _change_header(t, kid=_other_trusted_kid()), "signature is not valid"),
    (lambda t: _change_header(t, kid="gateway-20260101-00000000"), "is not trusted"),
    (lambda t: _change_header(t, alg="HS256"), "is not accepted"),
    (lambda t: "x" + t, "signature is not valid"),
    (lambda t: t.replace(".", "", 1), "no longer accepted"),
])
def test_tampering_with_any_part_is_refused(keys, tamper, reason):
    token = issue_token(UNIT)
    assert verify_token(token) == UNIT
    refused(tamper(token), reason)


def test_missing_claims_and_empty_tokens_are_refused(keys):
    key = tokenkeys.signing_key("gateway")
    refused(jwt.encode({"sub": "x", "role": "coordinator", "unit": "u", "exp": 4102444800},
                       key.key, algorithm="EdDSA", headers={"kid": key.kid}), "lacks the")
    for token in (None, "", 42, "Bearer"):
        with pytest.raises(Unauthenticated):
            verify_token(token)


@pytest.mark.parametrize("claims, header", [
    ({"role": ["coordinator"]}, {}),
    ({"unit": {"a": 1}}, {}),
    ({"county": 7}, {}),
    ({}, {"kid": ["a", "list"]}),
])
def test_signed_claims_of_the_wrong_type_are_refused_not_a_crash(keys, claims, header):
    key = tokenkeys.signing_key("gateway")
    signed = ".".join(b64(json.dumps(part).encode()) for part in (
        {"alg": "EdDSA", "typ": "JWT", "kid": key.kid, **header},
        {**mint(ALICE).claims, **claims}))
    token = f"{signed}.{b64(key.key.sign(signed.encode()))}"
    with pytest.raises(Unauthenticated):
        verify_token(token)


def test_an_issuer_cannot_sign_under_another_issuers_name(keys):
    """The operator key cannot make a token that claims to come from the gateway."""
    key = tokenkeys.signing_key("operator")
    forged = jwt.encode({**mint(ALICE).claims, "iss": "gateway"}, key.key, algorithm="EdDSA",
                        headers={"kid": key.kid})
    refused(forged, "does not hold key")


def test_a_process_with_only_public_keys_cannot_issue(production, monkeypatch, tmp_path):
    """A service holds the public keys only: it cannot sign at all, and a key pair it makes
    up itself signs tokens nobody accepts."""
    accepted = issue_token(ALICE)
    monkeypatch.setenv("LIANDONG_TOKEN_PUBLIC_KEYS", str(production / "public"))
    monkeypatch.setenv("LIANDONG_TOKEN_KEYS_DIR", str(tmp_path / "service-has-no-private-key"))
    with pytest.raises(KeySetupError) as err:
        issue_token(ALICE)
    assert "LIANDONG_TOKEN_KEYS_DIR" in str(err.value) and "liandong keys init" in str(err.value)
    assert verify_token(accepted) == ALICE               # verifying needs only public keys

    rogue = tokenkeys.generate("gateway", tmp_path / "rogue")       # its own key pair
    claims = {"iss": "gateway", "sub": "x", "role": "coordinator", "unit": "u", "iat": 1,
              "exp": 4102444800, "jti": "j"}
    token = jwt.encode(claims, rogue.key, algorithm="EdDSA", headers={"kid": rogue.kid})
    refused(token, "is not trusted")
    trusted_kid = jwt.get_unverified_header(accepted)["kid"]
    refused(_change_header(token, kid=trusted_kid), "signature is not valid")


def test_rotation_keeps_sessions_and_new_tokens_carry_the_new_kid(production):
    old_session = issue_token(ALICE)
    old_kid = jwt.get_unverified_header(old_session)["kid"]

    new = tokenkeys.rotate("gateway", production)        # 1. next key, trusted, not signing
    assert new.kid != old_kid and new.kid in tokenkeys.trusted()
    assert jwt.get_unverified_header(issue_token(ALICE))["kid"] == old_kid
    with pytest.raises(KeySetupError, match="activate it"):
        tokenkeys.rotate("gateway", production)

    old, activated = tokenkeys.activate("gateway", production)   # 2. switch the issuer
    assert (old.kid, activated.kid) == (old_kid, new.kid)
    new_session = issue_token(ALICE)
    assert jwt.get_unverified_header(new_session)["kid"] == new.kid
    assert verify_token(old_session) == verify_token(new_session) == ALICE  # both valid

    with pytest.raises(KeySetupError, match="rotate and activate"):
        tokenkeys.retire(new.kid, production)           # the signing key cannot be retired
    tokenkeys.retire(old_kid, production)               # 3. retire the old kid
    refused(old_session, "is not trusted")
    assert verify_token(new_session) == ALICE
    assert {r["kid"]: r["use"] for r in tokenkeys.inventory(production)} == {
        new.kid: "gateway signing",
        jwt.get_unverified_header(issue_token(ALICE, issuer="operator"))["kid"]:
            "operator signing"}


def test_production_never_creates_or_trusts_a_development_key(keys, monkeypatch):
    dev_token = issue_token(ALICE)                       # development: made on first use
    assert jwt.get_unverified_header(dev_token)["kid"].startswith("dev-gateway-")
    monkeypatch.setenv("LIANDONG_ENV", "production")
    refused(dev_token, "is not trusted")
    with pytest.raises(KeySetupError, match="is a development key"):
        issue_token(ALICE)
    with pytest.raises(KeySetupError, match="no private key of the token issuer 'operator'"):
        issue_token(ALICE, issuer="operator")            # and nothing is generated
    assert not (keys / "operator.key").exists()
    # a development key whose marker was edited away is still known by its kid
    pub = next((keys / "public").glob("dev-*.jwk"))
    doc = json.loads(pub.read_text())
    doc["liandong"]["env"] = "production"
    pub.write_text(json.dumps(doc))
    assert tokenkeys.load(pub).development


def test_startup_problems_name_the_variable_and_the_command(keys, monkeypatch):
    monkeypatch.setenv("LIANDONG_ENV", "production")
    (problem,) = tokenkeys.startup_problems()
    assert "LIANDONG_TOKEN_PUBLIC_KEYS" in problem and "liandong keys init" in problem
    issue = " ".join(tokenkeys.startup_problems("gateway"))
    assert "LIANDONG_TOKEN_KEYS_DIR" in issue and "--issuer gateway" in issue

    tokenkeys.init(directory=keys)
    assert tokenkeys.startup_problems() == tokenkeys.startup_problems("gateway") == []
    with pytest.raises(SystemExit) as stop:
        monkeypatch.setenv("LIANDONG_SECRET", "anything")
        tokenkeys.check_startup("police_handoff")
    assert "police_handoff refuses to start" in str(stop.value)
    assert "LIANDONG_SECRET is set" in str(stop.value)
    monkeypatch.delenv("LIANDONG_SECRET")

    # the gateway's kid must be among the public keys, or nothing it signs is accepted
    (keys / "public" / f"{tokenkeys.signing_key('gateway').kid}.jwk").unlink()
    assert "not among the trusted public keys" in " ".join(
        tokenkeys.startup_problems("gateway"))
    monkeypatch.setenv("LIANDONG_ENV", "staging")
    assert "neither 'production' nor 'development'" in tokenkeys.startup_problems()[0]
    monkeypatch.delenv("LIANDONG_ENV")                  # unset means production
    assert tokenkeys.mode() == "production"


def test_development_keys_are_made_once_by_concurrent_first_uses(keys):
    kids = []
    threads = [threading.Thread(target=lambda: kids.append(tokenkeys.signing_key("gateway")
                                                           .kid)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(kids)) == 1
    assert [p.stem for p in (keys / "public").glob("*.jwk")] == kids[:1]


def test_the_cli_token_audit_is_a_hash_chain(keys, tmp_path):
    path = tmp_path / "audit" / "tokens.jsonl"
    entries = [tokenaudit.record(mint(actor, issuer="operator"), "board", path)
               for actor in (ALICE, UNIT, ALICE)]
    records = tokenaudit.read(path)
    assert records == entries and tokenaudit.verify(records) == []
    first = records[0]
    assert first["os_user"] and first["host"] and first["command"] == "board"
    assert (first["sub"], first["role"], first["issuer"]) == ("coord-lin", "coordinator",
                                                              "operator")
    assert first["kid"].startswith("dev-operator-") and len(first["jti"]) == 32
    assert "token" not in first                          # the credential is never written

    lines = path.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["role"] = "police"
    path.write_text("\n".join([lines[0], json.dumps(edited), lines[2]]) + "\n")
    assert "line 2" in " ".join(tokenaudit.verify(tokenaudit.read(path)))
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert "link to the previous line is broken" in " ".join(
        tokenaudit.verify(tokenaudit.read(path)))

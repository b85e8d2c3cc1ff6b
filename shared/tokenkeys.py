"""Keys of bearer tokens: who may sign people's tokens, and whom every service trusts.

Tokens are JWTs signed with Ed25519 (``alg: EdDSA``, shared/auth.py). Two issuers hold
a private key:

* ``gateway`` signs the token of every person who signs in (services/gateway/users.py);
* ``operator`` signs the tokens of the ``liandong`` CLI on an operator's host
  (``--as ROLE --unit U``); each one is recorded in the token audit (shared/tokenaudit.py).

Every service holds only public keys and accepts a token only when the ``kid`` in its
header names one of them, so two keys are accepted side by side during a rotation.
The files are JWKs (RFC 7517, Ed25519 as in RFC 8037) with the key id and a ``liandong``
member saying whose key it is and whether it is a development key:

    <LIANDONG_TOKEN_KEYS_DIR>/gateway.key       the gateway's current private key (0600)
                              operator.key      the operator CLI's private key (0600)
                              gateway.next.key  a rotated key not signing yet
    <LIANDONG_TOKEN_PUBLIC_KEYS>/<kid>.jwk      the trusted public keys (default: public/
                                                under LIANDONG_TOKEN_KEYS_DIR)

``LIANDONG_ENV`` is ``production`` unless it says ``development``. In development a
missing issuer key is created on first use, marked as a development key (kid
``dev-...``). In production nothing is created: issuing without the issuer's key fails,
a development key is never trusted, and ``check_startup`` stops a service that lacks
trusted public keys, holds a development key or still sets the retired
``LIANDONG_SECRET``, naming the variable and the command that makes a key.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from shared import signing

log = structlog.get_logger(__name__)

DEVELOPMENT, PRODUCTION = "development", "production"
ISSUERS = ("gateway", "operator")
INIT = "liandong keys init"


class KeySetupError(Exception):
    """The token keys this process needs are missing or unfit; the message says what to do."""


@dataclass(frozen=True)
class TokenKey:
    kid: str
    issuer: str
    development: bool
    created: str
    key: Ed25519PrivateKey | Ed25519PublicKey
    path: Path


# ------------------------------------------------------------------ settings

def mode() -> str:
    """``LIANDONG_ENV``: ``production`` (the default) or ``development``."""
    value = (os.environ.get("LIANDONG_ENV") or PRODUCTION).strip().lower()
    if value not in (DEVELOPMENT, PRODUCTION):
        raise KeySetupError(f"LIANDONG_ENV={value!r} is neither {PRODUCTION!r} nor "
                            f"{DEVELOPMENT!r}")
    return value


def keys_dir() -> Path:
    configured = os.environ.get("LIANDONG_TOKEN_KEYS_DIR")
    return Path(configured) if configured else signing.keys_dir() / "tokens"


def public_dir() -> Path:
    """The trusted public keys: LIANDONG_TOKEN_PUBLIC_KEYS, else ``public/`` of the keys dir."""
    configured = os.environ.get("LIANDONG_TOKEN_PUBLIC_KEYS")
    return Path(configured) if configured else keys_dir() / "public"


def _dirs(directory: Path | None, public: Path | None) -> tuple[Path, Path]:
    """(keys dir, public keys dir): the configured ones, or ``directory`` and its public/."""
    if directory is None:
        return keys_dir(), public or public_dir()
    return directory, public or directory / "public"


def key_path(issuer: str, directory: Path | None = None, *, following: bool = False) -> Path:
    if issuer not in ISSUERS:
        raise ValueError(f"unknown token issuer {issuer!r} (one of {', '.join(ISSUERS)})")
    return (directory or keys_dir()) / f"{issuer}{'.next' if following else ''}.key"


# ------------------------------------------------------------------ files

def _thumbprint(public: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, hex) of an Ed25519 public key."""
    jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    members = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"),
                         sort_keys=True)
    return hashlib.sha256(members.encode("ascii")).hexdigest()


def _jwk(key, kid: str, issuer: str, development: bool, created: str) -> bytes:
    doc = {**OKPAlgorithm.to_jwk(key, as_dict=True), "kid": kid, "alg": "EdDSA", "use": "sig",
           "liandong": {"issuer": issuer, "env": DEVELOPMENT if development else PRODUCTION,
                        "created": created}}
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def load(path: Path) -> TokenKey:
    """A key file (private or public JWK); KeySetupError naming the file if unusable."""
    try:
        doc = json.loads(path.read_text("utf-8"))
        key = jwt.PyJWK(doc).key
        meta = doc.get("liandong") or {}
        kid, issuer = doc["kid"], meta["issuer"]
    except (OSError, ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
        raise KeySetupError(f"{path} is not a Liandong token key ({type(exc).__name__}: "
                            f"{exc}); make keys with `{INIT}`") from None
    if not isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        raise KeySetupError(f"{path}: token keys are Ed25519 (OKP), not {doc.get('kty')}")
    development = meta.get("env") != PRODUCTION or str(kid).startswith("dev-")
    return TokenKey(kid=str(kid), issuer=str(issuer), development=development,
                    created=str(meta.get("created", "")), key=key, path=path)


def generate(issuer: str, directory: Path | None = None, public: Path | None = None, *,
             development: bool = False, following: bool = False) -> TokenKey:
    """A new key pair of ``issuer``: its public key trusted (``public/<kid>.jwk``), then
    its private key written once (an existing one is kept and returned instead)."""
    directory, public = _dirs(directory, public)
    path = key_path(issuer, directory, following=following)
    key = Ed25519PrivateKey.generate()
    now = datetime.now(UTC)
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    kid = (f"{'dev-' if development else ''}{issuer}-{now:%Y%m%d}-"
           f"{_thumbprint(key.public_key())[:8]}")
    pub_file = public / f"{kid}.jwk"
    signing.create_exclusive(pub_file, _jwk(key.public_key(), kid, issuer, development,
                                            created), 0o644)
    if not signing.create_exclusive(path, _jwk(key, kid, issuer, development, created)):
        pub_file.unlink(missing_ok=True)      # another process made the key first
    return load(path)


@lru_cache(maxsize=16)
def _cached(path: str, mtime_ns: int) -> TokenKey:
    return load(Path(path))


def signing_key(issuer: str) -> TokenKey:
    """The private key ``issuer`` signs with (created on first use in development only)."""
    path = key_path(issuer)
    if not path.exists():
        if mode() != DEVELOPMENT:
            raise KeySetupError(
                f"no private key of the token issuer {issuer!r} at {path} "
                f"(LIANDONG_TOKEN_KEYS_DIR): create one with `{INIT} --issuer {issuer}` and "
                f"copy the public/<kid>.jwk it prints to every service's "
                f"LIANDONG_TOKEN_PUBLIC_KEYS; a service that only holds public keys cannot "
                f"issue tokens")
        generate(issuer, development=True)
    key = _cached(str(path), path.stat().st_mtime_ns)
    if key.development and mode() != DEVELOPMENT:
        raise KeySetupError(f"{path} is a development key (kid {key.kid}) and LIANDONG_ENV is "
                            f"production: create a production key with `{INIT} --issuer "
                            f"{issuer}` in a fresh LIANDONG_TOKEN_KEYS_DIR")
    return key


@lru_cache(maxsize=4)
def _keyset(directory: str, mtime_ns: int) -> tuple[dict[str, TokenKey], tuple[str, ...]]:
    keys, problems = {}, []
    for path in sorted(Path(directory).glob("*.jwk")):
        try:
            key = load(path)
        except KeySetupError as exc:
            problems.append(str(exc))
            continue
        if path.stem != key.kid:
            problems.append(f"{path} holds kid {key.kid!r}: name it {key.kid}.jwk")
        elif isinstance(key.key, Ed25519PrivateKey):
            problems.append(f"{path} is a private key: only public keys belong in "
                            f"LIANDONG_TOKEN_PUBLIC_KEYS")
        else:
            keys[key.kid] = key
    return keys, tuple(problems)


def trusted(directory: Path | None = None) -> dict[str, TokenKey]:
    """kid -> public key of every token a service accepts (re-read when the folder changes:
    adding or removing a ``.jwk`` file takes effect without a restart). Development keys
    count only in development."""
    directory = directory or public_dir()
    try:
        mtime = directory.stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    keys, _ = _keyset(str(directory), mtime)
    if mode() == DEVELOPMENT:
        return keys
    return {kid: key for kid, key in keys.items() if not key.development}


# ------------------------------------------------------------------ start-up check

def startup_problems(issuer: str | None = None) -> list[str]:
    """Why this process must not run with its token keys ([] when it may)."""
    try:
        current = mode()
    except KeySetupError as exc:
        return [str(exc)]
    problems = []
    if os.environ.get("LIANDONG_SECRET") is not None:
        message = ("LIANDONG_SECRET is set, but tokens are no longer signed with a shared "
                   "secret (Ed25519 keys instead): remove it from the environment")
        if current == PRODUCTION:
            problems.append(message)
        else:
            log.warning("legacy_secret_ignored", reason=message)
    if current == DEVELOPMENT:
        return problems
    directory = public_dir()
    keys, unreadable = _keyset(str(directory), directory.stat().st_mtime_ns) \
        if directory.is_dir() else ({}, ())
    problems += unreadable
    problems += [f"{key.path} is a development key (kid {key.kid}): remove it; production "
                 f"keys come from `{INIT}`" for key in keys.values() if key.development]
    if not any(not key.development for key in keys.values()):
        problems.append(f"no trusted token public key in {directory} "
                        f"(LIANDONG_TOKEN_PUBLIC_KEYS): create the keys with `{INIT}` and "
                        f"copy its public/*.jwk there")
    if issuer:
        try:
            own = signing_key(issuer)
        except KeySetupError as exc:
            problems.append(str(exc))
        else:
            if own.kid not in keys:
                problems.append(f"the {issuer} signs with kid {own.kid}, which is not among "
                                f"the trusted public keys in {directory}: copy "
                                f"public/{own.kid}.jwk there, or no token it issues is "
                                f"accepted")
    return problems


def check_startup(service: str, issuer: str | None = None) -> None:
    """Stop this process (SystemExit with every reason) unless its token keys are fit.

    Called when a service module is imported (``nameko run`` exits with status 1 and the
    message); ``issuer`` is the issuer whose private key the service signs with."""
    problems = startup_problems(issuer)
    if problems:
        log.error("token_keys_unfit", service=service, problems=problems)
        raise SystemExit(f"{service} refuses to start (LIANDONG_ENV="
                         f"{os.environ.get('LIANDONG_ENV') or PRODUCTION}):\n  - "
                         + "\n  - ".join(problems)
                         + "\n(README: Production > Token keys; development machines set "
                           "LIANDONG_ENV=development)")
    log.info("token_keys_checked", service=service, mode=mode(), issuer=issuer)


# ------------------------------------------------------------------ operations (CLI)

def init(issuers=ISSUERS, directory: Path | None = None,
         public: Path | None = None) -> list[tuple[str, TokenKey, bool]]:
    """Create each issuer's production key where it is missing: (issuer, key, created)."""
    out = []
    for issuer in issuers:
        path = key_path(issuer, directory)
        created = not path.exists()
        key = generate(issuer, directory, public) if created else load(path)
        out.append((issuer, key, created))
    return out


def rotate(issuer: str, directory: Path | None = None, public: Path | None = None) -> TokenKey:
    """Step 1 of a rotation: the issuer's next key, trusted from now on, not signing yet."""
    following = key_path(issuer, directory, following=True)
    if following.exists():
        raise KeySetupError(f"{following} exists already (kid {load(following).kid}): "
                            f"activate it with `liandong keys rotate {issuer} --activate`")
    current = key_path(issuer, directory)
    if not current.exists():
        raise KeySetupError(f"no current {issuer} key in {current.parent}: "
                            f"`{INIT} --issuer {issuer}` makes the first one")
    return generate(issuer, directory, public, following=True,
                    development=load(current).development)


def activate(issuer: str, directory: Path | None = None) -> tuple[TokenKey, TokenKey]:
    """Step 2: the issuer signs with its next key from now on; (old, new). The old
    private key is gone; its public key stays trusted until ``retire``."""
    following, current = (key_path(issuer, directory, following=True),
                          key_path(issuer, directory))
    if not following.exists():
        raise KeySetupError(f"no next {issuer} key in {following.parent}: run "
                            f"`liandong keys rotate {issuer}` first")
    old, new = load(current), load(following)
    os.replace(following, current)
    return old, new


def retire(kid: str, directory: Path | None = None, public: Path | None = None) -> Path:
    """Step 3: stop trusting ``kid`` (tokens it signed are refused from now on)."""
    directory, public = _dirs(directory, public)
    path = public / f"{kid}.jwk"
    if not path.exists():
        raise KeySetupError(f"no trusted key {kid!r} in {public}")
    for issuer in ISSUERS:
        for following in (False, True):
            own = key_path(issuer, directory, following=following)
            if own.exists() and load(own).kid == kid:
                raise KeySetupError(f"{kid} is the key in {own}: rotate and activate a new "
                                    f"{issuer} key before retiring this one")
    path.unlink()
    return path


def inventory(directory: Path | None = None, public: Path | None = None) -> list[dict]:
    """Every key of this folder: which issuer uses it, whether it is trusted, its mode."""
    directory, public = _dirs(directory, public)
    rows, seen = [], set()
    for issuer in ISSUERS:
        for following in (False, True):
            path = key_path(issuer, directory, following=following)
            if path.exists():
                key = load(path)
                seen.add(key.kid)
                use = f"{issuer} {'next' if following else 'signing'}"
                rows.append({"kid": key.kid, "use": use,
                             "trusted": (public / f"{key.kid}.jwk").exists(),
                             "env": DEVELOPMENT if key.development else PRODUCTION,
                             "created": key.created, "file": str(path)})
    keys, problems = _keyset(str(public), public.stat().st_mtime_ns) \
        if public.is_dir() else ({}, ())
    rows += [{"kid": key.kid, "use": f"{key.issuer} (public only)", "trusted": True,
              "env": DEVELOPMENT if key.development else PRODUCTION, "created": key.created,
              "file": str(key.path)} for key in keys.values() if key.kid not in seen]
    rows += [{"kid": "?", "use": "unreadable", "trusted": False, "env": "", "created": "",
              "file": problem} for problem in problems]
    return rows

"""Signed envelopes: each publishing service signs what it issues with its own Ed25519
key, so a receiving agency can check who issued an event (not only who was allowed to
publish it on the broker).

* The signer is the publisher whose ``source`` (contracts/bus/publishers.yaml) the
  envelope names; CloudEvents extensions ``signer`` and ``signature`` carry it.
* The signer must be the publisher of the envelope's event type (its
  ``event_prefixes``): a consumer dead-letters a ``criminal_referral.*`` event signed by
  the market_referral publisher, whatever topic it arrived on.
* The signature covers the canonical JSON of the whole envelope except ``signature``.
* Keys live in ``LIANDONG_KEYS_DIR`` (default ``<LIANDONG_DATA_DIR>/keys``): a service
  creates ``<service>.key`` (mode 0600) on first use and publishes ``<service>.pub``;
  receivers need only the ``.pub`` files.
"""
from __future__ import annotations

import base64
import json
import os
import uuid
from functools import lru_cache
from pathlib import Path

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.envelope import EnvelopeError
from shared.standards import CONTRACTS_DIR


def keys_dir() -> Path:
    configured = os.environ.get("LIANDONG_KEYS_DIR")
    return Path(configured) if configured else \
        Path(os.environ.get("LIANDONG_DATA_DIR", "var")) / "keys"


@lru_cache(maxsize=1)
def signer_of_source() -> dict[str, str]:
    doc = yaml.safe_load((CONTRACTS_DIR / "bus" / "publishers.yaml").read_text("utf-8"))
    return {spec["source"]: service for service, spec in doc["publishers"].items()
            if spec.get("source")}


@lru_cache(maxsize=1)
def prefixes_of_signer() -> dict[str, tuple[str, ...]]:
    """publisher -> the event-type prefixes it may issue (publishers.yaml)."""
    doc = yaml.safe_load((CONTRACTS_DIR / "bus" / "publishers.yaml").read_text("utf-8"))
    return {service: tuple(spec.get("event_prefixes") or ())
            for service, spec in doc["publishers"].items()}


def check_type(signer: str, event_type) -> None:
    """An event type is issued only by the publisher it belongs to: a key of one service
    cannot sign another service's events (EnvelopeError saying whose they are)."""
    prefix = str(event_type).split(".", 1)[0]
    allowed = prefixes_of_signer().get(signer, ())
    if prefix not in allowed:
        owners = [s for s, p in prefixes_of_signer().items() if prefix in p]
        raise EnvelopeError({"type": [
            f"{event_type!r} is not issued by {signer!r} (it issues: "
            f"{', '.join(allowed) or 'nothing'}); {prefix}.* events are issued by "
            f"{', '.join(owners) or 'no publisher'} (contracts/bus/publishers.yaml)"]})


def canonical(envelope: dict) -> bytes:
    body = {k: v for k, v in envelope.items() if k != "signature"}
    return json.dumps(body, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def create_exclusive(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Write ``data`` to ``path`` unless it exists; True if this call created it.

    Atomic: the file is written under a unique temporary name (with ``mode`` from the
    start, never readable by others meanwhile) and hard-linked into place, so two
    processes starting together never both create it, and no one reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _private_key(signer: str, directory: Path) -> Ed25519PrivateKey:
    path = directory / f"{signer}.key"
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        if create_exclusive(path, pem):  # two replicas cannot both create a key
            (directory / f"{signer}.pub").write_bytes(key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


@lru_cache(maxsize=32)
def _cached_private(signer: str, directory: str) -> Ed25519PrivateKey:
    return _private_key(signer, Path(directory))


@lru_cache(maxsize=32)
def _cached_public(signer: str, directory: str, mtime: float) -> Ed25519PublicKey:
    return serialization.load_pem_public_key((Path(directory) / f"{signer}.pub").read_bytes())


def sign(envelope: dict, directory: Path | None = None) -> dict:
    """Add ``signer`` and ``signature`` for the publisher that owns the envelope's source."""
    directory = directory or keys_dir()
    signer = signer_of_source().get(envelope["source"])
    if signer is None:
        raise ValueError(f"no publisher owns source {envelope['source']!r}")
    signed = {**envelope, "signer": signer}
    signed.pop("signature", None)
    key = _cached_private(signer, str(directory))
    signed["signature"] = base64.urlsafe_b64encode(key.sign(canonical(signed))).decode()
    return signed


def verify(envelope: dict, directory: Path | None = None) -> None:
    """Raise EnvelopeError saying why ``envelope`` was not issued by its source."""
    directory = directory or keys_dir()
    signer, signature = envelope.get("signer"), envelope.get("signature")
    if not signer or not signature:
        raise EnvelopeError({"signature": ["missing: unsigned envelopes are refused"]})
    owner = signer_of_source().get(envelope.get("source"))
    if owner != signer:
        raise EnvelopeError({"source": [f"forged source: {envelope.get('source')!r} is not "
                                        f"issued by {signer!r}"]})
    check_type(signer, envelope.get("type"))
    try:       # one stat, no Path objects: this runs for every message a consumer takes
        mtime = os.stat(os.path.join(directory, f"{signer}.pub")).st_mtime
    except FileNotFoundError:
        raise EnvelopeError({"signer": [f"no public key for {signer!r}"]}) from None
    try:
        _cached_public(signer, str(directory), mtime).verify(
            base64.urlsafe_b64decode(signature), canonical(envelope))
    except (InvalidSignature, ValueError):
        raise EnvelopeError({"signature": ["does not match: the envelope was forged or "
                                           "altered"]}) from None

"""CloudEvents 1.0 envelope (structured JSON mode) for every message on the bus.

Extensions used by Liandong (CloudEvents extension names are lowercase alphanumerics):
``sequence`` (per-subject, starts at 1), ``actor`` (user id of who acted),
``actorrole`` (their role) and ``actorunit`` (their unit).
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

SPECVERSION = "1.0"
EXCHANGE = "liandong.events"
DATASCHEMA_BASE = "https://liandong.example/contracts/schemas/"
TYPE_RE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+\.v[1-9][0-9]*$")


class EnvelopeError(ValueError):
    """A message that is not a valid envelope; ``errors`` maps field -> messages."""

    def __init__(self, errors: dict):
        self.errors = errors
        super().__init__("invalid envelope: " + json.dumps(errors, ensure_ascii=False))


class EnvelopeSchema(Schema):
    """The CloudEvents attributes Liandong requires. Unknown attributes are kept."""

    class Meta:
        unknown = INCLUDE

    specversion = fields.String(required=True, validate=validate.Equal(SPECVERSION))
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    source = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.Regexp(
        TYPE_RE, error="must look like 'kind.event.vN'"))
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    time = fields.AwareDateTime(required=True, format="iso")
    datacontenttype = fields.String(load_default="application/json")
    dataschema = fields.String(required=True)
    data = fields.Dict(required=True)
    sequence = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    actor = fields.String(load_default=None, allow_none=True)
    actorrole = fields.String(load_default=None, allow_none=True)
    actorunit = fields.String(load_default=None, allow_none=True)


_schema = EnvelopeSchema()


def event_name(event_type: str) -> str:
    """'criminal_referral.filed.v1' -> 'criminal_referral.filed'."""
    return event_type.rsplit(".", 1)[0]


def dataschema_for(event_type: str) -> str:
    return f"{DATASCHEMA_BASE}{event_type}.json"


def make_envelope(*, event_type: str, source: str, subject: str, data: dict, sequence: int,
                  actor=None, time: datetime | None = None, event_id: str | None = None) -> dict:
    """Build an envelope dict; ``actor`` is an ``shared.auth.Actor`` or None (system)."""
    env = {
        "specversion": SPECVERSION,
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "subject": subject,
        "time": (time or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(),
        "datacontenttype": "application/json",
        "dataschema": dataschema_for(event_type),
        "data": data,
        "sequence": sequence,
        "actor": getattr(actor, "user_id", None),
        "actorrole": getattr(actor, "role", None),
        "actorunit": getattr(actor, "unit", None),
    }
    errors = _built_errors(env)
    if errors:
        raise EnvelopeError(errors)
    return env


def _built_errors(env: dict) -> dict:
    """``EnvelopeSchema``'s rules for the fields a producer's arguments set; the others
    (specversion, time, dataschema, ...) are right by construction. A producer's own
    envelope is not loaded through marshmallow again (issue 16: a tenth of the cost);
    consumers still load every envelope they receive with the full schema."""
    errors: dict[str, list[str]] = {}
    for field in ("id", "source", "subject"):
        value = env[field]
        if not isinstance(value, str) or not 1 <= len(value) <= 200:
            errors[field] = ["Length must be between 1 and 200."]
    if not isinstance(env["type"], str) or not TYPE_RE.match(env["type"]):
        errors["type"] = ["must look like 'kind.event.vN'"]
    if not isinstance(env["data"], dict):
        errors["data"] = ["Not a valid mapping type."]
    sequence = env["sequence"]
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        errors["sequence"] = ["Must be greater than or equal to 1."]
    for field in ("actor", "actorrole", "actorunit"):
        if env[field] is not None and not isinstance(env[field], str):
            errors[field] = ["Not a valid string."]
    return errors


def encode(envelope: dict) -> bytes:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode(body, verify=None) -> dict:
    """Parse and validate a message body; raise EnvelopeError naming the bad field.
    ``verify(raw_dict)`` (e.g. the signature check) sees the body exactly as sent."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvelopeError({"_body": [f"not UTF-8: {exc}"]}) from None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise EnvelopeError({"_body": [f"not JSON: {exc.msg} at char {exc.pos}"]}) from None
    if not isinstance(body, dict):
        raise EnvelopeError({"_body": ["must be a JSON object"]})
    try:
        loaded = _schema.load(body)
    except ValidationError as exc:
        raise EnvelopeError(exc.messages) from None
    if verify is not None:
        verify(body)
    return {**body, "time": loaded["time"].isoformat(), "sequence": loaded["sequence"]}

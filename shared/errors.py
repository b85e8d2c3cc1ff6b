"""Errors that cross service boundaries with their structure intact.

Each is registered with nameko's ``deserialize_to_instance`` so an RPC caller gets
the same class back (code, message, field errors), not an opaque RemoteError. They
are *permanent*: a bus message that raises one goes to the dead-letter queue at
once instead of being retried.
"""
from __future__ import annotations

from nameko.exceptions import deserialize_to_instance


class Rejected(Exception):
    """Base of permanent, caller-caused errors. ``errors`` maps field -> messages."""

    code = "rejected"
    http_status = 400

    def __init__(self, message: str, errors: dict | None = None, code: str | None = None):
        super().__init__(message, errors or {}, code or self.code)
        self.message = message
        self.errors = errors or {}
        if code:
            self.code = code

    def __str__(self) -> str:
        if self.errors:
            return f"{self.message}: {self.errors}"
        return self.message

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "errors": self.errors}


@deserialize_to_instance
class InvalidInput(Rejected):
    code = "invalid_input"
    http_status = 422


@deserialize_to_instance
class NotAllowed(Rejected):
    code = "forbidden"
    http_status = 403


@deserialize_to_instance
class Unauthenticated(Rejected):
    code = "unauthenticated"
    http_status = 401


@deserialize_to_instance
class InvalidTransition(Rejected):
    code = "invalid_transition"
    http_status = 409


@deserialize_to_instance
class NotFound(Rejected):
    code = "not_found"
    http_status = 404


@deserialize_to_instance
class IdempotencyConflict(Rejected):
    """An idempotency key reused for a different request (shared/idempotency.py)."""
    code = "idempotency_conflict"
    http_status = 409


@deserialize_to_instance
class NotReady(Rejected):
    """The service cannot answer this yet and says what an operator must do first."""
    code = "not_ready"
    http_status = 503


def bounded(value, field: str, low: int, high: int) -> int:
    """An integer parameter within [low, high], or InvalidInput naming the field."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{field} must be an integer", {field: ["integer"]}) from None
    if not low <= number <= high:
        raise InvalidInput(f"{field} is out of range", {field: [f"from {low} to {high}"]})
    return number


def nul_free(value, field: str = "value"):
    """Reject NUL characters anywhere in strings (no database stores them as text)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput("text must not contain NUL characters", {field: ["NUL"]})
    elif isinstance(value, dict):
        for key, item in value.items():
            nul_free(key, field)
            nul_free(item, f"{field}.{key}" if field != "value" else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            nul_free(item, f"{field}.{i}")
    return value

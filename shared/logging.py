"""Structured JSON logging (structlog) that masks personal data before it is written.

One JSON object per line with ``timestamp`` (ISO, UTC), ``level``, ``event``, ``service``
and any bound context. ``mask_personal_data`` runs last before rendering, so ID numbers,
phone numbers and names never reach the log in clear text:

* values under ID-like keys (``id_number``, ``credit_code`` ...): "3303************34";
* values under phone-like keys (``phone``, ``mobile`` ...): "138****5678";
* values under name-like keys (``name``, ``party_name`` ...): "张**";
* in every string (messages, tracebacks, nested values): 18-character mainland ID numbers
  and mobile numbers are found by pattern and masked the same way.

Standard-library logging (nameko, kombu) goes to the same stream at WARNING and above,
rendered and masked by the same processors.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["configure_logging", "get_logger", "mask_personal_data"]

ID_KEYS = frozenset({"id_number", "id_no", "identity_number", "credit_code"})
PHONE_KEYS = frozenset({"phone", "mobile", "telephone", "contact_phone"})
NAME_KEYS = frozenset({
    "name", "party_name", "full_name", "driver_name", "contact_name", "legal_representative",
})

ID_RE = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
MOBILE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")

_MAX_DEPTH = 32
_HANDLER_FLAG = "_liandong_handler"


def _keep_ends(text: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters, star the rest."""
    if len(text) <= head + tail:
        return "*" * len(text)
    return text[:head] + "*" * (len(text) - head - tail) + text[len(text) - tail:]


def mask_id(text: str) -> str:
    """'330302199001011234' -> '3303************34'."""
    return _keep_ends(text, 4, 2)


def mask_phone(text: str) -> str:
    """'13812345678' -> '138****5678'."""
    return _keep_ends(text, 3, 4)


def mask_name(text: str) -> str:
    """'张三丰' -> '张**' (a one-character name becomes '*')."""
    if len(text) <= 1:
        return "*" * len(text)
    return text[0] + "*" * (len(text) - 1)


def mask_text(text: str) -> str:
    """Mask ID numbers and mobile numbers found anywhere in free text."""
    text = ID_RE.sub(lambda m: mask_id(m.group()), text)
    return MOBILE_RE.sub(lambda m: mask_phone(m.group()), text)


def _masker_for(key: object) -> Callable[[str], str] | None:
    if not isinstance(key, str):
        return None
    k = key.lower()
    if k in ID_KEYS:
        return mask_id
    if k in PHONE_KEYS:
        return mask_phone
    if k in NAME_KEYS:
        return mask_name
    return None


def _mask(value: Any, masker: Callable[[str], str] | None = None, depth: int = 0) -> Any:
    """Return a masked copy of ``value``; ``masker`` applies to leaves under a personal key."""
    if value is None:
        return None
    if depth > _MAX_DEPTH:
        return mask_text(repr(value)) if masker is None else masker(repr(value))
    if isinstance(value, Mapping):
        return {k: _mask(v, _masker_for(k) or masker, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_mask(v, masker, depth + 1) for v in value]
        if isinstance(value, list):
            return items
        if isinstance(value, (set, frozenset)):
            return set(items)
        return tuple(items)
    if masker is not None:
        return masker(value if isinstance(value, str) else str(value))
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, (bool, float)):
        return value
    # ints and other objects (rendered with repr() by JSONRenderer): replaced by masked
    # text only when they contain an ID or mobile number, otherwise left as they are.
    text = str(value) if isinstance(value, int) else repr(value)
    masked = mask_text(text)
    return value if masked == text else masked


def mask_personal_data(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    """structlog processor: a copy of ``event_dict`` with personal data masked."""
    return {k: _mask(v, _masker_for(k)) for k, v in event_dict.items()}


def _add_service(service: str) -> Processor:
    def add_service(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def _level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(str(level).upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}")
    return number


def configure_logging(
    service: str, level: str | None = None, stream: IO[str] | None = None
) -> None:
    """Configure structlog (and stdlib logging) to write masked JSON lines to ``stream``.

    ``level`` defaults to $LOG_LEVEL or INFO; ``stream`` defaults to sys.stderr.
    Safe to call more than once: the latest call wins.
    """
    level_no = _level_number(level if level is not None else os.environ.get("LOG_LEVEL", "INFO"))
    stream = stream if stream is not None else sys.stderr

    shared: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
    ]
    tail: list[Processor] = [
        structlog.processors.format_exc_info,
        mask_personal_data,
        structlog.processors.JSONRenderer(ensure_ascii=False),
    ]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(stream)
    setattr(handler, _HANDLER_FLAG, True)
    handler.setLevel(max(level_no, logging.WARNING))
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level_no, logging.WARNING))


def get_logger(**initial: Any) -> Any:
    """A structlog logger with ``initial`` context bound; honours later configure_logging."""
    return structlog.get_logger(**initial)

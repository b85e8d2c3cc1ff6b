"""Trust at the boundaries (issue 23), written once: what any input may be before a
service looks at it, and what any export may contain.

* ``parse_json(text)``: request bodies — JSON only, nested at most ``MAX_DEPTH`` deep, each
  number at most ``MAX_NUMBER_CHARS`` characters and finite (no 5,000-digit integer, no
  ``1e1000000``, no NaN); ``InvalidInput`` naming what is wrong, never a RecursionError.
* ``check_json(value)``: the same bounds on a value already parsed (an RPC payload), and
  its size when written as JSON at most ``MAX_PAYLOAD_BYTES``.
* ``check_year``: a date or time of a case lies in 2000–2099 (a window "ending" in 9999
  is a typing error, not a case).
* ``MAX_YUAN``: the largest amount of money a payload may state.
* ``spreadsheet_cell(value)``: a cell of a CSV/XLSX export that a spreadsheet will not
  run as a formula (``= + - @`` tab and CR at the start are neutralised with a quote).
"""
from __future__ import annotations

import json
import math
from datetime import date
from decimal import Decimal

from shared.errors import InvalidInput

MAX_DEPTH = 16                     # objects/arrays inside each other
MAX_NUMBER_CHARS = 32              # characters of one JSON number
MAX_PAYLOAD_BYTES = 1024 * 1024    # a command's payload, as JSON
YEARS = (2000, 2099)               # the years a date of a case may fall in
MAX_YUAN = Decimal("1000000000000")  # 1e12 yuan: more than any fine or sentence states
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _number(text: str):
    if len(text) > MAX_NUMBER_CHARS:
        raise InvalidInput("a number in the body is too long",
                           {"body": [f"numbers have at most {MAX_NUMBER_CHARS} characters; "
                                     "send a longer value as a string"]})
    return text


def _int(text: str) -> int:
    return int(_number(text))


def _float(text: str) -> float:
    value = float(_number(text))
    if not math.isfinite(value):
        raise InvalidInput("a number in the body is out of range",
                           {"body": [f"{text} is not a finite number"]})
    return value


def _constant(name: str):
    raise InvalidInput("the body is not strict JSON", {"body": [f"{name} is not a JSON value"]})


def depth(value, limit: int = MAX_DEPTH) -> int:
    """How deep containers nest in ``value`` (a scalar: 0); stops counting past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _check_depth(value, field: str) -> None:
    if depth(value) > MAX_DEPTH:
        raise InvalidInput("the body is nested too deeply",
                           {field: [f"objects and arrays nest at most {MAX_DEPTH} deep"]})


def parse_json(text: str, field: str = "body"):
    """A request body as JSON within the bounds above (InvalidInput otherwise)."""
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float,
                           parse_constant=_constant)
    except RecursionError:
        raise InvalidInput("the body is nested too deeply",
                           {field: [f"objects and arrays nest at most {MAX_DEPTH} deep"]}) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput("request body is not JSON", {field: [exc.msg]}) from None
    _check_depth(value, field)
    return value


def check_json(value, field: str = "payload"):
    """A parsed value (e.g. an RPC payload) within the bounds: depth, numbers, size."""
    _check_depth(value, field)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        elif isinstance(item, int):     # bit_length first: str() of a huge int is slow
            if item.bit_length() > 4 * MAX_NUMBER_CHARS or len(str(item)) > MAX_NUMBER_CHARS:
                _number("9" * (MAX_NUMBER_CHARS + 1))
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput("a number is out of range", {field: ["not a finite number"]})
    try:
        size = len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))
    except (TypeError, ValueError):
        raise InvalidInput("the payload is not plain JSON", {field: ["not JSON"]}) from None
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidInput("the payload is too large",
                           {field: [f"at most {MAX_PAYLOAD_BYTES} bytes as JSON"]})
    return value


def year_error(value: date) -> str | None:
    """Why a date/datetime is outside the years a case may fall in, or None."""
    low, high = YEARS
    if not low <= value.year <= high:
        return f"must lie in the years {low}–{high}"
    return None


def spreadsheet_cell(value):
    """``value`` as a spreadsheet cell that is never run as a formula: text starting with
    ``= + - @``, a tab or a carriage return gets a leading apostrophe (OWASP: CSV
    injection). Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value

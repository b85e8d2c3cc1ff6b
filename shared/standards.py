"""Judgment standards (判定标准): rules kept as data in ``contracts/standards/``.

The rules live in YAML so a lawyer can correct them without touching code. This module
loads and checks a rule document, then evaluates a case's facts against it. A matching
rule yields a :class:`Recommendation` naming its legal basis and explaining the arithmetic;
it is advice for the case team and never triggers a transfer by itself.

Condition language (see ``contracts/standards/judgment.yaml``)::

    all: [...] / any: [...]                                 nesting
    {fact: F, equals: V} / {fact: F, in: [...]}             any fact type
    {fact: F, gt|gte|lt|lte: N}                             integer / number facts
    {measure: excess_ratio|excess, actual: F, limit: G, gt|gte|lt|lte|equals: N}
    {rule: R}                                               an earlier rule matches
    N may be {param: P}: a figure declared under ``parameters:`` (with its bounds and
    source; a deployment may override it, see :func:`judgment_rules`).

A fact may be *derived* when it is not given (``derive:`` under the fact: cases tried in
order, the first that definitely holds gives the value; a case whose facts are not given
is passed over, and the explanation says so). Facts that were declared once and
withdrawn are listed under ``retired_facts:`` with what replaced them.

Evaluation is three-valued: a condition whose facts are absent is *unknown*, and a rule
matches only when its conditions are definitely true. Numbers are compared exactly (as
fractions), so 60 passengers on 50 seats is exactly 0.2 over and not "> 0.2".
"""

from __future__ import annotations

import copy
import functools
import json
import math
import operator
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CONTRACTS_DIR",
    "PARAMETERS_ENV",
    "FactError",
    "FactSpec",
    "JudgmentRules",
    "Recommendation",
    "Parameter",
    "Rule",
    "StandardError",
    "judgment_rules",
    "load_standard",
]

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"

FACT_TYPES = ("integer", "number", "boolean", "string", "enum")
NUMERIC_TYPES = ("integer", "number")
ROUTES = ("police", "market_regulation")
MEASURES = ("excess_ratio", "excess")
_SYMBOLS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "equals": "==", "in": "in"}
OPERATORS = tuple(_SYMBOLS)
_ORDERING = ("gt", "gte", "lt", "lte")
_OPERATORS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
              "equals": operator.eq}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class StandardError(ValueError):
    """A standards document is malformed; the message names the rule or fact at fault."""


class FactError(ValueError):
    """Facts given for evaluation are invalid; ``errors`` maps each bad fact to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        detail = "; ".join(f"{name}: {', '.join(msgs)}" for name, msgs in sorted(errors.items()))
        super().__init__(f"invalid facts: {detail}")


# --------------------------------------------------------------------------- loading


@functools.cache
def _read_standard(name: str) -> dict[str, Any]:
    path = CONTRACTS_DIR / "standards" / f"{name}.yaml"
    try:
        with path.open(encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise StandardError(f"{path.name}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise StandardError(f"{path.name}: top level must be a mapping")
    return doc


def load_standard(name: str) -> dict[str, Any]:
    """Return the parsed ``contracts/standards/<name>.yaml`` (cached; each call gets a copy).

    Raises ``FileNotFoundError`` for an unknown name and :class:`StandardError` for a file
    that is not a YAML mapping.
    """
    if not _NAME.match(name):
        raise ValueError(f"bad standard name {name!r}: use lower_snake_case")
    return copy.deepcopy(_read_standard(name))


# --------------------------------------------------------------------------- values


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return False
    return not isinstance(value, (float, Decimal)) or math.isfinite(value)


def _exact(value: float | Decimal) -> Fraction:
    """Exact value of a number; a float counts as the decimal it prints as (0.2 → 1/5)."""
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        return f"{float(value):.4f}".rstrip("0").rstrip(".")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in _ORDERING or (op == "equals" and _is_number(left) and _is_number(right)):
        # two ints compare exactly as they are; anything else as exact fractions. One
        # comparison, not all five (issue 16: this ran on every rule of every draft)
        if type(left) is not int or type(right) is not int:
            left, right = _exact(left), _exact(right)
        return _OPERATORS[op](left, right)
    if op == "equals":
        return left == right
    return any(_compare("equals", left, item) for item in right)  # "in"


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class FactSpec:
    """A measurable fact a rule may use, as declared under ``facts:``."""

    name: str
    type: str
    unit: str | None
    description: str
    description_en: str
    values: tuple[str, ...] | None = None
    minimum: int | float | None = None

    def check(self, value: Any) -> str | None:
        """Return why ``value`` is not a valid value of this fact, or None if it is."""
        if self.type == "boolean":
            return None if isinstance(value, bool) else "must be true or false"
        if self.type == "string":
            return None if isinstance(value, str) else "must be a string"
        if self.type == "enum":
            if isinstance(value, str) and value in (self.values or ()):
                return None
            return f"must be one of {_fmt(self.values or ())}"
        if self.type == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            return "must be an integer"
        if not _is_number(value):
            return "must be a number"
        if self.minimum is not None and _exact(value) < _exact(self.minimum):
            return f"must be at least {_fmt(self.minimum)}"
        return None


_FACT_KEYS = {"type", "unit", "description", "description_en", "values", "minimum", "derive"}


def _check_entry(where: str, name: Any, raw: Any, keys: set[str], texts: tuple[str, ...]):
    """A named entry of the document (a fact, a parameter): a lower_snake_case name, a
    mapping of known keys, and the required texts present."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise StandardError(f"{where}: name must be lower_snake_case")
    if not isinstance(raw, dict):
        raise StandardError(f"{where}: must be a mapping")
    unknown = set(raw) - keys
    if unknown:
        raise StandardError(f"{where}: unknown keys {sorted(unknown)}")
    for key in texts:
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise StandardError(f"{where}: {key} is required")


def json_object(text: str | None, name: str, what: str) -> dict[str, Any]:
    """An environment variable's JSON object (empty when unset); StandardError (a
    ValueError) naming the variable when it is not JSON or not an object of ``what``."""
    if not text or not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StandardError(f"{name} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise StandardError(f"{name} must be a JSON object of {what}")
    return raw


def _parse_fact(name: Any, raw: Any) -> FactSpec:
    where = f"fact {name!r}"
    _check_entry(where, name, raw, _FACT_KEYS, ("description", "description_en"))
    ftype = raw.get("type")
    if ftype not in FACT_TYPES:
        raise StandardError(f"{where}: type must be one of {', '.join(FACT_TYPES)}, not {ftype!r}")
    unit = raw.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise StandardError(f"{where}: unit must be a string or null")
    values = raw.get("values")
    if ftype == "enum":
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) for v in values)
            or len(set(values)) != len(values)
        ):
            raise StandardError(
                f"{where}: an enum needs a non-empty list of distinct string values"
            )
        values = tuple(values)
    elif values is not None:
        raise StandardError(f"{where}: values are only for enum facts")
    minimum = raw.get("minimum")
    if minimum is not None and (ftype not in NUMERIC_TYPES or not _is_number(minimum)):
        raise StandardError(f"{where}: minimum must be a number, on an integer or number fact")
    return FactSpec(name, ftype, unit, raw["description"], raw["description_en"], values, minimum)


# --------------------------------------------------------------------------- parameters

PARAMETERS_ENV = "LIANDONG_JUDGMENT_PARAMETERS"
_PARAMETER_KEYS = {"value", "minimum", "maximum", "unit", "description", "description_en",
                   "source"}


@dataclass(frozen=True)
class Parameter:
    """A figure a rule uses by name (``{param: P}``), with the range the law allows."""

    name: str
    value: int | float
    default: int | float
    minimum: int | float | None
    maximum: int | float | None
    unit: str | None
    description: str
    description_en: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_range(where: str, value: Any, minimum: Any, maximum: Any) -> None:
    if not _is_number(value):
        raise StandardError(f"{where}: value must be a number, not {value!r}")
    if minimum is not None and _exact(value) < _exact(minimum):
        raise StandardError(f"{where}: {_fmt(value)} is below the minimum {_fmt(minimum)}")
    if maximum is not None and _exact(value) > _exact(maximum):
        raise StandardError(f"{where}: {_fmt(value)} is above the maximum {_fmt(maximum)}")


def _parse_parameters(raw: Any, overrides: Mapping[str, Any]) -> dict[str, Parameter]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise StandardError("parameters: must be a mapping")
    out = {}
    for name, spec in raw.items():
        where = f"parameter {name!r}"
        _check_entry(where, name, spec, _PARAMETER_KEYS,
                     ("description", "description_en", "source"))
        for key in ("minimum", "maximum"):
            if spec.get(key) is not None and not _is_number(spec[key]):
                raise StandardError(f"{where}: {key} must be a number")
        _check_range(where, spec.get("value"), spec.get("minimum"), spec.get("maximum"))
        value = spec["value"]
        if name in overrides:
            value = overrides[name]
            _check_range(f"{where} (overridden by {PARAMETERS_ENV})", value,
                         spec.get("minimum"), spec.get("maximum"))
        out[name] = Parameter(name, value, spec["value"], spec.get("minimum"),
                              spec.get("maximum"), spec.get("unit"), spec["description"],
                              spec["description_en"], spec["source"])
    unknown = sorted(set(overrides) - set(out))
    if unknown:
        raise StandardError(f"{PARAMETERS_ENV}: unknown parameter {unknown[0]!r} "
                            f"(declared: {', '.join(sorted(out)) or 'none'})")
    return out


def parameter_overrides(text: str | None) -> dict[str, Any]:
    """Parse a ``LIANDONG_JUDGMENT_PARAMETERS`` value: a JSON object name -> number."""
    return json_object(text, PARAMETERS_ENV, "name -> number")


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class _Outcome:
    value: bool | None  # None: unknown, some needed fact is absent
    explanation: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


class _Known(dict):
    """The facts a rule is evaluated on; ``notes`` says how a derived fact was derived."""

    notes: dict[str, str]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.notes = {}


def _unknown(children: list[_Outcome]) -> _Outcome:
    missing: dict[str, None] = {}
    for child in children:
        if child.value is None:
            missing.update(dict.fromkeys(child.missing))
    return _Outcome(None, missing=tuple(missing))


@dataclass(frozen=True)
class _All:
    children: tuple[Any, ...]

    def evaluate(self, facts: Mapping[str, Any]) -> _Outcome:
        outcomes = [c.evaluate(facts) for c in self.children]
        if any(o.value is False for o in outcomes):
            return _Outcome(False)
        if any(o.value is None for o in outcomes):
            return _unknown(outcomes)
        return _Outcome(True, tuple(line for o in outcomes for line in o.explanation))


@dataclass(frozen=True)
class _Any:
    children: tuple[Any, ...]

    def evaluate(self, facts: Mapping[str, Any]) -> _Outcome:
        outcomes = [c.evaluate(facts) for c in self.children]
        if any(o.value for o in outcomes):
            return _Outcome(
                True, tuple(line for o in outcomes if o.value for line in o.explanation)
            )
        if any(o.value is None for o in outcomes):
            return _unknown(outcomes)
        return _Outcome(False)


def _named(operand: Any, param: str | None) -> str:
    return f"{_fmt(operand)} ({param})" if param else _fmt(operand)


@dataclass(frozen=True)
class _FactTest:
    fact: str
    op: str
    operand: Any
    param: str | None = None   # the operand is this parameter's value

    def evaluate(self, facts: Mapping[str, Any]) -> _Outcome:
        if self.fact not in facts:
            return _Outcome(None, missing=(self.fact,))
        value = facts[self.fact]
        if not _compare(self.op, value, self.operand):
            return _Outcome(False)
        if self.op == "in":
            line = f"{self.fact} = {_fmt(value)}, one of {_fmt(self.operand)}"
        elif self.op == "equals":
            line = f"{self.fact} = {_fmt(value)}"
        else:
            line = (f"{self.fact} = {_fmt(value)} {_SYMBOLS[self.op]} "
                    f"{_named(self.operand, self.param)}")
        note = getattr(facts, "notes", {}).get(self.fact)
        return _Outcome(True, (f"{line} ({note})" if note else line,))


@dataclass(frozen=True)
class _RuleTest:
    """``{rule: R}``: an earlier rule's conditions definitely hold."""

    rule_id: str
    condition: Any

    def evaluate(self, facts: Mapping[str, Any]) -> _Outcome:
        result = self.condition.evaluate(facts)
        if not result.value:
            return result
        return _Outcome(True, tuple(f"{self.rule_id}: {line}" for line in result.explanation))


@dataclass(frozen=True)
class _MeasureTest:
    measure: str
    actual: str
    limit: str
    op: str
    operand: int | float
    param: str | None = None

    def evaluate(self, facts: Mapping[str, Any]) -> _Outcome:
        missing = tuple(f for f in (self.actual, self.limit) if f not in facts)
        if missing:
            return _Outcome(None, missing=missing)
        actual, limit = _exact(facts[self.actual]), _exact(facts[self.limit])
        if self.measure == "excess":
            value = actual - limit
        elif limit > 0:
            value = (actual - limit) / limit
        else:  # a limit of 0 makes the ratio meaningless; load() requires minimum > 0
            return _Outcome(False)
        if not _compare(self.op, value, self.operand):
            return _Outcome(False)
        line = (
            f"{self.measure}({self.actual}={_fmt(facts[self.actual])}, "
            f"{self.limit}={_fmt(facts[self.limit])}) = {_fmt(value)} "
            f"{_SYMBOLS[self.op]} {_named(self.operand, self.param)}"
        )
        return _Outcome(True, (line,))


class _ConditionParser:
    """Turns a rule's ``conditions`` mapping into nodes, checking it against the facts."""

    def __init__(self, rule_id: str, facts: Mapping[str, FactSpec],
                 parameters: Mapping[str, Parameter] | None = None,
                 rules: Mapping[str, Rule] | None = None, what: str = "rule"):
        self.rule_id = rule_id
        self.facts = facts
        self.parameters = parameters or {}
        self.rules = rules or {}
        self.what = what
        self.used: dict[str, None] = {}
        self.has_threshold = False

    def fail(self, path: str, message: str) -> StandardError:
        return StandardError(f"{self.what} {self.rule_id!r}: {path}: {message}")

    def _number(self, operand: Any, where: str, message: str) -> tuple[Any, str | None]:
        """A threshold: a number, or ``{param: P}`` resolved to P's value."""
        if isinstance(operand, dict) and set(operand) == {"param"}:
            name = operand["param"]
            if name not in self.parameters:
                raise self.fail(where, f"parameter {name!r} is not declared under parameters:")
            return self.parameters[name].value, name
        if not _is_number(operand):
            raise self.fail(where, message)
        return operand, None

    def parse(self, node: Any, path: str) -> Any:
        if not isinstance(node, dict):
            raise self.fail(path, "a condition must be a mapping")
        kinds = [k for k in ("all", "any", "fact", "measure", "rule") if k in node]
        if len(kinds) != 1:
            raise self.fail(path, "a condition needs exactly one of all, any, fact, measure, "
                                  "rule")
        kind = kinds[0]
        if kind in ("all", "any"):
            if set(node) != {kind}:
                raise self.fail(
                    path, f"unexpected keys beside {kind}: {sorted(set(node) - {kind})}"
                )
            items = node[kind]
            if not isinstance(items, list) or not items:
                raise self.fail(path, f"{kind} must be a non-empty list")
            children = tuple(self.parse(c, f"{path}.{kind}[{i}]") for i, c in enumerate(items))
            return _All(children) if kind == "all" else _Any(children)
        if kind == "fact":
            return self._fact_test(node, path)
        if kind == "rule":
            return self._rule_test(node, path)
        return self._measure_test(node, path)

    def _rule_test(self, node: dict, path: str) -> _RuleTest:
        if set(node) != {"rule"}:
            raise self.fail(path, f"unexpected keys beside rule: {sorted(set(node) - {'rule'})}")
        name = node["rule"]
        if name not in self.rules:
            raise self.fail(path, f"rule {name!r} must be defined earlier in the document")
        rule = self.rules[name]
        self.used.update(dict.fromkeys(rule.facts_used))
        self.has_threshold = self.has_threshold or rule.has_threshold
        return _RuleTest(name, rule.condition)

    def _operator(self, node: dict, fixed: set[str], path: str) -> tuple[str, Any]:
        rest = [k for k in node if k not in fixed]
        unknown = [k for k in rest if k not in OPERATORS]
        if unknown:
            raise self.fail(
                path, f"unknown operator {unknown[0]!r} (use one of {', '.join(OPERATORS)})"
            )
        if len(rest) != 1:
            raise self.fail(path, f"needs exactly one operator, found {rest or 'none'}")
        return rest[0], node[rest[0]]

    def _declared(self, name: Any, path: str) -> FactSpec:
        if not isinstance(name, str) or name not in self.facts:
            raise self.fail(path, f"fact {name!r} is not declared under facts:")
        self.used[name] = None
        return self.facts[name]

    def _fact_test(self, node: dict, path: str) -> _FactTest:
        spec = self._declared(node["fact"], path)
        op, operand = self._operator(node, {"fact"}, path)
        where = f"{path} ({spec.name} {op})"
        param = None
        if op in _ORDERING:
            if spec.type not in NUMERIC_TYPES:
                raise self.fail(where, f"{op} needs an integer or number fact, not {spec.type}")
            operand, param = self._number(operand, where, f"{op} needs a number, not {operand!r}")
            self.has_threshold = True
        elif op == "in":
            if not isinstance(operand, list) or not operand:
                raise self.fail(where, "in needs a non-empty list")
            for item in operand:
                problem = spec.check(item)
                if problem:
                    raise self.fail(where, f"value {item!r} {problem}")
            operand = tuple(operand)
        else:
            problem = spec.check(operand)
            if problem:
                raise self.fail(where, f"value {operand!r} {problem}")
            if spec.type in NUMERIC_TYPES:
                self.has_threshold = True
        return _FactTest(spec.name, op, operand, param)

    def _measure_test(self, node: dict, path: str) -> _MeasureTest:
        measure = node["measure"]
        if measure not in MEASURES:
            raise self.fail(path, f"unknown measure {measure!r} (use one of {', '.join(MEASURES)})")
        for key in ("actual", "limit"):
            if key not in node:
                raise self.fail(path, f"measure {measure} needs {key}:")
        actual = self._declared(node["actual"], path)
        limit = self._declared(node["limit"], path)
        for spec in (actual, limit):
            if spec.type not in NUMERIC_TYPES:
                raise self.fail(
                    path, f"measure {measure} needs numeric facts, {spec.name} is {spec.type}"
                )
        if measure == "excess_ratio" and (limit.minimum is None or limit.minimum <= 0):
            raise self.fail(path, f"excess_ratio divides by {limit.name}: declare its minimum > 0")
        op, operand = self._operator(node, {"measure", "actual", "limit"}, path)
        message = f"measure {measure} needs gt, gte, lt, lte or equals with a number"
        if op == "in":
            raise self.fail(path, message)
        operand, param = self._number(operand, path, message)
        self.has_threshold = True
        return _MeasureTest(measure, actual.name, limit.name, op, operand, param)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Recommendation:
    """A matched rule: a referral *recommendation* with its basis, never a transfer."""

    rule_id: str
    title: str
    title_en: str
    route: str
    suspected_offence: str
    suspected_offence_en: str
    legal_basis: str
    explanation: list[str]
    threshold_source: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rule:
    """One checked rule from the document."""

    id: str
    title: str
    title_en: str
    applies_to: str
    route: str
    suspected_offence: str
    suspected_offence_en: str
    legal_basis: str
    threshold_source: str | None
    facts_used: tuple[str, ...]
    condition: Any
    has_threshold: bool = False

    def outcome(self, facts: Mapping[str, Any]) -> _Outcome:
        return self.condition.evaluate(facts)


_RULE_KEYS = {
    "id",
    "title",
    "title_en",
    "applies_to",
    "conditions",
    "recommendation",
    "threshold_source",
    "note",
}
_RECOMMENDATION_KEYS = ("route", "suspected_offence", "suspected_offence_en", "legal_basis")


def _parse_rule(raw: Any, index: int, facts: Mapping[str, FactSpec],
                parameters: Mapping[str, Parameter], seen: dict[str, Rule]) -> Rule:
    if not isinstance(raw, dict):
        raise StandardError(f"rules[{index}]: must be a mapping")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _NAME.match(rule_id):
        raise StandardError(f"rules[{index}]: id {rule_id!r} must be lower_snake_case")
    where = f"rule {rule_id!r}"
    if rule_id in seen:
        raise StandardError(f"{where}: duplicate rule id")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise StandardError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("title", "title_en", "applies_to"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise StandardError(f"{where}: {key} is required")
    rec = raw.get("recommendation")
    if not isinstance(rec, dict):
        raise StandardError(f"{where}: recommendation is required")
    for key in _RECOMMENDATION_KEYS:
        if not isinstance(rec.get(key), str) or not rec[key].strip():
            raise StandardError(f"{where}: recommendation.{key} is required")
    unknown = set(rec) - set(_RECOMMENDATION_KEYS)
    if unknown:
        raise StandardError(f"{where}: recommendation has unknown keys {sorted(unknown)}")
    if rec["route"] not in ROUTES:
        raise StandardError(
            f"{where}: recommendation.route must be one of {', '.join(ROUTES)}, "
            f"not {rec['route']!r}"
        )
    if "conditions" not in raw:
        raise StandardError(f"{where}: conditions is required")
    parser = _ConditionParser(rule_id, facts, parameters, seen)
    condition = parser.parse(raw["conditions"], "conditions")
    if "threshold_source" not in raw:
        raise StandardError(
            f"{where}: threshold_source is required (null if the rule has no figure)"
        )
    source = raw["threshold_source"]
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise StandardError(f"{where}: threshold_source must be text or null")
    if source is None and parser.has_threshold:
        raise StandardError(
            f"{where}: threshold_source is null but the rule uses a numeric threshold"
        )
    return Rule(
        id=rule_id,
        title=raw["title"],
        title_en=raw["title_en"],
        applies_to=raw["applies_to"],
        route=rec["route"],
        suspected_offence=rec["suspected_offence"],
        suspected_offence_en=rec["suspected_offence_en"],
        legal_basis=rec["legal_basis"],
        threshold_source=source,
        facts_used=tuple(parser.used),
        condition=condition,
        has_threshold=parser.has_threshold,
    )


@dataclass(frozen=True)
class _Derivation:
    """How a fact is derived when it is not given: ordered (condition, value) cases."""

    fact: str
    cases: tuple[tuple[Any, Any], ...]
    facts_used: tuple[str, ...]

    def derive(self, facts: Mapping[str, Any]) -> tuple[Any, str] | None:
        passed_over: dict[str, None] = {}
        for condition, value in self.cases:
            result = condition.evaluate(facts)
            if result.value:
                note = "derived: " + "; ".join(result.explanation)
                if passed_over:
                    note += f"; not given: {', '.join(passed_over)}"
                return value, note
            if result.value is None:
                passed_over.update(dict.fromkeys(result.missing))
        return None


def _parse_derivation(name: str, raw: Any, facts: Mapping[str, FactSpec]) -> _Derivation:
    spec = facts[name]
    if not isinstance(raw, list) or not raw:
        raise StandardError(f"fact {name!r}: derive must be a non-empty list of cases")
    parser = _ConditionParser(name, facts, what="fact")
    cases = []
    for i, case in enumerate(raw):
        where = f"derive[{i}]"
        if not isinstance(case, dict) or set(case) != {"when", "value"}:
            raise parser.fail(where, "a case is {when: <condition>, value: <value>}")
        problem = spec.check(case["value"])
        if problem:
            raise parser.fail(where, f"value {case['value']!r} {problem}")
        cases.append((parser.parse(case["when"], f"{where}.when"), case["value"]))
    if name in parser.used:
        raise parser.fail("derive", "a fact cannot be derived from itself")
    return _Derivation(name, tuple(cases), tuple(parser.used))


def _parse_retired(raw: Any, facts: Mapping[str, FactSpec]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in raw.items()):
        raise StandardError("retired_facts: must map each retired fact to what replaced it")
    clash = sorted(set(raw) & set(facts))
    if clash:
        raise StandardError(f"retired_facts: {clash[0]!r} is still declared under facts:")
    return dict(raw)


class JudgmentRules:
    """The checked judgment standard: declared facts plus rules, ready to evaluate."""

    def __init__(
        self,
        facts: Mapping[str, FactSpec],
        rules: tuple[Rule, ...],
        *,
        version: int = 1,
        title: str = "",
        note: str = "",
        parameters: Mapping[str, Parameter] | None = None,
        derivations: Mapping[str, _Derivation] | None = None,
        retired: Mapping[str, str] | None = None,
    ):
        self.facts = dict(facts)
        self.rules = rules
        self.version = version
        self.title = title
        self.note = note
        self.parameters = dict(parameters or {})
        self.derivations = dict(derivations or {})
        self.retired = dict(retired or {})

    def form(self) -> dict[str, Any]:
        """The standard as a form: each rule (its title, suspected offence, legal basis)
        with the facts it is evaluated on -- those a derived fact is worked out from
        included -- and each fact's type, unit, values and description. A UI builds its
        case-facts form from this instead of asking for JSON."""
        def inputs(used) -> list[str]:
            out: dict[str, None] = {}
            for name in used:
                out[name] = None
                for source in getattr(self.derivations.get(name), "facts_used", ()):
                    out[source] = None
            return list(out)
        return {
            "rules": [{"id": r.id, "title": r.title, "title_en": r.title_en,
                       "route": r.route, "suspected_offence": r.suspected_offence,
                       "suspected_offence_en": r.suspected_offence_en,
                       "legal_basis": r.legal_basis, "facts": inputs(r.facts_used)}
                      for r in self.rules],
            "facts": {name: {"type": f.type, "unit": f.unit, "description": f.description,
                             "description_en": f.description_en,
                             "values": list(f.values) if f.values else None,
                             "minimum": f.minimum, "derived": name in self.derivations}
                      for name, f in self.facts.items()},
        }

    @classmethod
    def load(cls, doc: Mapping[str, Any] | None = None,
             parameters: Mapping[str, Any] | None = None) -> JudgmentRules:
        """Check and compile ``doc`` (default: ``contracts/standards/judgment.yaml``);
        ``parameters`` overrides declared parameters by name (checked against their range).

        Raises :class:`StandardError` naming the rule (or fact) and the offending part.
        """
        if doc is None:
            doc = load_standard("judgment")
        if not isinstance(doc, Mapping):
            raise StandardError("the standard must be a mapping")
        if doc.get("version") != 1:
            raise StandardError(f"unsupported version {doc.get('version')!r} (expected 1)")
        raw_facts = doc.get("facts")
        if not isinstance(raw_facts, dict) or not raw_facts:
            raise StandardError("facts: must be a non-empty mapping")
        facts = {name: _parse_fact(name, raw) for name, raw in raw_facts.items()}
        derivations = {name: _parse_derivation(name, raw["derive"], facts)
                       for name, raw in raw_facts.items() if "derive" in raw}
        for name, derivation in derivations.items():
            chained = sorted(set(derivation.facts_used) & set(derivations))
            if chained:
                raise StandardError(f"fact {name!r}: derive uses the derived fact "
                                    f"{chained[0]!r}; derive from given facts only")
        params = _parse_parameters(doc.get("parameters"), parameters or {})
        raw_rules = doc.get("rules")
        if not isinstance(raw_rules, list):
            raise StandardError("rules: must be a list")
        seen: dict[str, Rule] = {}
        for i, raw in enumerate(raw_rules):
            rule = _parse_rule(raw, i, facts, params, seen)
            seen[rule.id] = rule
        return cls(
            facts,
            tuple(seen.values()),
            version=doc["version"],
            title=str(doc.get("title") or ""),
            note=str(doc.get("note") or ""),
            parameters=params,
            derivations=derivations,
            retired=_parse_retired(doc.get("retired_facts"), facts),
        )

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (``KeyError`` if none)."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def validate_facts(self, facts: Mapping[str, Any]) -> dict[str, Any]:
        """Return the facts with ``None`` values dropped (None means "not known").

        Raises :class:`FactError` for unknown keys and values of the wrong type.
        """
        errors: dict[str, list[str]] = {}
        known: dict[str, Any] = {}
        for name, value in facts.items():
            spec = self.facts.get(name)
            if spec is None:
                retired = self.retired.get(name)
                errors.setdefault(str(name), []).append(
                    f"retired fact: {retired}" if retired else "unknown fact")
                continue
            if value is None:
                continue
            problem = spec.check(value)
            if problem:
                errors.setdefault(name, []).append(problem)
            else:
                known[name] = value
        if errors:
            raise FactError(errors)
        return known

    def _known(self, facts: Mapping[str, Any]) -> _Known:
        """Valid given facts plus every derivable fact not given (with its note)."""
        known = _Known(self.validate_facts(facts))
        for name, derivation in self.derivations.items():
            if name not in known and (found := derivation.derive(known)) is not None:
                known[name], known.notes[name] = found
        return known

    def evaluate(self, facts: Mapping[str, Any]) -> list[Recommendation]:
        """Recommendations of every rule whose conditions definitely hold, in document order.

        A rule needing an absent fact does not match; see :meth:`missing_facts`.
        """
        known = self._known(facts)
        out = []
        for rule in self.rules:
            result = rule.outcome(known)
            if result.value:
                out.append(
                    Recommendation(
                        rule_id=rule.id,
                        title=rule.title,
                        title_en=rule.title_en,
                        route=rule.route,
                        suspected_offence=rule.suspected_offence,
                        suspected_offence_en=rule.suspected_offence_en,
                        legal_basis=rule.legal_basis,
                        explanation=list(result.explanation),
                        threshold_source=rule.threshold_source,
                    )
                )
        return out

    def missing_facts(self, facts: Mapping[str, Any]) -> dict[str, list[str]]:
        """For each rule still undecided, the absent facts that could decide it (UI hints).

        Rules already matched or already ruled out by the given facts are left out.
        """
        known = self._known(facts)
        out = {}
        for rule in self.rules:
            result = rule.outcome(known)
            if result.value is None:
                out[rule.id] = list(result.missing)
        return out


@functools.cache
def judgment_rules() -> JudgmentRules:
    """The shipped judgment standard, loaded and checked once, with the deployment's
    parameter overrides (``LIANDONG_JUDGMENT_PARAMETERS``, a JSON object such as
    ``{"fraud_relatively_large_yuan": 6000}``; each value must stay in its range)."""
    return JudgmentRules.load(
        parameters=parameter_overrides(os.environ.get(PARAMETERS_ENV)))

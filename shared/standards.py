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

Evaluation is three-valued: a condition whose facts are absent is *unknown*, and a rule
matches only when its conditions are definitely true. Numbers are compared exactly (as
fractions), so 60 passengers on 50 seats is exactly 0.2 over and not "> 0.2".
"""

from __future__ import annotations

import copy
import functools
import math
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
    "FactError",
    "FactSpec",
    "JudgmentRules",
    "Recommendation",
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
        a, b = _exact(left), _exact(right)
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b, "equals": a == b}[op]
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


_FACT_KEYS = {"type", "unit", "description", "description_en", "values", "minimum"}


def _parse_fact(name: Any, raw: Any) -> FactSpec:
    where = f"fact {name!r}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise StandardError(f"{where}: name must be lower_snake_case")
    if not isinstance(raw, dict):
        raise StandardError(f"{where}: must be a mapping")
    unknown = set(raw) - _FACT_KEYS
    if unknown:
        raise StandardError(f"{where}: unknown keys {sorted(unknown)}")
    ftype = raw.get("type")
    if ftype not in FACT_TYPES:
        raise StandardError(f"{where}: type must be one of {', '.join(FACT_TYPES)}, not {ftype!r}")
    for key in ("description", "description_en"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise StandardError(f"{where}: {key} is required")
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


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class _Outcome:
    value: bool | None  # None: unknown, some needed fact is absent
    explanation: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


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


@dataclass(frozen=True)
class _FactTest:
    fact: str
    op: str
    operand: Any

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
            line = f"{self.fact} = {_fmt(value)} {_SYMBOLS[self.op]} {_fmt(self.operand)}"
        return _Outcome(True, (line,))


@dataclass(frozen=True)
class _MeasureTest:
    measure: str
    actual: str
    limit: str
    op: str
    operand: int | float

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
            f"{_SYMBOLS[self.op]} {_fmt(self.operand)}"
        )
        return _Outcome(True, (line,))


class _ConditionParser:
    """Turns a rule's ``conditions`` mapping into nodes, checking it against the facts."""

    def __init__(self, rule_id: str, facts: Mapping[str, FactSpec]):
        self.rule_id = rule_id
        self.facts = facts
        self.used: dict[str, None] = {}
        self.has_threshold = False

    def fail(self, path: str, message: str) -> StandardError:
        return StandardError(f"rule {self.rule_id!r}: {path}: {message}")

    def parse(self, node: Any, path: str) -> Any:
        if not isinstance(node, dict):
            raise self.fail(path, "a condition must be a mapping")
        kinds = [k for k in ("all", "any", "fact", "measure") if k in node]
        if len(kinds) != 1:
            raise self.fail(path, "a condition needs exactly one of all, any, fact, measure")
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
        return self._measure_test(node, path)

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
        if op in _ORDERING:
            if spec.type not in NUMERIC_TYPES:
                raise self.fail(where, f"{op} needs an integer or number fact, not {spec.type}")
            if not _is_number(operand):
                raise self.fail(where, f"{op} needs a number, not {operand!r}")
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
        return _FactTest(spec.name, op, operand)

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
        if op == "in" or not _is_number(operand):
            raise self.fail(
                path, f"measure {measure} needs gt, gte, lt, lte or equals with a number"
            )
        self.has_threshold = True
        return _MeasureTest(measure, actual.name, limit.name, op, operand)


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


def _parse_rule(raw: Any, index: int, facts: Mapping[str, FactSpec], seen: set[str]) -> Rule:
    if not isinstance(raw, dict):
        raise StandardError(f"rules[{index}]: must be a mapping")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _NAME.match(rule_id):
        raise StandardError(f"rules[{index}]: id {rule_id!r} must be lower_snake_case")
    where = f"rule {rule_id!r}"
    if rule_id in seen:
        raise StandardError(f"{where}: duplicate rule id")
    seen.add(rule_id)
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
    parser = _ConditionParser(rule_id, facts)
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
    )


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
    ):
        self.facts = dict(facts)
        self.rules = rules
        self.version = version
        self.title = title
        self.note = note

    @classmethod
    def load(cls, doc: Mapping[str, Any] | None = None) -> JudgmentRules:
        """Check and compile ``doc`` (default: ``contracts/standards/judgment.yaml``).

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
        raw_rules = doc.get("rules")
        if not isinstance(raw_rules, list):
            raise StandardError("rules: must be a list")
        seen: set[str] = set()
        rules = tuple(_parse_rule(raw, i, facts, seen) for i, raw in enumerate(raw_rules))
        return cls(
            facts,
            rules,
            version=doc["version"],
            title=str(doc.get("title") or ""),
            note=str(doc.get("note") or ""),
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
                errors.setdefault(str(name), []).append("unknown fact")
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

    def evaluate(self, facts: Mapping[str, Any]) -> list[Recommendation]:
        """Recommendations of every rule whose conditions definitely hold, in document order.

        A rule needing an absent fact does not match; see :meth:`missing_facts`.
        """
        known = self.validate_facts(facts)
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
        known = self.validate_facts(facts)
        out = {}
        for rule in self.rules:
            result = rule.outcome(known)
            if result.value is None:
                out[rule.id] = list(result.missing)
        return out


@functools.cache
def judgment_rules() -> JudgmentRules:
    """The shipped judgment standard, loaded and checked once."""
    return JudgmentRules.load()

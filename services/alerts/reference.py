"""The kinds of alert as data (contracts/standards/alerts.yaml), checked on load: each
kind's fields become a marshmallow schema, its routing rule picks the county, its
urgency rule and periods give the task's clocks. ``ALERTS_PERIODS`` (JSON,
"kind.urgency.deadline" -> period) and ``ALERTS_DEDUPE_WINDOW`` override the file for
drills and tests. Plain Python.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from marshmallow import ValidationError, fields, missing, validate

from shared.auth import ROLES
from shared.calendar import Period
from shared.errors import InvalidInput, nul_free
from shared.schemas.common import COUNTIES, Base
from shared.standards import (
    FactError,
    StandardError,
    json_object,
    judgment_rules,
    load_standard,
)

PERIODS_ENV = "ALERTS_PERIODS"
WINDOW_ENV = "ALERTS_DEDUPE_WINDOW"
DEADLINES = {"ack": "acknowledgement", "arrive": "arrival", "feedback": "feedback"}
URGENCIES = ("urgent", "normal")
ROUTINGS = ("site", "berth", "position", "county")
CASE_KINDS = ("administrative", "criminal_referral", "market_referral")
PLATE = re.compile(r"^[\u4e00-\u9fa5][A-Z][A-Z0-9\u4e00-\u9fa5]{4,7}$")
MMSI = re.compile(r"^[0-9]{9}$")


@dataclass(frozen=True)
class AlertKind:
    id: str
    title: str
    domain: str
    handler_role: str
    routing: str
    target: tuple[str, ...]
    fields: dict
    urgency: dict
    periods: dict          # urgency -> {ack, arrive, feedback}
    judgment_rules: tuple[str, ...]
    case_kinds: tuple[str, ...]
    facts: tuple = ()      # ({field, fact, values?}, ...): readings as judgment facts


class Reference:
    """The checked alerts standard (``Reference.load()`` for the shipped file)."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.domains: dict = dict(doc["domains"])
        self.handlers: dict = dict(doc["handlers"])
        self.sites: dict = dict(doc.get("sites") or {})
        self.berths: dict = dict(doc.get("berths") or {})
        self.seats: dict = {c: tuple(v) for c, v in (doc.get("county_seats") or {}).items()}
        self.window = Period.parse(str(doc["dedupe_window"]))
        self.city_after = Period.parse(str(doc["escalation"]["city_after"]))
        for domain, h in self.handlers.items():
            if domain not in self.domains or h["role"] not in ROLES:
                raise StandardError(f"alerts.yaml: handler of {domain!r} is not a known "
                                    "domain with a known role")
        for table, name in ((self.sites, "site"), (self.berths, "berth")):
            for code, entry in table.items():
                if entry.get("county") not in COUNTIES:
                    raise StandardError(f"alerts.yaml: {name} {code} names unknown county "
                                        f"{entry.get('county')!r}")
        if set(self.seats) != set(COUNTIES):
            raise StandardError(f"alerts.yaml: county_seats must be exactly {sorted(COUNTIES)}")
        self.kinds: dict[str, AlertKind] = {}
        for kind_id, raw in doc["kinds"].items():
            where = f"alerts.yaml: kind {kind_id}"
            if raw["domain"] not in self.domains:
                raise StandardError(f"{where}: unknown domain {raw['domain']!r}")
            if raw["handler_role"] != self.handlers[raw["domain"]]["role"]:
                raise StandardError(f"{where}: handler_role must be the {raw['domain']} "
                                    "handlers' role")
            if raw["routing"] not in ROUTINGS:
                raise StandardError(f"{where}: routing must be one of {ROUTINGS}")
            if set(raw["periods"]) != set(URGENCIES):
                raise StandardError(f"{where}: periods for exactly {URGENCIES}")
            for urgency, periods in raw["periods"].items():
                if set(periods) != set(DEADLINES):
                    raise StandardError(f"{where}: {urgency} periods must be {sorted(DEADLINES)}")
                for text in periods.values():
                    Period.parse(str(text))
            unknown = [t for t in raw["target"] if t not in raw["fields"]]
            if unknown or not raw.get("source"):
                raise StandardError(f"{where}: target fields {unknown} unknown, or no source")
            bad = set(raw.get("case_kinds", [])) - set(CASE_KINDS)
            if bad:
                raise StandardError(f"{where}: unknown case kinds {sorted(bad)}")
            self.kinds[kind_id] = AlertKind(
                id=kind_id, title=raw["title"], domain=raw["domain"],
                handler_role=raw["handler_role"], routing=raw["routing"],
                target=tuple(raw["target"]), fields=dict(raw["fields"]),
                urgency=dict(raw.get("urgency") or {"default": "normal"}),
                periods={u: {k: str(v) for k, v in p.items()} for u, p in raw["periods"].items()},
                judgment_rules=tuple(raw.get("judgment_rules") or ()),
                case_kinds=tuple(raw.get("case_kinds") or ("administrative",)),
                facts=tuple(raw.get("facts") or ()))
            rules = judgment_rules()
            unknown_rules = set(raw.get("judgment_rules") or ()) - {r.id for r in rules.rules}
            unknown_facts = {f["fact"] for f in raw.get("facts") or ()} - set(rules.facts)
            bad_fields = {f["field"] for f in raw.get("facts") or ()} - set(raw["fields"])
            if unknown_rules or unknown_facts or bad_fields:
                raise StandardError(f"{where}: unknown judgment rules {sorted(unknown_rules)}, "
                                    f"facts {sorted(unknown_facts)} or fields "
                                    f"{sorted(bad_fields)}")
            alert_schema(self, kind_id)   # every field type is known

    @classmethod
    @cache
    def load(cls) -> Reference:
        return cls(load_standard("alerts"))

    def kind(self, kind_id) -> AlertKind:
        if kind_id not in self.kinds:
            raise InvalidInput(f"unknown kind of alert {kind_id!r}",
                               {"kind": [f"one of: {', '.join(self.kinds)}"]})
        return self.kinds[kind_id]

    def handler_unit(self, domain: str, county: str) -> tuple[str, str]:
        h = self.handlers[domain]
        return h["role"], h["unit"].format(county=county)

    def to_dict(self) -> dict:
        return {"kinds": {k: {**v.__dict__, "target": list(v.target),
                              "judgment_rules": list(v.judgment_rules),
                              "case_kinds": list(v.case_kinds)}
                          for k, v in self.kinds.items()},
                "domains": self.domains, "sites": self.sites, "berths": self.berths,
                "dedupe_window": str(window()), "periods": periods()}


def reference() -> Reference:
    return Reference.load()


# --------------------------------------------------------------------------- schemas

def _field(spec: dict, ref: Reference):
    kw = {"required": bool(spec.get("required"))}
    if not kw["required"]:
        kw.update(load_default=None, allow_none=True)
    t = spec["type"]
    if t == "text":
        return fields.String(validate=validate.Length(min=1, max=2000), **kw)
    if t == "plate":
        return fields.String(validate=validate.Regexp(
            PLATE, error="not a plate number (e.g. 浙C12345)"), **kw)
    if t == "mmsi":
        return fields.String(validate=validate.Regexp(MMSI, error="MMSI is 9 digits"), **kw)
    if t == "number":
        return fields.Float(allow_nan=False, **kw)
    if t == "choice":
        return fields.String(validate=validate.OneOf(spec["choices"]), **kw)
    if t == "county":
        return fields.String(validate=validate.OneOf(list(COUNTIES)), **kw)
    if t == "site":
        return fields.String(validate=validate.OneOf(list(ref.sites)), **kw)
    if t == "berth":
        return fields.String(validate=validate.OneOf(list(ref.berths)), **kw)
    raise StandardError(f"alerts.yaml: unknown field type {t!r}")


_SCHEMAS: dict = {}


def alert_schema(ref: Reference, kind_id: str) -> Base:
    """The marshmallow schema of one kind: the envelope fields every alert has (its
    source id, kind, when observed, an optional urgency) plus the kind's own."""
    key = (id(ref), kind_id)
    if key not in _SCHEMAS:
        own = {name: _field(spec, ref) for name, spec in ref.kinds[kind_id].fields.items()}
        common = {
            "alert_id": fields.String(required=True, validate=validate.Length(min=1, max=120)),
            "kind": fields.String(required=True),
            "observed_at": fields.AwareDateTime(load_default=None, allow_none=True,
                                                format="iso"),
            "urgency": fields.String(load_default=None, allow_none=True,
                                     validate=validate.OneOf(URGENCIES)),
        }
        _SCHEMAS[key] = Base.from_dict({**own, **common}, name=f"Alert_{kind_id}")()
    return _SCHEMAS[key]


# A storm is one reading repeated under new message ids: the alerts already found valid,
# keyed by everything but their ``alert_id`` (checked on its own), are not loaded again.
_VALID: OrderedDict = OrderedDict()
VALID_CACHE = 4096


def validate_alert(alert, ref: Reference | None = None) -> dict:
    """Load an alert with its kind's schema as plain JSON values; InvalidInput (422)
    naming each bad field."""
    ref = ref or reference()
    if not isinstance(alert, dict):
        raise InvalidInput("an alert is a JSON object", {"alert": ["object"]})
    nul_free(alert, "alert")
    kind = ref.kind(alert.get("kind"))
    schema = alert_schema(ref, kind.id)
    try:
        key = (id(ref), json.dumps({k: v for k, v in alert.items() if k != "alert_id"},
                                   sort_keys=True))
    except (TypeError, ValueError):
        key = None
    known = _VALID.get(key) if key else None
    if known is not None:
        try:
            alert_id = schema.fields["alert_id"].deserialize(alert.get("alert_id", missing))
        except ValidationError as exc:
            raise InvalidInput(f"alert of kind {kind.id} fails its schema",
                               {"alert_id": exc.messages}) from None
        return {**known, "alert_id": alert_id}
    try:
        data = schema.load(alert)
    except ValidationError as exc:
        raise InvalidInput(f"alert of kind {kind.id} fails its schema", exc.messages) from None
    if data.get("observed_at"):
        data["observed_at"] = data["observed_at"].isoformat()
    if key:
        _VALID[key] = {k: v for k, v in data.items() if k != "alert_id"}
        if len(_VALID) > VALID_CACHE:
            _VALID.popitem(last=False)
    return data


def facts_of(data: dict, ref: Reference | None = None) -> dict:
    """The alert's readings as judgment facts (the kind's ``facts`` mapping)."""
    kind = (ref or reference()).kinds[data["kind"]]
    facts = {}
    for m in kind.facts:
        value = data.get(m["field"])
        if value is not None:
            value = m["values"].get(value) if "values" in m else value
        if value is not None:
            facts[m["fact"]] = value
    return facts


def recommendations(data: dict, ref: Reference | None = None) -> list[dict]:
    """The kind's judgment rules the alert's facts already meet (a recommendation for
    the team, never automatic)."""
    kind = (ref or reference()).kinds[data["kind"]]
    facts = facts_of(data, ref)
    if not facts:
        return []
    try:
        found = judgment_rules().evaluate(facts)
    except FactError:
        return []        # a reading outside a fact's range decides nothing
    return [{k: r.to_dict()[k] for k in ("rule_id", "title", "route", "suspected_offence",
                                         "legal_basis")}
            for r in found if r.rule_id in kind.judgment_rules]


# --------------------------------------------------------------------------- routing

def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6371 * math.asin(math.sqrt(h))


def route(data: dict, ref: Reference | None = None) -> dict:
    """Where an alert goes: {county, place, handler_role, handler_unit, routing}."""
    ref = ref or reference()
    kind = ref.kinds[data["kind"]]
    place = None
    if kind.routing == "site":
        place = {"site": data["site"], **ref.sites[data["site"]]}
        county = place["county"]
    elif kind.routing == "berth":
        place = {"berth": data["berth"], **ref.berths[data["berth"]]}
        county = place["county"]
    elif kind.routing == "position":
        county = data.get("county") or min(
            ref.seats, key=lambda c: _distance(ref.seats[c], (data["lat"], data["lon"])))
        place = {"lat": data["lat"], "lon": data["lon"]}
    else:
        county = data["county"]
        place = {"place": data.get("place")}
    role, unit = ref.handler_unit(kind.domain, county)
    return {"county": county, "place": place, "handler_role": role, "handler_unit": unit,
            "routing": kind.routing}


def urgency(data: dict, ref: Reference | None = None) -> str:
    """The source's own urgency, else the kind's rule (a field at least a value), else
    the kind's default."""
    if data.get("urgency"):
        return data["urgency"]
    rule = (ref or reference()).kinds[data["kind"]].urgency
    when = rule.get("urgent_when")
    if when and (data.get(when["field"]) or 0) >= when["at_least"]:
        return "urgent"
    return rule.get("default", "normal")


def target_key(data: dict, ref: Reference | None = None) -> str:
    """The de-duplication key: kind and the fields naming the vehicle/vessel."""
    kind = (ref or reference()).kinds[data["kind"]]
    return "|".join([kind.id] + [str(data.get(f) or "") for f in kind.target])


# --------------------------------------------------------------------------- periods

def parse_overrides(text: str | None, ref: Reference | None = None) -> dict[str, str]:
    raw = json_object(text, PERIODS_ENV, '"kind.urgency.deadline" -> period')
    ref = ref or reference()
    known = {f"{k}.{u}.{d}" for k in ref.kinds for u in URGENCIES for d in DEADLINES}
    for key, value in raw.items():
        if key not in known:
            raise StandardError(f"{PERIODS_ENV}: unknown period {key!r}; e.g. "
                                "'overlimit_wim.normal.ack'")
        try:
            Period.parse(str(value))
        except ValueError as exc:
            raise StandardError(f"{PERIODS_ENV}: {key}: {exc}") from None
    return {k: str(v) for k, v in raw.items()}


@cache
def _overrides() -> dict[str, str]:
    return parse_overrides(os.environ.get(PERIODS_ENV))


def periods() -> dict[str, str]:
    """Every period in force, "kind.urgency.deadline" -> period."""
    ref = reference()
    found = {f"{k.id}.{u}.{d}": p for k in ref.kinds.values()
             for u, ps in k.periods.items() for d, p in ps.items()}
    return {**found, **_overrides()}


def period(kind: str, urgency_: str, deadline: str) -> str:
    return periods()[f"{kind}.{urgency_}.{deadline}"]


@cache
def window() -> Period:
    text = os.environ.get(WINDOW_ENV)
    if text:
        try:
            return Period.parse(text)
        except ValueError as exc:
            raise StandardError(f"{WINDOW_ENV}: {exc}") from None
    return reference().window


def as_timedelta(p: Period) -> timedelta:
    if p.unit == "minutes":
        return timedelta(minutes=p.amount)
    if p.unit == "hours":
        return timedelta(hours=p.amount)
    if p.unit == "days":
        return timedelta(days=p.amount)
    raise StandardError(f"{p} must be minutes, hours or days here")


def clear_caches() -> None:
    _overrides.cache_clear()
    window.cache_clear()

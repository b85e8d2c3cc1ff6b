"""Reference data of the command service, from contracts/command/centres.yaml: the city
centre, the 12 county centres and their neighbours, partner agencies and their units,
the domains of joint actions — checked on load — plus the procedure periods (kept in the
standards) with the ``COMMAND_PERIODS`` override for drills and tests. Plain Python.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from shared import units
from shared.auth import ROLES
from shared.calendar import Period
from shared.schemas.command import centres_document
from shared.schemas.common import COUNTIES
from shared.standards import StandardError, json_object, load_standard


@dataclass(frozen=True)
class Unit:
    """A party to joint actions: a command centre or a partner agency's unit."""

    id: str
    name: str
    type: str            # city_centre | county_centre | agency
    role: str            # the role its users sign in with (shared/auth.py)
    county: str | None   # the county it serves; None = city-level
    agency: str          # command | police | market_regulation | port_shipping | enforcement
    # the centres that may dispatch a joint action to it (agencies only):
    # city_centre, county_centre (only to units serving its own county)
    dispatched_by: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "type": self.type, "role": self.role,
                "county": self.county, "agency": self.agency,
                "dispatched_by": list(self.dispatched_by)}


class Reference:
    """The checked reference data (``Reference.load()`` for the shipped file)."""

    def __init__(self, doc: dict):
        self.doc = doc
        city = doc["city_centre"]
        self.city = Unit(city["id"], city["name"], "city_centre", city.get("role",
                         "city_command"), None, "command")
        self.units: dict[str, Unit] = {self.city.id: self.city}
        self.county_centres: dict[str, Unit] = {}
        self.neighbours: dict[str, frozenset[str]] = {}
        centres = doc["county_centres"]
        if set(centres) != set(COUNTIES):
            raise StandardError(f"centres.yaml: county_centres must be exactly {sorted(COUNTIES)}")
        for code, raw in centres.items():
            unit = Unit(raw["id"], raw["name"], "county_centre", "county_command", code,
                        "command")
            self._add(unit)
            self.county_centres[code] = unit
            neighbours = frozenset(raw.get("neighbours") or [])
            unknown = neighbours - set(COUNTIES)
            if unknown or code in neighbours:
                raise StandardError(f"centres.yaml: {code} neighbours {sorted(neighbours)} "
                                    "must be other known counties")
            self.neighbours[code] = neighbours
        for code, others in self.neighbours.items():
            for other in others:
                if code not in self.neighbours[other]:
                    raise StandardError(f"centres.yaml: {code} lists {other} as a neighbour "
                                        f"but {other} does not list {code}")
        for agency, raw in doc["agencies"].items():
            if raw["role"] not in ROLES:
                raise StandardError(f"centres.yaml: agency {agency} has unknown role "
                                    f"{raw['role']!r}")
            dispatched_by = tuple(raw.get("dispatched_by") or ())
            if not dispatched_by or set(dispatched_by) - set(DISPATCHERS):
                raise StandardError(f"centres.yaml: agency {agency} dispatched_by "
                                    f"{list(dispatched_by)} must name some of {DISPATCHERS}")
            for u in _agency_units(agency, raw):
                if u.get("county") is not None and u["county"] not in COUNTIES:
                    raise StandardError(f"centres.yaml: unit {u['id']} names unknown county "
                                        f"{u['county']!r}")
                self._add(Unit(u["id"], u["name"], "agency", raw["role"], u.get("county"),
                               agency, dispatched_by))
        self.domains: dict[str, dict] = dict(doc["domains"])
        self.rank_by: list[dict] = list(doc.get("assessment", {}).get("rank_by", []))

    def _add(self, unit: Unit) -> None:
        if unit.id in self.units:
            raise StandardError(f"centres.yaml: unit id {unit.id!r} used twice")
        self.units[unit.id] = unit

    @classmethod
    @cache
    def load(cls) -> Reference:
        return cls(centres_document())

    # ------------------------------------------------------------------ queries
    def unit(self, unit_id: str) -> Unit | None:
        return self.units.get(unit_id)

    def centre_of(self, county: str) -> Unit:
        return self.county_centres[county]

    def are_neighbours(self, a: str, b: str) -> bool:
        return b in self.neighbours.get(a, ())

    def may_dispatch(self, dispatcher: Unit, unit: Unit) -> bool:
        """Whether ``dispatcher`` (a centre) may dispatch a joint action to ``unit``, by
        the agencies' ``dispatched_by`` (a county centre: units serving its county only;
        the city centre also to the county centres)."""
        if dispatcher.type == "city_centre" and unit.type == "county_centre":
            return True
        return (unit.type == "agency" and dispatcher.type in unit.dispatched_by
                and (dispatcher.type == "city_centre" or unit.county == dispatcher.county))

    def to_dict(self) -> dict:
        return {"city_centre": self.city.to_dict(),
                "county_centres": {c: {**u.to_dict(), "neighbours": sorted(self.neighbours[c])}
                                   for c, u in self.county_centres.items()},
                "agencies": [u.to_dict() for u in self.units.values() if u.type == "agency"],
                "domains": self.domains, "periods": periods()}


DISPATCHERS = ("city_centre", "county_centre")


def _agency_units(agency: str, raw: dict) -> list[dict]:
    """An agency's units: listed, or every unit of ``units_of_kind`` in contracts/units.yaml."""
    if "units_of_kind" not in raw:
        return list(raw["units"])
    found = [u.to_dict() for u in units.load().by_id.values() if u.kind == raw["units_of_kind"]]
    if not found or any(u["role"] != raw["role"] for u in found):
        raise StandardError(f"centres.yaml: agency {agency}: units.yaml has no unit of kind "
                            f"{raw['units_of_kind']!r} with role {raw['role']!r}")
    return found


def reference() -> Reference:
    return Reference.load()


# --------------------------------------------------------------------------- periods

PERIODS_ENV = "COMMAND_PERIODS"


def _standard_periods() -> dict[str, str]:
    """"kind.deadline" (and "kind.deadline.variant") -> period, from the standards."""
    out = {}
    for kind in ("joint_action", "assistance_request"):
        for deadline_id, rule in load_standard(kind).get("deadlines", {}).items():
            out[f"{kind}.{deadline_id}"] = str(rule["period"])
            for variant, period in (rule.get("variants") or {}).items():
                out[f"{kind}.{deadline_id}.{variant}"] = str(period)
    return out


def parse_overrides(text: str | None) -> dict[str, str]:
    """Check a COMMAND_PERIODS value: a JSON object of known keys to valid periods."""
    raw = json_object(text, PERIODS_ENV, "period key -> period")
    known = _standard_periods()
    for key, value in raw.items():
        if key not in known:
            raise ValueError(f"{PERIODS_ENV}: unknown period {key!r}; one of {sorted(known)}")
        Period.parse(str(value))  # raises naming the bad text
    return {k: str(v) for k, v in raw.items()}


@cache
def _overrides() -> dict[str, str]:
    return parse_overrides(os.environ.get(PERIODS_ENV))


def periods() -> dict[str, str]:
    """Every period in force: the standards' defaults with any override applied."""
    return {**_standard_periods(), **_overrides()}


def period(kind: str, deadline_id: str, variant: str | None = None) -> str:
    """The period of one deadline (a variant such as "urgent" falls back to the base)."""
    found = periods()
    if variant and f"{kind}.{deadline_id}.{variant}" in found:
        return found[f"{kind}.{deadline_id}.{variant}"]
    return found[f"{kind}.{deadline_id}"]


def clear_caches() -> None:
    """Forget the cached override (tests that change COMMAND_PERIODS)."""
    _overrides.cache_clear()

"""The reference table of units (contracts/units.yaml): which units exist, what kind
each is, which county it serves — and the two checks every service makes with it:

* ``acting_unit(actor)``: the unit a token names exists, is of the kind the token's role
  acts for and lies in the token's county (``NotAllowed``, 403, otherwise);
* ``check_serves(actor, county)``: what a unit files belongs to a county it serves (a
  city-level unit serves every county; ``NotAllowed`` otherwise);
* ``check_named(field, unit_id, kinds)``: a unit named in a payload exists and is of one
  of the kinds the step requires (``InvalidInput``, 422, naming the field otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import yaml

from shared.auth import ROLES, Actor
from shared.errors import InvalidInput, NotAllowed
from shared.schemas.common import COUNTIES
from shared.standards import CONTRACTS_DIR

PATH = CONTRACTS_DIR / "units.yaml"


class UnitsError(ValueError):
    """contracts/units.yaml is inconsistent (raised on load, naming the entry)."""


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    kind: str
    role: str
    county: str | None      # None: a city-level unit, serving every county

    def serves(self, county: str | None) -> bool:
        return self.county is None or self.county == county

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "kind": self.kind, "role": self.role,
                "county": self.county}


@dataclass(frozen=True)
class Units:
    kinds: dict[str, dict]
    by_id: dict[str, Unit]

    def get(self, unit_id) -> Unit | None:
        return self.by_id.get(unit_id) if isinstance(unit_id, str) else None

    def to_list(self) -> list[dict]:
        return [u.to_dict() for u in self.by_id.values()]


def parse(doc: dict) -> Units:
    """Check and index a units document (UnitsError naming the bad entry)."""
    kinds = doc.get("kinds") or {}
    for kind, spec in kinds.items():
        if spec.get("role") not in ROLES:
            raise UnitsError(f"units.yaml: kind {kind} has unknown role {spec.get('role')!r}")
    by_id: dict[str, Unit] = {}
    for raw in doc.get("units") or []:
        uid, kind, county = raw.get("id"), raw.get("kind"), raw.get("county")
        if not uid or uid in by_id:
            raise UnitsError(f"units.yaml: unit id {uid!r} missing or used twice")
        if kind not in kinds:
            raise UnitsError(f"units.yaml: unit {uid} has unknown kind {kind!r}")
        if county is not None and county not in COUNTIES:
            raise UnitsError(f"units.yaml: unit {uid} names unknown county {county!r}")
        by_id[uid] = Unit(uid, str(raw.get("name") or uid), kind, kinds[kind]["role"], county)
    return Units(kinds, by_id)


@cache
def load() -> Units:
    return parse(yaml.safe_load(PATH.read_text("utf-8")))


def get(unit_id) -> Unit | None:
    return load().get(unit_id)


def kind(unit_id) -> str | None:
    unit = get(unit_id)
    return unit.kind if unit else None


def county(unit_id) -> str | None:
    unit = get(unit_id)
    return unit.county if unit else None


def acting_unit(actor: Actor) -> Unit | None:
    """The unit ``actor`` acts for, checked against its token: it exists, its users sign
    in with the actor's role, and it lies in the actor's county. None for the system."""
    if actor.role in ("system", "alert_source"):   # a service or an alert source: no unit
        return None
    unit = get(actor.unit)
    if unit is None:
        raise NotAllowed(f"unit {actor.unit!r} of your token is not a known unit",
                         {"unit": ["not in the reference table of units (contracts/units.yaml)"]})
    if unit.role != actor.role:
        raise NotAllowed(f"role {actor.role!r} does not act for {unit.id} ({unit.name})",
                         {"role": [f"{unit.id} is a {unit.kind} unit; its users act as "
                                   f"{unit.role}"]})
    if unit.county is not None and actor.county not in (None, unit.county):
        raise NotAllowed(f"{unit.id} is in {unit.county}, not {actor.county}",
                         {"county": [f"{unit.id} serves {unit.county}"]})
    return unit


def check_serves(actor: Actor, county: str | None, field: str = "county") -> Unit | None:
    """``actor``'s unit (acting_unit) serves ``county``: a unit files only for its own
    county (a city-level unit for any). NotAllowed (403) naming ``field`` otherwise."""
    unit = acting_unit(actor)
    if unit is None:
        return None
    home = unit.county or actor.county
    if home is not None and county != home:
        raise NotAllowed(
            f"{unit.id} ({unit.name}) may not file for {county!r}: it serves {home}",
            {field: [f"must be {home}, the county of your unit; a case of another county "
                     "is filed by that county's unit"]})
    return unit


def check_named(field: str, unit_id, kinds: tuple[str, ...] | str, *,
                not_unit: str | None = None, county: str | None = None) -> Unit:
    """A unit named in a payload: it exists, is of one of ``kinds``, is not ``not_unit``
    (e.g. the sender itself) and, given a ``county``, serves it. InvalidInput (422)
    naming ``field`` otherwise."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    wanted = " or ".join(kinds)
    unit = get(unit_id)
    if unit is None:
        raise InvalidInput(f"{field}: unknown unit {unit_id!r}",
                           {field: [f"unknown unit {unit_id!r}: name a {wanted} unit of "
                                    "the reference table (GET /api/v1/units)"]})
    if unit.kind not in kinds:
        raise InvalidInput(f"{field}: {unit.id} is not a {wanted} unit",
                           {field: [f"{unit.id} ({unit.name}) is a {unit.kind} unit; this "
                                    f"step needs a {wanted} unit"]})
    if not_unit is not None and unit.id == not_unit:
        raise InvalidInput(f"{field}: a unit cannot send to itself",
                           {field: [f"{unit.id} is the sender itself"]})
    if county is not None and not unit.serves(county):
        raise InvalidInput(f"{field}: {unit.id} does not serve {county}",
                           {field: [f"{unit.id} ({unit.name}) serves {unit.county}, not "
                                    f"{county}, the county of this case"]})
    return unit

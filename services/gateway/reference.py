"""Reference data the gateway serves to the console: every unit's Chinese name, county
and kind (contracts/units.yaml), so that people read names, not codes."""
from __future__ import annotations

from functools import cache

import yaml

from shared.standards import CONTRACTS_DIR

UNITS_FILE = CONTRACTS_DIR / "units.yaml"


@cache
def units() -> list[dict]:
    with UNITS_FILE.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    return [{"id": uid, "name": u["name"], "county": u.get("county"), "kind": u["kind"]}
            for uid, u in doc["units"].items()]

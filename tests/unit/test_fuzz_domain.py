"""Property-based: thousands of arbitrary payloads and commands against every
procedure's domain end in a result or a clear, structured rejection — never another
exception — and the record a rejected step leaves behind is unchanged."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.market_referral import domain as market
from services.police_handoff import domain as police
from shared.errors import Rejected
from tests.helpers import HEAD, MARKET, POLICE, PROCURATORATE, UNIT, draft_payload

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)
FIELDS = ["case_number", "county", "summary", "parties", "facts", "team", "documents",
          "transfer_report", "reason", "police_unit", "procuratorate_unit", "outcome",
          "filing_number", "materials_returned", "items", "kind", "evidence", "direction"]
payloads = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values,
                           max_size=8)
ACTORS = [UNIT, HEAD, POLICE, PROCURATORATE, MARKET]
SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(payload=payloads, actor=st.sampled_from(ACTORS),
       command=st.sampled_from(sorted(police.procedure().creations) + ["bogus"]))
def test_police_creation_never_crashes(payload, actor, command):
    try:
        rec, _ = police.create(command, actor, payload, T0)
    except Rejected:
        return
    json.dumps(rec)


_base, _ = police.create("draft", UNIT, draft_payload(), T0)


@SETTINGS
@given(payload=payloads | st.just({}), actor=st.sampled_from(ACTORS),
       command=st.sampled_from(sorted(police.procedure().commands)))
def test_police_steps_never_crash_nor_corrupt(payload, actor, command):
    before = copy.deepcopy(_base)
    try:
        rec, step = police.act(_base, command, actor, payload, T0)
        json.dumps(police.event_payload(rec, step))
    except Rejected:
        pass
    assert _base == before


@SETTINGS
@given(payload=payloads, actor=st.sampled_from(ACTORS),
       command=st.sampled_from(sorted(market.procedure().commands)))
def test_market_creation_and_steps_never_crash(payload, actor, command):
    try:
        if command in market.procedure().creations:
            market.create(command, actor, payload, T0)
    except Rejected:
        pass

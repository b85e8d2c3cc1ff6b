"""The tracker applies batches of events in one transaction: whatever the order
the bus delivers them in, however they are cut into batches and however often a copy
comes again, the read model ends as if every event had been applied once, in order."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from services.tracker import store as tr

CONSUMER = "tracker.events"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def event(subject: str, seq: int, state: str = "drafted", **details) -> dict:
    return {"id": f"{subject}-{seq}-{uuid.uuid4().hex[:6]}", "subject": subject,
            "sequence": seq, "type": "criminal_referral.step.v1", "actor": "officer-li",
            "actorrole": "enforcement_unit", "actorunit": "lucheng-team-1",
            "data": {"kind": "criminal_referral", "case_number": f"CASE-{subject}",
                     "county": "lucheng", "owner_unit": "lucheng-team-1",
                     "counterpart_unit": "lucheng-psb" if seq > 1 else None,
                     "state": state, "command": f"step{seq}", "deadline": None,
                     "at": (T0 + timedelta(minutes=seq)).isoformat(), "details": details}}


@pytest.fixture()
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'tracker.db'}")
    tr.metadata.create_all(engine)
    yield engine
    engine.dispose()


def apply(engine, batch) -> dict:
    with Session(engine) as s, s.begin():
        return tr.apply_batch(s, batch, CONSUMER)


def snapshot(engine) -> dict:
    with Session(engine) as s:
        rows = {r.handoff_id: (r.step, r.state, tuple(r.units), r.search, r.created_at)
                for r in s.execute(select(tr.handoffs))}
        steps = sorted((r.handoff_id, r.step, r.event_id) for r in s.execute(
            select(tr.timeline.c.handoff_id, tr.timeline.c.step, tr.timeline.c.event_id)))
        parked = s.execute(select(func.count()).select_from(tr.parked)).scalar()
    return {"rows": rows, "steps": steps, "parked": parked}


def test_one_batch_in_order_and_its_counts(engine):
    a = [event("a", 1), event("a", 2, "transferred", police_unit="lucheng-psb")]
    b = [event("b", 1)]
    assert apply(engine, [a[0], b[0], a[1]]) == {"applied": 3, "duplicate": 0, "stale": 0,
                                                 "parked": 0}
    snap = snapshot(engine)
    assert snap["rows"]["a"][:2] == (2, "transferred")
    assert set(snap["rows"]["a"][2]) == {"lucheng-team-1", "lucheng-psb"}
    assert [s[:2] for s in snap["steps"]] == [("a", 1), ("a", 2), ("b", 1)]


def test_gap_is_parked_then_filled_by_a_later_batch(engine):
    e1, e2, e3 = event("c", 1), event("c", 2), event("c", 3)
    assert apply(engine, [e3, e2])["parked"] == 2
    assert snapshot(engine)["rows"] == {} and snapshot(engine)["parked"] == 2
    assert apply(engine, [e1])["applied"] == 1
    snap = snapshot(engine)
    assert snap["rows"]["c"][0] == 3 and snap["parked"] == 0
    assert apply(engine, [e2, e1, e3])["duplicate"] == 3     # redelivered copies


def test_stale_and_duplicate_in_one_batch(engine):
    e1 = event("d", 1)
    apply(engine, [e1])
    copy = {**event("d", 1), "id": "other-id-same-step"}   # a second event for step 1
    assert apply(engine, [e1, copy, copy]) == {"applied": 0, "duplicate": 2, "stale": 1,
                                               "parked": 0}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_any_batches_any_copies_end_in_the_same_state(tmp_path_factory, data):
    lengths = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4), label="steps")
    events = [event(f"s{i}", seq) for i, n in enumerate(lengths) for seq in range(1, n + 1)]
    delivered = data.draw(st.permutations(events), label="order")
    delivered += data.draw(st.lists(st.sampled_from(events), max_size=4), label="copies")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(delivered) - 1))),
                            label="cuts"))
    bounds = zip([0, *cuts], [*cuts, len(delivered)], strict=True)
    batches = [delivered[i:j] for i, j in bounds if i < j]

    def run(batch_list):
        engine = create_engine(
            f"sqlite:///{tmp_path_factory.mktemp('t') / 'tracker.db'}")
        tr.metadata.create_all(engine)
        try:
            for batch in batch_list:
                apply(engine, batch)
            return snapshot(engine)
        finally:
            engine.dispose()
    expected = run([[e] for e in events])          # one at a time, in order
    assert run(batches) == expected
    assert expected["parked"] == 0
    assert len(expected["steps"]) == len(events)

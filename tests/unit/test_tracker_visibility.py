"""The board filters in SQL what ``domain.can_view`` allows, so a page of the board is
a page of what the caller may see. The two must agree on every row and actor."""
from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, delete, insert, select
from sqlalchemy.orm import Session

from services.tracker import domain
from services.tracker import store as tr
from shared.auth import ROLES, Actor

KINDS = ["criminal_referral", "market_referral", "joint_action", "assistance_request"]
COUNTIES = ["lucheng", "ouhai", "taishun"]
UNITS = ["lucheng-team-1", "lucheng-psb", "ouhai-command", "lucheng-command", "wenzhou-amr"]
T = datetime(2026, 3, 2, tzinfo=UTC)

rows_strategy = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(COUNTIES),
                                   st.sets(st.sampled_from(UNITS), max_size=3)),
                         min_size=1, max_size=12)
actors = st.builds(Actor, st.just("u"), st.sampled_from(sorted(ROLES)),
                   st.sampled_from([*UNITS, "elsewhere"]),
                   st.sampled_from([*COUNTIES, None]))

ENGINE = create_engine("sqlite://")
tr.metadata.create_all(ENGINE)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, actor_list=st.lists(actors, min_size=1, max_size=6))
def test_sql_filter_equals_can_view(rows, actor_list):
    with Session(ENGINE) as s, s.begin():
        for table in (tr.handoff_units, tr.handoffs):
            s.execute(delete(table))
        for i, (kind, county, units) in enumerate(rows):
            s.execute(insert(tr.handoffs).values(
                handoff_id=f"h{i}", kind=kind, case_number=f"C{i}", county=county,
                owner_unit=sorted(units)[0] if units else "x", units=sorted(units),
                state="s", open=True, step=1, search="", created_at=T, updated_at=T))
            for unit in units:
                s.execute(insert(tr.handoff_units).values(handoff_id=f"h{i}", unit=unit))
    with Session(ENGINE) as s:
        every = [dict(r) for r in s.execute(select(tr.handoffs)).mappings()]
        for actor in actor_list:
            condition = tr.visible_to(actor)
            query = select(tr.handoffs.c.handoff_id)
            if condition is not None:
                query = query.where(condition)
            by_sql = set(s.execute(query).scalars())
            by_rule = {r["handoff_id"] for r in every if domain.can_view(actor, r)}
            assert by_sql == by_rule, actor


def test_batches_record_each_named_unit_once(tmp_path):
    from tests.unit.test_tracker_batches import event
    engine = create_engine(f"sqlite:///{tmp_path / 't.db'}")
    tr.metadata.create_all(engine)
    with Session(engine) as s, s.begin():
        tr.apply_batch(s, [event("a", 1), event("a", 2, police_unit="lucheng-psb")], "c")
    with Session(engine) as s, s.begin():
        tr.apply_batch(s, [event("a", 3, police_unit="lucheng-psb")], "c")
    with Session(engine) as s:
        assert sorted(s.execute(select(tr.handoff_units.c.unit)).scalars()) == [
            "lucheng-psb", "lucheng-team-1"]
    engine.dispose()

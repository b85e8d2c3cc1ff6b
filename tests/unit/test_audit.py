"""The audit trail is a hash chain and the steps table is append-only (SQLite here;
PostgreSQL in tests/e2e/test_security_e2e.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from services.police_handoff import domain
from shared.handoffs import HandoffStore
from tests.helpers import HEAD, UNIT, draft_payload

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)


@pytest.fixture
def recorded(tmp_path):
    hs = HandoffStore("police_handoff", "/wenzhou/transport/police_handoff",
                      url=f"sqlite:///{tmp_path / 'a.db'}")
    rec, step = domain.create("draft", UNIT, draft_payload(), T0)
    with hs.store.transaction() as s:
        hs.save(s, rec, step, domain.event_payload(rec, step), 0)
    for i, (actor, command, payload) in enumerate(
            [(UNIT, "request_approval", {"transfer_report": "报告"}), (HEAD, "approve", {})]):
        previous = rec["step"]
        rec, step = domain.act(rec, command, actor, payload, T0 + timedelta(hours=i + 1))
        with hs.store.transaction() as s:
            hs.save(s, rec, step, domain.event_payload(rec, step), previous)
    yield hs, rec["id"]
    hs.store.dispose()


def test_intact_chain_verifies(recorded):
    hs, rid = recorded
    with hs.store.session() as s:
        result = hs.verify(s, rid)
    assert result["steps"] == 3 and result["problems"] == {}
    assert len(result["heads"][rid]) == 64


def test_steps_are_append_only(recorded):
    hs, rid = recorded
    with pytest.raises(DatabaseError, match="append-only"), hs.store.transaction() as s:
        s.execute(text("UPDATE handoff_steps SET command = 'refuse' WHERE step = 3"))
    with pytest.raises(DatabaseError, match="append-only"), hs.store.transaction() as s:
        s.execute(text("DELETE FROM handoff_steps WHERE step = 2"))


def test_tampering_by_the_database_owner_is_detected(recorded):
    hs, rid = recorded
    with hs.store.transaction() as s:   # the owner removes the guard and rewrites history
        s.execute(text("DROP TRIGGER handoff_steps_no_update"))
        s.execute(text("UPDATE handoff_steps SET details = '{\"opinion\": \"forged\"}' "
                       "WHERE step = 3"))
    with hs.store.session() as s:
        problems = hs.verify(s)["problems"][rid]
    assert problems == ["step 3: content does not match its hash"]


def test_removed_step_is_detected(recorded):
    hs, rid = recorded
    with hs.store.transaction() as s:
        s.execute(text("DROP TRIGGER handoff_steps_no_delete"))
        s.execute(text("DELETE FROM handoff_steps WHERE step = 2"))
    with hs.store.session() as s:
        problems = hs.verify(s, rid)["problems"][rid]
    assert "step 2 is missing (found 3)" in problems
    assert "step 3: link to the previous step is broken" in problems

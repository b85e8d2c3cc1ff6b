"""Recomputing running deadlines when an official notice replaces a provisional year
(issue 19): exactly the affected open deadlines move, each move is a validated step."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.police_handoff import domain
from shared import calendar as cal
from shared import handoffs as handoffs_module
from shared.auth import Actor
from shared.errors import NotAllowed
from shared.events import validate_payload
from shared.handoffs import HandoffService, HandoffStore
from shared.procedure import recompute_clocks
from tests.helpers import (
    COORDINATOR,
    HEAD,
    POLICE,
    REQUIRED_FILES,
    TRANSFER,
    UNIT,
    draft_payload,
    file_record,
    token,
)
from tests.unit.test_calendar_sources import end_of, publish_notices
from tests.unit.test_police_domain import Case

OPERATOR = Actor("ops@cli", "operator", "wenzhou-ops")
NOW = datetime(2027, 2, 5, 2, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_calendar():
    cal.clear_caches()
    yield
    cal.clear_caches()


def due(rec, clock="review_decision") -> datetime:
    return datetime.fromisoformat(rec["clocks"][clock]["due"])


def test_recompute_moves_exactly_the_affected_open_deadlines(tmp_path, monkeypatch):
    # received Thu 2027-02-04 (13:00 Beijing): 3-day review over the Spring Festival
    festival = Case(now=datetime(2027, 2, 4, 1, tzinfo=UTC)).to_receipted()
    # received Mon 2027-03-01: the review ends Thu 03-04 under either calendar
    march = Case(now=datetime(2027, 3, 1, 1, tzinfo=UTC)).to_receipted()
    assert due(festival) == end_of(2027, 2, 11)          # provisional calendar
    assert due(march) == end_of(2027, 3, 4)

    publish_notices(tmp_path, monkeypatch)                  # the notice rests 02-05..02-12
    found = recompute_clocks(festival, "criminal_referral", OPERATOR, NOW, "notice 2027")
    assert found is not None
    new, step = found
    assert due(new) == end_of(2027, 2, 15)
    assert new["deadline"]["id"] == "review_decision"
    assert new["deadline"]["due"] == new["clocks"]["review_decision"]["due"]
    assert (new["state"], new["step"]) == (festival["state"], festival["step"] + 1)
    assert [c["deadline_id"] for c in step["details"]["changes"]] == ["review_decision"]
    change = step["details"]["changes"][0]
    assert datetime.fromisoformat(change["previous_due"]) == end_of(2027, 2, 11)
    assert step["details"]["calendar"] == [{"year": 2027, "source": "notice",
                                            "reference": "国办发明电〔2026〕TEST号"}]
    assert step["event"] == "criminal_referral.deadline_recomputed.v1"
    assert step["from"] == step["to"] == festival["state"]
    # the event is valid on the bus (the tracker applies it like any step)
    validate_payload(step["event"], domain.event_payload(new, step))
    # unaffected deadlines and a handoff without running clocks stay as they are
    assert recompute_clocks(march, "criminal_referral", OPERATOR, NOW, "x") is None
    assert recompute_clocks({**march, "clocks": {}}, "criminal_referral", OPERATOR, NOW,
                            "x") is None
    # recomputing again changes nothing (no second step)
    assert recompute_clocks(new, "criminal_referral", OPERATOR, NOW, "again") is None



def test_a_recomputation_is_not_a_work_step_in_the_statistics(tmp_path):
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from services.tracker import domain as tracker_domain
    from services.tracker import store as tr
    from tests.unit.test_tracker_batches import CONSUMER, T0, event

    engine = create_engine(f"sqlite:///{tmp_path / 'tracker.db'}")
    tr.metadata.create_all(engine)
    first, recomputed, filed = event("h1", 1), event("h1", 2), event("h1", 3)
    recomputed["data"]["command"] = "recompute_deadlines"
    recomputed["data"]["at"] = (T0 + timedelta(hours=24)).isoformat()
    filed["data"]["at"] = (T0 + timedelta(hours=72)).isoformat()
    first["data"]["at"] = T0.isoformat()
    with Session(engine) as s, s.begin():
        tr.apply_batch(s, [first, recomputed], CONSUMER)
    with Session(engine) as s, s.begin():    # the next step arrives in a later batch
        tr.apply_batch(s, [filed], CONSUMER)
    with Session(engine) as s:
        parts = tr.statistics(s, "county", None, None, T0 + timedelta(days=5))
    (group,) = tracker_domain.statistics_from(parts, "county")
    engine.dispose()
    assert group["hours_per_step"] == {"step3": 72.0}


class _PoliceHandoffs(HandoffService):
    """The shared RPC adapter on a throwaway SQLite database (no broker needed)."""
    name = "police_handoff"
    domain = domain

    def __init__(self, url: str):
        self.handoffs = HandoffStore("police_handoff", "/wenzhou/transport/police_handoff", url)
        self.db = self.handoffs.store


def _receive(svc, monkeypatch, when: datetime, number: str) -> dict:
    monkeypatch.setattr(handoffs_module, "_now", lambda: when)
    rec = svc.create(token(UNIT), "draft", draft_payload(number))
    svc.act(token(UNIT), rec["id"], "request_approval", {"transfer_report": "核实报告"})
    svc.act(token(HEAD), rec["id"], "approve", {"opinion": "同意"})
    for kind in REQUIRED_FILES:
        svc.attach_file(token(UNIT), rec["id"], file_record(kind))
    svc.act(token(UNIT), rec["id"], "transfer", TRANSFER)
    return svc.act(token(POLICE), rec["id"], "sign_receipt",
                   {"receipt_number": "R-1", "receiving_officer": "王"})


def test_the_rpc_moves_only_affected_open_deadlines_and_records_each(tmp_path, monkeypatch):
    svc = _PoliceHandoffs(f"sqlite:///{tmp_path / 'police.db'}")
    festival = _receive(svc, monkeypatch, datetime(2027, 2, 4, 2, tzinfo=UTC), "WZ-LC-1")
    march = _receive(svc, monkeypatch, datetime(2027, 3, 1, 2, tzinfo=UTC), "WZ-LC-2")
    draft = svc.create(token(UNIT), "draft", draft_payload("WZ-LC-3"))
    assert datetime.fromisoformat(festival["deadline"]["due"]) == end_of(2027, 2, 11)

    with pytest.raises(NotAllowed):
        svc.recompute_deadlines(token(COORDINATOR))
    assert svc.recompute_deadlines(token(OPERATOR))["moved"] == []   # nothing changed yet

    publish_notices(tmp_path, monkeypatch)
    result = svc.recompute_deadlines(token(OPERATOR), "2027 notice")
    assert [m["id"] for m in result["moved"]] == [festival["id"]]
    shown = svc.get(token(COORDINATOR), festival["id"])
    assert datetime.fromisoformat(shown["deadline"]["due"]) == end_of(2027, 2, 15)
    assert shown["timeline"][-1]["command"] == "recompute_deadlines"
    assert shown["timeline"][-1]["details"]["reason"] == "2027 notice"
    assert svc.get(token(COORDINATOR), march["id"])["step"] == march["step"]
    assert svc.get(token(COORDINATOR), draft["id"])["step"] == draft["step"]
    assert svc.verify_audit(token(COORDINATOR))["problems"] == {}
    assert svc.recompute_deadlines(token(OPERATOR))["moved"] == []   # done once

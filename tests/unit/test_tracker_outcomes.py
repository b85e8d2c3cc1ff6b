"""Outcome feedback in the tracker (issue 22 part 3): each referral's milestones from its
events, in the tracker's own batches, and the funnel filing -> prosecution -> conviction
by county and offence over what the caller may see."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.tracker import outcomes as oc
from services.tracker import store as tr
from shared.auth import Actor
from tests.helpers import COORDINATOR, COURT, POLICE, PROCURATORATE
from tests.unit import test_tracker_batches

engine = test_tracker_batches.engine     # the same fixture: a tracker database in SQLite

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# (command, state entered, details) along a referral's life
DRAFT = ("draft", "draft", {"suspected_offences": ["危险驾驶罪"]})
TRANSFER = ("transfer", "transferred", {"police_unit": POLICE.unit,
                                        "procuratorate_unit": PROCURATORATE.unit})
RECEIPT = ("sign_receipt", "receipted", {})
FILE = ("file", "filed", {"offence": "危险驾驶罪"})
SEND = ("end_investigation", "prosecution_review", {"outcome": "prosecution",
                                                     "offence": "危险驾驶罪"})
PROSECUTE = ("decide_prosecution", "prosecuted", {"outcome": "prosecute",
                                                  "court_unit": COURT.unit,
                                                  "offence": "危险驾驶罪"})
CONVICT = ("record_judgment", "convicted", {"outcome": "convicted", "offence": "危险驾驶罪"})
DROP = ("end_investigation", "investigation_dropped", {"outcome": "dropped"})
RETURN = ("return_for_penalty", "returned_for_penalty", {})
NOT_FILE = ("not_file", "not_filed", {})


def events(subject: str, path: list[tuple], county: str = "lucheng") -> list[dict]:
    out, previous = [], None
    for seq, (command, state, details) in enumerate(path, start=1):
        out.append({
            "id": f"{subject}-{seq}-{uuid.uuid4().hex[:6]}", "subject": subject,
            "sequence": seq, "type": f"criminal_referral.{command}.v1",
            "actor": "u", "actorrole": "police", "actorunit": POLICE.unit,
            "data": {"kind": "criminal_referral", "case_number": f"CASE-{subject}",
                     "county": county, "owner_unit": f"{county}-team-1",
                     "counterpart_unit": POLICE.unit if seq > 1 else None,
                     "command": command, "previous_state": previous, "state": state,
                     "step": seq, "deadline": None,
                     "at": (T0 + timedelta(days=seq)).isoformat(), "details": details}})
        previous = state
    return out


def apply(engine, batch) -> None:
    with Session(engine) as s, s.begin():
        tr.apply_batch(s, batch, "tracker.events")


def funnel(engine, actor, group_by="county", **kw) -> list[dict]:
    with Session(engine) as s:
        return oc.funnel(s, tr.outcomes, tr.handoffs, tr.visible_to(actor), group_by, **kw)


def seeded(engine) -> None:
    convicted = events("a", [DRAFT, TRANSFER, RECEIPT, FILE, SEND, PROSECUTE, CONVICT])
    apply(engine, convicted[:4])                 # batches cut anywhere give one result
    apply(engine, convicted[4:])
    apply(engine, events("b", [DRAFT, TRANSFER, RECEIPT, FILE, DROP, RETURN]))
    apply(engine, events("c", [DRAFT, TRANSFER, RECEIPT, NOT_FILE]))
    apply(engine, events("d", [DRAFT]))          # never referred: not in the funnel
    apply(engine, events("e", [DRAFT, TRANSFER, RECEIPT, FILE, SEND, PROSECUTE, CONVICT],
                         county="ouhai"))


def test_milestones_keep_the_time_first_reached(engine):
    seeded(engine)
    with Session(engine) as s:
        row = s.execute(select(tr.outcomes).where(tr.outcomes.c.handoff_id == "a")).one()
    assert row.offence == "危险驾驶罪" and row.county == "lucheng"
    assert row.referred_at.replace(tzinfo=UTC) == T0 + timedelta(days=2)
    assert row.convicted_at.replace(tzinfo=UTC) == T0 + timedelta(days=7)
    assert row.dropped_at is None


def test_funnel_by_county(engine):
    seeded(engine)
    by_county = {r["county"]: r for r in funnel(engine, COORDINATOR)}
    lucheng = by_county["lucheng"]
    assert (lucheng["referred"], lucheng["filed"], lucheng["prosecuted"],
            lucheng["convicted"], lucheng["dropped"], lucheng["returned"]) == (3, 2, 1, 1, 1, 1)
    assert lucheng["filing_rate"] == round(2 / 3, 4)
    assert lucheng["prosecution_rate"] == 0.5 and lucheng["conviction_rate"] == 1.0
    assert by_county["ouhai"]["convicted"] == 1


def test_funnel_by_offence_and_period(engine):
    seeded(engine)
    rows = funnel(engine, COORDINATOR, "offence")
    assert [(r["offence"], r["referred"], r["convicted"]) for r in rows] == [
        ("危险驾驶罪", 4, 2)]
    assert funnel(engine, COORDINATOR, start=T0 + timedelta(days=3)) == []


def test_funnel_counts_only_what_the_caller_may_see(engine):
    seeded(engine)
    assert [r["county"] for r in funnel(engine, COURT)] == ["lucheng", "ouhai"]
    other_court = Actor("judge-x", "court", "ruian-court", "ruian")
    assert funnel(engine, other_court) == []
    unit = Actor("officer-oh", "enforcement_unit", "ouhai-team-1", "ouhai")
    assert [(r["county"], r["referred"]) for r in funnel(engine, unit)] == [("ouhai", 1)]


def test_rebuild_forgets_the_outcomes_with_the_read_model(engine):
    seeded(engine)
    with Session(engine) as s, s.begin():
        tr.reset(s)
    assert funnel(engine, COORDINATOR) == []

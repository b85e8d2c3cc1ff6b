"""Work that grows with history (issue 21): the deadline sweep reads only the handoffs
whose next alert is due, and the statistics come from counters kept as events are
applied. Both must give exactly what the straightforward computation over every handoff
and step gives — that computation is kept here as the reference, and random histories
(any batching, redeliveries, early events) are compared on SQLite and PostgreSQL."""
from __future__ import annotations

import os
import random
import statistics as pystats
import uuid
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from services.tracker import domain
from services.tracker import store as tr
from shared.auth import Actor, issue_token
from shared.db import normalize_url
from shared.errors import NotReady

PG = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432")
CONSUMER = "tracker.events"
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)
KINDS = ["criminal_referral", "market_referral", "joint_action", "assistance_request"]
COUNTIES = ["lucheng", "ouhai", None]
DOMAINS = ["road", "transport", None]
UNITS = ["lucheng-team-1", "ouhai-team-1", "lucheng-psb", "lucheng-command", "wenzhou-amr"]
COMMANDS = ["draft", "approve", "transfer", "receive", "file", "not_file", "accept",
            "return", "report"]
ACTORS = [Actor("c", "coordinator", "wenzhou-coordination", None),
          Actor("cc", "county_command", "lucheng-command", "lucheng"),
          Actor("cx", "county_command", "ouhai-command", None),
          Actor("ah", "agency_head", "ouhai-head", "ouhai"),
          Actor("u", "enforcement_unit", "lucheng-team-1", "lucheng"),
          Actor("p", "police", "lucheng-psb", "lucheng"),
          Actor("m", "market_regulation", "wenzhou-amr", None)]


def _pg_up() -> bool:
    try:
        with create_engine(normalize_url(f"{PG}/postgres")).connect():
            return True
    except Exception:   # noqa: BLE001 - any failure: no PostgreSQL here
        return False


def _new(engine):
    """A new tracker database, found new before its first event (as the service does)."""
    tr.metadata.create_all(engine)
    with Session(engine) as s, s.begin():
        assert tr.derived_ready(s)
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'tracker.db'}")
        yield _new(engine)
        engine.dispose()
        return
    if not _pg_up():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    name = f"history_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_url(f"{PG}/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(normalize_url(f"{PG}/{name}"))
    yield _new(engine)
    engine.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


# -- random histories ------------------------------------------------------------------

def history(rng: random.Random, n: int) -> list[dict]:
    """The events of ``n`` handoffs: random kind, county, domain, parties, commands,
    times (days apart, across months), deadlines (binding or not, past or future) and
    some closed."""
    events = []
    for h in range(n):
        subject = f"h{h}-{rng.randrange(10**6)}"
        kind, county = rng.choice(KINDS), rng.choice(COUNTIES)
        owner, other = rng.sample(UNITS, 2)
        at = T0 + timedelta(days=rng.randrange(50), minutes=rng.randrange(600))
        steps = rng.randint(1, 6)
        for seq in range(1, steps + 1):
            at += timedelta(minutes=rng.randrange(1, 5000))
            final = seq == steps and rng.random() < 0.4
            deadline = None
            if not final and rng.random() < 0.8:
                deadline = {"id": rng.choice(["review", "decide"]),
                            "due": (NOW + timedelta(hours=rng.uniform(-200, 60))).isoformat(),
                            "obligation": rng.choice(["must", "must", "must", "may"])}
            events.append({
                "id": f"{subject}-{seq}", "subject": subject, "sequence": seq,
                "type": f"{kind}.step.v1", "actor": "x", "actorrole": "enforcement_unit",
                "actorunit": owner,
                "data": {"kind": kind, "case_number": f"C-{subject}", "county": county,
                         "owner_unit": owner, "counterpart_unit": other if seq > 1 else None,
                         "state": "closed" if final else f"s{seq}",
                         "command": rng.choice(COMMANDS), "deadline": deadline,
                         "at": at.isoformat(),
                         "details": {"domain": rng.choice(DOMAINS)} if seq == 1 else {}}})
    return events


def deliver(engine, events: list[dict], rng: random.Random) -> None:
    """Apply in random batches, shuffled (early events park), some delivered twice."""
    events = events + rng.sample(events, len(events) // 10)
    rng.shuffle(events)
    while events:
        size = rng.randint(1, 40)
        batch, events = events[:size], events[size:]
        with Session(engine) as s, s.begin():
            tr.apply_batch(s, batch, CONSUMER)


# -- the reference: every handoff and step, in Python (the code this issue replaced) ---

def reference(engine, actor: Actor, group_by: str, start, end) -> list[dict]:
    with Session(engine) as s:
        rows = [tr._plain(r) for r in s.execute(select(tr.handoffs)).mappings()]
        steps = [tr._plain(r) for r in s.execute(select(
            tr.timeline.c.handoff_id, tr.timeline.c.step, tr.timeline.c.command,
            tr.timeline.c.at)).mappings()]
    rows = [r for r in rows if domain.can_view(actor, r)
            and (start is None or datetime.fromisoformat(r["created_at"]) >= start)
            and (end is None or datetime.fromisoformat(r["created_at"]) < end)]
    for r in rows:
        due = r.get("deadline_due")
        r["overdue"] = bool(r["open"] and due and datetime.fromisoformat(due) < NOW)

    def key_of(h):
        if group_by == "month":
            return h["created_at"][:7]
        if group_by == "agency":
            return domain.AGENCY.get(h["kind"]) or "transport"
        return h.get(group_by) or "-"

    groups = defaultdict(lambda: {"count": 0, "open": 0, "overdue": 0,
                                  "by_state": defaultdict(int)})
    group_of = {}
    for h in rows:
        g = groups[key_of(h)]
        group_of[h["handoff_id"]] = key_of(h)
        g["count"] += 1
        g["open"] += int(h["open"])
        g["overdue"] += int(h["overdue"])
        g["by_state"][h["state"]] += 1
    commands = defaultdict(lambda: defaultdict(int))
    durations = defaultdict(lambda: defaultdict(list))
    previous = {}
    for st_ in sorted(steps, key=lambda x: (x["handoff_id"], x["step"])):
        key = group_of.get(st_["handoff_id"])
        if key is None:
            continue
        commands[key][st_["command"]] += 1
        at = datetime.fromisoformat(st_["at"])
        if st_["handoff_id"] in previous:
            durations[key][st_["command"]].append(
                (at - previous[st_["handoff_id"]]).total_seconds() / 3600)
        previous[st_["handoff_id"]] = at

    def rate(a, b):
        return round(a / b, 4) if b else None
    out = []
    for key, g in sorted(groups.items()):
        c = commands[key]
        out.append({group_by: key, "count": g["count"], "open": g["open"],
                    "overdue": g["overdue"], "by_state": dict(sorted(g["by_state"].items())),
                    "filing_rate": rate(c["file"], c["file"] + c["not_file"]),
                    "acceptance_rate": rate(c["accept"], c["accept"] + c["return"]),
                    "hours_per_step": {k: round(pystats.mean(v), 2)
                                       for k, v in sorted(durations[key].items())}})
    return out


def answer(engine, actor, group_by, start=None, end=None) -> list[dict]:
    with Session(engine) as s:
        return domain.statistics_from(tr.statistics(s, group_by, start, end, NOW, actor),
                                      group_by)


def same(got: list[dict], want: list[dict]) -> None:
    assert [{k: v for k, v in g.items() if k != "hours_per_step"} for g in got] == \
        [{k: v for k, v in w.items() if k != "hours_per_step"} for w in want]
    for g, w in zip(got, want, strict=True):
        assert g["hours_per_step"].keys() == w["hours_per_step"].keys()
        for command, hours in w["hours_per_step"].items():   # sums in another order
            assert g["hours_per_step"][command] == pytest.approx(hours, abs=0.011)


@pytest.mark.parametrize("seed", [1, 2])
def test_statistics_from_counters_equal_the_full_computation(engine, seed):
    rng = random.Random(seed)
    deliver(engine, history(rng, 120), rng)
    ranges = [(None, None), (datetime(2026, 2, 1, tzinfo=UTC), None),
              (datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 2, 15, tzinfo=UTC))]
    for actor in ACTORS:
        for group_by in ("month", "county", "domain", "agency", "kind"):
            for start, end in ranges:
                want = reference(engine, actor, group_by, start, end)
                same(answer(engine, actor, group_by, start, end), want)
    assert answer(engine, ACTORS[0], "kind"), "the history produced statistics"


def test_a_rebuild_counts_the_same(engine):
    rng = random.Random(7)
    events = history(rng, 60)
    deliver(engine, events, rng)
    before = {g: answer(engine, ACTORS[0], g) for g in ("month", "kind", "county")}
    with Session(engine) as s, s.begin():
        tr.reset(s)
    deliver(engine, events, random.Random(8))
    assert {g: answer(engine, ACTORS[0], g) for g in before} == before


def test_two_batches_of_one_subject_take_turns(engine):
    """Issue 16: the per-subject lock is a transaction-scoped advisory lock on PostgreSQL.
    A batch holding step 2 of a subject while another transaction holds step 1 waits
    for that commit and then applies step 2 (it does not read the state before step 1
    and park it); SQLite serializes the writers itself."""
    import threading
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    first, second = history(random.Random(11), 1)[:2]
    results: list[dict] = []
    with Session(engine) as a, a.begin():
        tr.apply_batch(a, [first], CONSUMER)                  # holds the subject's lock

        def other():
            with Session(engine) as b, b.begin():
                results.append(tr.apply_batch(b, [second], CONSUMER))
        waiting = threading.Thread(target=other)
        waiting.start()
        waiting.join(1.0)
        assert results == []                                   # still waiting for a
    waiting.join(30)
    assert results == [{"applied": 1, "duplicate": 0, "stale": 0, "parked": 0}]
    with Session(engine) as s:
        assert s.execute(select(tr.handoffs.c.step)).scalar_one() == 2


# -- the sweep ---------------------------------------------------------------------------

class _Db:
    """The service's Database dependency over a test engine."""
    metadata, service = tr.metadata, "tracker"

    def __init__(self, engine):
        self.engine = engine

    @contextmanager
    def transaction(self):
        with Session(self.engine) as s, s.begin():
            yield s

    session = transaction


@pytest.fixture
def tracker(engine, monkeypatch):
    from services.tracker import service
    monkeypatch.setattr(service, "_READY", [])
    svc = service.TrackerService()
    svc.db = _Db(engine)
    return svc


def raised(engine) -> set[tuple]:
    with Session(engine) as s:
        return {(r.handoff_id, r.deadline_id, r.due, r.level)
                for r in s.execute(select(tr.alerts))}


def expected(engine, now) -> set[tuple]:
    """What the old sweep raised at ``now``: every open handoff's binding deadline
    within the window or past (its level), read from every row."""
    with Session(engine) as s:
        rows = [dict(r) for r in s.execute(select(tr.handoffs)).mappings()]
    return {(r["handoff_id"], r["deadline"]["id"], r["deadline"]["due"], level)
            for r, level in domain.due_alerts(rows, now, WINDOW)}


def test_the_sweep_raises_what_the_full_scan_raised_and_reads_nothing_more(engine, tracker):
    rng = random.Random(3)
    events = history(rng, 150)
    deliver(engine, events, rng)
    before = NOW - timedelta(hours=100)
    tracker.sweep_now(before)
    first = raised(engine)
    assert first == expected(engine, before)
    # nothing new at the same instant: no clock is due
    assert tracker.sweep_now(before) == 0
    with Session(engine) as s:
        assert tr.due_clocks(s, before, WINDOW) == []
    # later: approaching ones breach, new ones approach — each raised once
    tracker.sweep_now(NOW)
    assert raised(engine) == first | expected(engine, NOW)
    assert tracker.sweep_now(NOW) == 0
    with Session(engine) as s:
        assert tr.due_clocks(s, NOW, WINDOW) == []
        # every clock left waits for a future alert: none is past its level's time
        left = s.execute(select(tr.alert_clocks)).mappings().all()
    assert all(tr.utc(c["due"]) > NOW for c in left)


def test_a_new_deadline_restarts_the_clock_and_closing_stops_it(engine, tracker):
    def step(seq, state, due=None, deadline_id="review", obligation="must"):
        deadline = due and {"id": deadline_id, "due": due.isoformat(), "obligation": obligation}
        return {"id": f"s-{seq}", "subject": "s", "sequence": seq, "type": "x.step.v1",
                "data": {"kind": "criminal_referral", "case_number": "C", "county": "lucheng",
                         "owner_unit": "lucheng-team-1", "counterpart_unit": None,
                         "state": state, "command": "c", "deadline": deadline,
                         "at": (NOW - timedelta(days=5, minutes=-seq)).isoformat(),
                         "details": {}}}
    deliver(engine, [step(1, "drafted", NOW - timedelta(hours=1))], random.Random(0))
    assert tracker.sweep_now(NOW) == 1                       # breached at once
    assert {a[3] for a in raised(engine)} == {"breached"}
    deliver(engine, [step(2, "approved", NOW + timedelta(hours=2), "decide")],
            random.Random(0))
    assert tracker.sweep_now(NOW) == 1                       # the new deadline approaches
    deliver(engine, [step(3, "approved", NOW + timedelta(hours=2), "decide", "may")],
            random.Random(0))
    assert tracker.sweep_now(NOW + timedelta(hours=3)) == 0  # an option never alerts
    deliver(engine, [step(4, "closed")], random.Random(0))
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(tr.alert_clocks)).scalar() == 0


def test_a_rebuild_raises_no_alert_twice(engine, tracker):
    rng = random.Random(5)
    events = history(rng, 60)
    deliver(engine, events, rng)
    tracker.sweep_now(NOW)
    once = raised(engine)
    assert once
    with Session(engine) as s, s.begin():
        tr.reset(s)                                          # alerts stay
    deliver(engine, events, random.Random(6))
    assert tracker.sweep_now(NOW) == 0                      # already raised, clocks advance
    assert raised(engine) == once
    with Session(engine) as s:
        assert tr.due_clocks(s, NOW, WINDOW) == []


def test_an_older_database_is_told_to_rebuild(engine, tracker):
    """A database filled by an earlier version (handoffs, no mark) neither sweeps nor
    answers statistics from empty counters: health says what to run."""
    rng = random.Random(9)
    deliver(engine, history(rng, 5), rng)
    with Session(engine) as s, s.begin():
        s.execute(tr.tracker_meta.delete())
    assert tracker.sweep_now(NOW) == 0
    assert "rebuild-tracker" in tracker.health()["warnings"][0]
    from services.tracker import service
    with pytest.raises(NotReady) as err:
        service.TrackerService.statistics(tracker, issue_token(ACTORS[0]), "kind")
    assert "rebuild-tracker" in str(err.value)
    with Session(engine) as s, s.begin():
        tr.reset(s)                         # what rebuild-tracker does first
    service._READY.clear()
    assert "warnings" not in tracker.health()


def test_statistics_count_whole_days_and_say_so(tracker):
    from services.tracker import service
    from shared.errors import InvalidInput
    token = issue_token(ACTORS[0])
    assert service.TrackerService.statistics(tracker, token, "kind", "2026-01-01",
                                             "2026-02-01") == []
    with pytest.raises(InvalidInput) as err:
        service.TrackerService.statistics(tracker, token, "kind", "2026-01-01T10:00:00")
    assert "whole UTC days" in str(err.value.errors)


def test_an_assessment_period_is_at_most_a_year():
    from marshmallow import ValidationError

    from shared.schemas.command import AssessmentQuerySchema
    ok = AssessmentQuerySchema().load({"start": "2025-01-01T00:00:00+08:00",
                                       "end": "2026-01-01T00:00:00+08:00"})
    assert ok["end"] > ok["start"]
    with pytest.raises(ValidationError) as err:
        AssessmentQuerySchema().load({"start": "2020-01-01T00:00:00+08:00",
                                      "end": "2026-01-01T00:00:00+08:00"})
    assert "366 days" in str(err.value.messages)

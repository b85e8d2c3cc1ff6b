"""Fill the databases of an old Liandong with that version's own code (run by
tests/unit/test_upgrade.py in a checkout of the old commit, with it first on PYTHONPATH).

Every handoff the old domain tests walk through (every kind: criminal referrals both
ways, market referrals both ways, joint actions, assistance requests, at every stage
those tests reach) is saved through the old HandoffStore as the old services did: the
handoff, its hash-chained steps and its event in the outbox. The tracker then applies
those events (its inbox, read model) and raises its deadline alerts. Half the outbox
rows are marked sent. Prints what it made as JSON."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, update

TESTS = ["tests/unit/test_police_domain.py", "tests/unit/test_market_domain.py",
         "tests/unit/test_command_domain.py"]


def _record(module, hs, made: dict) -> None:
    """Save every step ``module`` (a domain) makes into ``hs``, as the service would; a
    step on a branch the store has moved past (a test trying two ways) is left out."""
    create, act = module.create, module.act

    def save(rec, step, previous):
        try:
            with hs.store.transaction() as s:
                hs.save(s, rec, step, module.event_payload(rec, step), previous)
            made[hs.service] = made.get(hs.service, 0) + 1
        except Exception:  # noqa: BLE001 - a branch or a rejected copy: not stored
            pass

    def recording_create(command, actor, payload, now):
        rec, step = create(command, actor, payload, now)
        save(rec, step, 0)
        return rec, step

    def recording_act(rec, command, actor, payload, now):
        new, step = act(rec, command, actor, payload, now)
        save(new, step, rec["step"])
        return new, step

    module.create, module.act = recording_create, recording_act


def main() -> int:
    from services.command import domain as command
    from services.command import store as command_store
    from services.market_referral import domain as market
    from services.market_referral import store as market_store
    from services.police_handoff import domain as police
    from services.police_handoff import store as police_store
    from services.tracker import domain as tracker_domain
    from services.tracker import service as tracker_service
    from services.tracker import store as tracker
    from shared.messaging import export, messaging_tables

    stores = [police_store.handoffs, market_store.handoffs, command_store.handoffs]
    made: dict[str, int] = {}
    for module, hs in zip((police, market, command), stores, strict=True):
        _record(module, hs, made)
    outcome = pytest.main([*TESTS, "-q", "-p", "no:cacheprovider", "-W", "ignore"])

    applied = {}
    for hs in stores:
        events = [row["envelope"] for row in export(hs.store, 0, 100000)]
        with tracker.store.transaction() as s:
            counts = tracker.apply_batch(s, events, tracker_service.CONSUMER)
        applied[hs.service] = counts
        outbox = messaging_tables(hs.metadata)["outbox"]
        with hs.store.transaction() as s:
            half = s.execute(select(func.max(outbox.c.id))).scalar() // 2
            s.execute(update(outbox).where(outbox.c.id <= half)
                      .values(sent_at=datetime.now(timezone.utc)))
    now = datetime.now(timezone.utc)
    raised = 0
    with tracker.store.transaction() as s:
        rows = tracker.open_with_deadline(s, now + tracker_service.APPROACHING)
        for row, level in tracker_domain.due_alerts(rows, now, tracker_service.APPROACHING):
            raised += tracker.raise_alert(s, row, level, now) is not None
    print(json.dumps({"tests": int(outcome), "steps": made, "applied": applied,
                      "alerts": raised}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

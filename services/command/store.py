"""The command service's database: the shared handoff tables (joint actions and
assistance requests, told apart by ``kind``) and outbox/inbox."""
from datetime import UTC

from sqlalchemy import select

from services.command import joint_action
from shared.handoffs import HandoffStore

SERVICE = "command"
SOURCE = "/wenzhou/transport/command"

handoffs = HandoffStore(SERVICE, SOURCE)
metadata = handoffs.metadata
store = handoffs.store


def overdue_records(session, kind: str, open_states, now) -> list[dict]:
    """Open records whose earliest running deadline has passed (sweep candidates)."""
    now = now.astimezone(UTC)  # SQLite compares wall time
    t = handoffs.handoffs
    query = (select(t.c.doc).where(t.c.kind == kind, t.c.state.in_(list(open_states)),
                                   t.c.deadline_due.is_not(None), t.c.deadline_due <= now)
             .order_by(t.c.deadline_due))
    return list(session.execute(query).scalars())


def actions_with_steps(session, kind: str, start, end) -> list[dict]:
    """Records of ``kind`` created in [start, end) with their steps (for assessment)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # SQLite compares wall time
    t, steps = handoffs.handoffs, handoffs.steps
    rows = session.execute(select(t.c.id, t.c.case_number).where(
        t.c.kind == kind, t.c.created_at >= start, t.c.created_at < end)).all()
    out = {r.id: {"id": r.id, "case_number": r.case_number, "steps": []} for r in rows}
    if out:
        for s in session.execute(select(steps.c.handoff_id, steps.c.step, steps.c.command,
                                        steps.c.at, steps.c.details)
                                 .where(steps.c.handoff_id.in_(list(out)))
                                 .order_by(steps.c.handoff_id, steps.c.step)):
            at = s.at if s.at.tzinfo else s.at.replace(tzinfo=UTC)  # SQLite: naive UTC
            out[s.handoff_id]["steps"].append(
                {"step": s.step, "command": s.command, "at": at, "details": s.details})
    return list(out.values())


def escalate_due(session, action_id: str, now, for_update: bool = False,
                 hs: HandoffStore = handoffs) -> list[tuple]:
    """Publish (stage) every escalation due on one action in the caller's transaction;
    return the (recipient, miss) pairs. Each escalation is a step saved conditionally on
    the step number read (and keyed by (action, step)), so a concurrent sweeper that read
    the same record fails instead of publishing it again."""
    rec = hs.load(session, action_id, for_update=for_update)
    done = []
    for unit, miss, _due in joint_action.due_escalations(rec, now):
        previous = rec["step"]
        rec, step = joint_action.escalate(rec, unit, miss, now)
        hs.save(session, rec, step, joint_action.event_payload(rec, step), previous)
        done.append((unit, miss))
    return done

"""nameko adapter of the tracker: consumes every handoff event (inbox-deduplicated,
order-checked by sequence) into its read model, raises deadline alerts once each on
a timer, and answers board, timeline and statistics queries for each role."""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

from nameko.timer import timer

from services.tracker import domain
from services.tracker import outcomes as oc
from services.tracker import store as st
from shared import calendar
from shared.auth import require_role, verify_token
from shared.boundaries import year_error
from shared.errors import InvalidInput, NotAllowed, NotFound, NotReady, bounded
from shared.logging import configure_logging
from shared.messaging import backlog
from shared.nameko_ext import Database, OutboxRelay, on_events, rpc
from shared.revocations import Revocations
from shared.tokenkeys import check_startup

configure_logging("tracker")
check_startup("tracker")   # production: no start without fit token keys

CONSUMER = "tracker.events"
SWEEP_SECONDS = float(os.environ.get("TRACKER_SWEEP_SECONDS", "10"))
BATCH = int(os.environ.get("TRACKER_BATCH", "500"))   # events applied per transaction
SWEEP_LIMIT = int(os.environ.get("TRACKER_SWEEP_LIMIT", "5000"))   # alerts per sweep at most
APPROACHING = timedelta(hours=float(os.environ.get("TRACKER_APPROACHING_HOURS", "24")))
GROUPS = ("month", "county", "domain", "agency", "kind")


def _now() -> datetime:
    return calendar.now()   # a development test clock may shift it


_READY: list[bool] = []     # this process found the derived tables filled


def _derived_ready(session) -> bool:
    if not _READY and st.derived_ready(session):
        _READY.append(True)
    return bool(_READY)


def _day(value, field):
    """A statistics bound: a whole UTC day (the counters are kept per day)."""
    parsed = _date(value, field)
    if parsed is not None and parsed.astimezone(timezone.utc).time() != datetime.min.time():
        raise InvalidInput(f"{field} must be a whole day",
                           {field: ["use YYYY-MM-DD: statistics count whole UTC days"]})
    return parsed


def _date(value, field):
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{field} is not an ISO date", {field: ["use YYYY-MM-DD"]}) from None
    if problem := year_error(parsed):
        raise InvalidInput(f"{field} is out of range", {field: [problem]})
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class TrackerService:
    name = "tracker"

    db = Database(st.store)
    relay = OutboxRelay(st.store)
    revocations = Revocations()      # refuses revoked tokens, fails closed

    @on_events(CONSUMER, max_batch=BATCH)
    def on_events(self, envelopes):
        """Apply a batch of events in one transaction (inbox, order by sequence)."""
        return self._apply(envelopes)

    def _apply(self, envelopes) -> dict[str, int]:
        """Apply handoff events in one transaction; the tracker's own deadline alerts
        come back on its queue too and are skipped, as are token revocations (kept by
        shared/revocations.py); an empty batch touches nothing."""
        handoff_events = [e for e in envelopes
                          if not e["type"].startswith(("deadline.", "token."))]
        with self.db.transaction() as s:
            _derived_ready(s)     # before the first event: a new database counts from it
            counts = st.apply_batch(s, handoff_events, CONSUMER)
        return {**counts, "skipped": len(envelopes) - len(handoff_events)}

    @timer(interval=SWEEP_SECONDS)
    def sweep(self):
        """Raise ``deadline.approaching`` / ``deadline.breached`` once per deadline."""
        return self.sweep_now()

    def sweep_now(self, now=None) -> int:
        """One sweep: only the handoffs whose next alert is due are read (their alert
        clocks), so a sweep with nothing new to raise costs one index probe."""
        now = now or _now()
        with self.db.transaction() as s:
            if not _derived_ready(s):
                return 0          # health says: run `liandong rebuild-tracker` once
            raised = st.sweep(s, now, APPROACHING, SWEEP_LIMIT)
        return raised

    @rpc
    def handoff(self, token, handoff_id):
        actor = verify_token(token)
        with self.db.session() as s:
            found = st.get(s, handoff_id, _now())
        if found is None:
            raise NotFound(f"no handoff {handoff_id}", {"handoff_id": ["not found"]})
        if not domain.can_view(actor, found):
            raise NotAllowed("you may not see this handoff", {"handoff_id": ["forbidden"]})
        return found

    @rpc
    def board(self, token, kind=None, county=None, agency=None, domain_=None, state=None,
              q=None, open_only=True, overdue_only=False, limit=200, offset=0):
        """Open handoffs visible to the caller, nearest deadline first."""
        actor = verify_token(token)
        limit, offset = bounded(limit, "limit", 1, 5000), bounded(offset, "offset", 0, 10**7)
        with self.db.session() as s:
            rows = st.board(s, _now(), kind=kind, county=county, agency=agency,
                            domain_=domain_, state=state, q=q, open_only=open_only,
                            overdue_only=overdue_only, limit=limit, offset=offset,
                            actor=actor)
        return [r for r in rows if domain.can_view(actor, r)]   # the SQL's rule, again

    @rpc
    def todo(self, token, limit=500):
        """待办: the open handoffs waiting for the caller's unit, nearest deadline first,
        each with the steps expected of it (``todo``); the same visibility as the board."""
        actor = verify_token(token)
        limit = bounded(limit, "limit", 1, 5000)
        with self.db.session() as s:
            rows = st.todo(s, _now(), actor, limit)
        return [{**r, "todo": domain.todo_commands(r, actor)} for r in rows
                if domain.can_view(actor, r) and domain.is_mine(r, actor)]

    @rpc
    def statistics(self, token, group_by="month", start=None, end=None):
        actor = verify_token(token)
        if group_by not in GROUPS:
            raise InvalidInput("unknown grouping", {"group_by": [f"one of: {', '.join(GROUPS)}"]})
        start, end = _day(start, "start"), _day(end, "end")
        with self.db.session() as s:
            if not _derived_ready(s):
                raise NotReady("the statistics counters of this version are not filled yet",
                               {"tracker": ["an operator runs `liandong rebuild-tracker` "
                                            "once after the upgrade"]})
            parts = st.statistics(s, group_by, start, end, _now(), actor)
        return domain.statistics_from(parts, group_by)

    @rpc
    def outcomes(self, token, group_by="county", start=None, end=None):
        """Criminal referrals' outcomes (filing -> prosecution -> conviction) by county or
        offence, over the referrals the caller may see (issue 22 part 3)."""
        actor = verify_token(token)
        if group_by not in oc.GROUPS:
            raise InvalidInput("unknown grouping",
                               {"group_by": [f"one of: {', '.join(oc.GROUPS)}"]})
        with self.db.session() as s:
            return oc.funnel(s, st.outcomes, st.handoffs, st.visible_to(actor), group_by,
                             _date(start, "start"), _date(end, "end"))

    @rpc
    def changes(self):
        """A marker that moves whenever an event is applied (the gateway's live updates
        compare it; nothing about any handoff is in it)."""
        with self.db.session() as s:
            return {"marker": st.change_marker(s)}

    @rpc
    def metrics(self):
        """Figures for the Prometheus endpoint of the gateway."""
        with self.db.session() as s:
            by_state = st.counts_by_state(s)
            overdue = st.overdue_count(s, _now())
        return {"by_state": [list(r) for r in by_state], "overdue": overdue,
                "calendar": calendar.status(_now())}

    @rpc
    def reset(self, token):
        require_role(verify_token(token), {"operator"}, "reset the tracker")
        with self.db.transaction() as s:
            st.reset(s)
        return {"reset": True}

    @rpc
    def ingest(self, token, envelopes):
        """Apply a batch of events (a rebuild), with the same inbox and order rules;
        an envelope may come as its JSON text (a producer's raw export, passed on)."""
        require_role(verify_token(token), {"operator"}, "rebuild the tracker")
        try:
            envelopes = [json.loads(e) if isinstance(e, str) else e for e in envelopes]
        except ValueError as exc:
            raise InvalidInput("an envelope is not JSON", {"envelopes": [str(exc)]}) from None
        return self._apply(envelopes)

    @rpc
    def health(self):
        """Liveness; ``warnings`` when the counters are not filled for this version;
        ``calendar``: this year (next year from 1 November) without an official holiday
        arrangement, and the warning to show (``calendar.status``)."""
        with self.db.session() as s:
            ready = _derived_ready(s)
        status = calendar.status(_now())
        out = {"service": self.name, "outbox": backlog(self.db),
               "revocations": self.revocations.status(),
               "calendar": {"provisional_years": status["provisional_years"],
                            "warning": status["warning"]}}
        if not ready:
            out["warnings"] = ["statistics counters and alert clocks are not filled for "
                               "this version: run `liandong rebuild-tracker` once"]
        return out

    @rpc
    def calendar_status(self):
        """This year's and next year's holiday calendar sources and the warning."""
        return calendar.status(_now())

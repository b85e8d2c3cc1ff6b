"""nameko adapter of the alerts service (线上+线下联动): intake of online alerts from
monitoring platforms, roadside sites and the 12328 hotline system, the tasks they become
(the shared handoff RPC: get, list, act, procedure, health), the escalation sweep, and
the result that opens a case through police_handoff / market_referral.

Intake (``intake``) is called by the gateway (``POST /api/v1/alerts``, a system client's
own credentials) and by ``liandong alerts send|replay``, with a token of role
``alert_source``. Each alert is checked against its kind (contracts/standards/alerts.yaml),
applied once per (source, alert id), joined to the open task of its target within the
window, or made a task for its county's team — record, step and event in one
transaction (outbox).

The sweep (``ALERTS_SWEEP_SECONDS``, default 5) escalates a missed ack or arrival to the
county centre, then to the city centre; each escalation is a step saved conditionally
on the step read, so replicas sweeping at once cannot publish it twice.
"""
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import structlog
from nameko.timer import timer
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from services.alerts import domain
from services.alerts import reference as ref
from services.alerts import store as st
from services.alerts.store import handoffs
from shared import handoffs as handoff  # module import: nameko run must not see the base
from shared.auth import require_role, verify_token
from shared.errors import InvalidTransition
from shared.logging import configure_logging
from shared.messaging import backlog
from shared.nameko_ext import Database, OutboxRelay, RpcProxy, rpc
from shared.revocations import Revocations
from shared.tokenkeys import check_startup

configure_logging("alerts")
check_startup("alerts")   # production: no start without fit token keys
log = structlog.get_logger(__name__)

SWEEP_SECONDS = float(os.environ.get("ALERTS_SWEEP_SECONDS", "5"))
# alerts a minute (applied + dead-lettered, all sources) from which intake is a storm
STORM_PER_MINUTE = int(os.environ.get("ALERTS_STORM_PER_MINUTE", "600"))
OPERATORS = {"operator", "coordinator", "city_command"}
# a bad alerts.yaml, ALERTS_PERIODS or ALERTS_DEDUPE_WINDOW stops the service at start
ref.reference()
ref.periods()
ref.window()
domain.procedure()


def _now() -> datetime:
    return datetime.now(UTC)


class AlertsService(handoff.HandoffService):
    name = "alerts"
    domain = domain
    handoffs = handoffs

    db = Database(handoffs.store)
    relay = OutboxRelay(handoffs.store)
    revocations = Revocations()      # refuses revoked tokens, fails closed
    police_handoff = RpcProxy("police_handoff")
    market_referral = RpcProxy("market_referral")

    # ------------------------------------------------------------------ intake
    @rpc
    def intake(self, token, alert):
        """Apply one alert: {outcome: created|merged|duplicate, task_id, case_number,
        county, handler_unit, state, repeats, urgency}. A bad alert is InvalidInput
        (HTTP 422) naming its fields; nothing is stored for it."""
        actor = verify_token(token)
        require_role(actor, {"alert_source"}, "send alerts")
        data = ref.validate_alert(alert)
        for attempt in (1, 2, 3):
            try:
                with self.db.transaction() as s:
                    return st.apply_alert(s, actor, data, _now(),
                                          for_update=self.db.is_postgres)
            except (IntegrityError, InvalidTransition):
                # the same message id or target was applied concurrently: apply again,
                # which now finds it (duplicate / merged)
                if attempt == 3:
                    raise
        raise AssertionError("unreachable")

    @rpc
    def kinds(self, token):
        """The kinds of alert, domains, sites, berths and the periods in force."""
        verify_token(token)
        return ref.reference().to_dict()

    # ------------------------------------------------------------------ steps
    @rpc
    def act(self, token, handoff_id, command, payload=None, idempotency_key=None):
        """A step of a task. ``dispose`` with a result ``case_opened`` whose case is a
        criminal or market referral opens it first (that service's create, with the
        caller's token and a key derived from the task, so a retry opens it once) and
        records its id; the referral names the task."""
        actor = verify_token(token)
        payload = payload or {}
        if command == "dispose" and isinstance(payload, dict):
            payload = self._open_case(token, actor, handoff_id, payload)
        result = super().act(token, handoff_id, command, payload, idempotency_key)
        if result["state"] == "closed":
            with self.db.transaction() as s:
                st.release_target(s, result)
        return result

    def _open_case(self, token, actor, task_id: str, payload: dict) -> dict:
        with self.db.session() as s:
            rec = self.handoffs.load(s, task_id)
        self._visible(actor, rec)
        if rec["state"] != "on_site":
            return payload     # a retry of a done step (recalled by its key), or a 409
        data = domain.check(rec, "dispose", actor, payload)
        case = data.get("case")
        if not case or case["kind"] == "administrative" or case.get("referral_id"):
            return payload
        draft = dict(case["referral"])
        note = f"【源于预警处置指令 {rec['case_number']}（{rec['alert_title']}）】"
        key = f"alert-task-{task_id}-{case['kind']}"
        if case["kind"] == "criminal_referral":
            draft["summary"] = note + str(draft.get("summary") or "")
            opened = self.police_handoff.create(token, "draft", draft, key)
        else:
            draft["findings"] = note + str(draft.get("findings") or "")
            draft["linked"] = [*(draft.get("linked") or []), {"kind": "alert_task",
                                                               "id": task_id}]
            opened = self.market_referral.create(token, "send", draft, key)
        log.info("alert_task_case_opened", task_id=task_id, case_kind=case["kind"],
                 referral_id=opened["id"])
        return {**payload, "case": {"kind": case["kind"], "referral_id": opened["id"],
                                    "case_number": opened["case_number"]}}

    @rpc
    def dead_letters(self, token, limit=100, source=None):
        """MQTT messages the intake could not apply, newest first, with their reason
        (operators, coordinators, the city centre)."""
        actor = verify_token(token)
        require_role(actor, OPERATORS, "read the alert dead letters")
        with self.db.session() as s:
            return st.list_dead_letters(s, min(int(limit), 1000), source)

    @rpc
    def intake_status(self, token):
        """Alerts applied and dead-lettered over the last minute, per source, and whether
        that is a storm (``ALERTS_STORM_PER_MINUTE``, default 600): the wall's banner."""
        verify_token(token)
        with self.db.session() as s:
            rates = st.intake_rates(s, _now() - timedelta(minutes=1))
        total = sum(rates["applied"].values()) + sum(rates["dead_letters"].values())
        sources = sorted({*rates["applied"], *rates["dead_letters"]},
                         key=lambda k: -rates["applied"].get(k, 0))
        return {"per_minute": total, "storm": total >= STORM_PER_MINUTE,
                "threshold": STORM_PER_MINUTE,
                "sources": [{"source": k, "applied": rates["applied"].get(k, 0),
                             "dead_letters": rates["dead_letters"].get(k, 0)}
                            for k in sources]}

    # ------------------------------------------------------------------ statistics
    @rpc
    def statistics(self, token, group_by="county"):
        """Alerts → tasks → cases opened, escalations and median response minutes, per
        county, domain or kind of alert, over the tasks the caller may see."""
        actor = verify_token(token)
        with self.db.session() as s:
            records = [r for r in self.handoffs.search(s, kind=domain.KIND, limit=100000)
                       if domain.can_view(actor, r)]
            alerts = st.alerts_per_task(s)
        return {"group_by": group_by, "rows": domain.statistics_of(records, alerts, group_by)}

    # ------------------------------------------------------------------ sweep
    @timer(interval=SWEEP_SECONDS)
    def sweep(self):
        """Escalate every missed ack or arrival, once per level."""
        now = _now()
        with self.db.session() as s:
            records = st.overdue_records(s, now)
        published = 0
        for rec in records:
            if not domain.due_escalations(rec, now):
                continue
            try:
                with self.db.transaction() as s:
                    done = st.escalate_due(s, rec["id"], now,
                                           for_update=self.db.is_postgres)
            except (InvalidTransition, SQLAlchemyError) as exc:
                log.info("escalation_skipped", task_id=rec["id"],
                         reason=f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            for miss, level, unit in done:
                log.warning("alert_task_escalated", task_id=rec["id"], miss=miss,
                            level=level, to=unit)
            published += len(done)
        return published

    @rpc
    def health(self):
        return {"service": self.name, "outbox": backlog(self.db), "pid": os.getpid()}

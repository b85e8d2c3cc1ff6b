"""nameko adapter of the command service (市县两级指挥中心 联勤联动): the shared handoff
RPC (create, act, get, list, procedure, health) over joint actions and assistance
requests, the reference data, the centre assessment, and the escalation sweep.

The sweep runs in every replica (``COMMAND_SWEEP_SECONDS``, default 5). An escalation
is a step of its action: it is saved like any step, conditionally on the step number
read (``HandoffStore.save``), with the step's primary key (action, step) as a second
guard, and marked in the record — so two replicas sweeping at once cannot publish the
same escalation twice; the loser's transaction rolls back and it moves on.
"""
from __future__ import annotations

import os
from datetime import datetime

import structlog
from marshmallow import ValidationError
from nameko.exceptions import UnknownService
from nameko.timer import timer
from sqlalchemy.exc import SQLAlchemyError

from services.command import assessment as assess
from services.command import domain, joint_action
from services.command import reference as ref
from services.command import store as st
from services.command.store import handoffs
from shared import calendar, casefile
from shared import handoffs as handoff  # module import: nameko run must not see the base
from shared.auth import verify_token
from shared.errors import InvalidInput, InvalidTransition, NotAllowed
from shared.logging import configure_logging
from shared.messaging import backlog
from shared.nameko_ext import Database, OutboxRelay, RpcProxy, rpc
from shared.revocations import Revocations
from shared.schemas.command import AssessmentQuerySchema
from shared.tokenkeys import check_startup

configure_logging("command")
check_startup("command")   # production: no start without fit token keys
log = structlog.get_logger(__name__)

SWEEP_SECONDS = float(os.environ.get("COMMAND_SWEEP_SECONDS", "5"))
ASSESSORS = ("city_command", "coordinator", "operator")
ref.periods()  # a bad COMMAND_PERIODS stops the service at start, naming the key


def _now() -> datetime:
    return calendar.now()   # a development test clock may shift it


class CommandService(handoff.HandoffService):
    name = "command"
    domain = domain
    handoffs = handoffs

    db = Database(handoffs.store)
    relay = OutboxRelay(handoffs.store)
    revocations = Revocations()      # refuses revoked tokens, fails closed
    alerts = RpcProxy("alerts")      # the alert tasks' part of the assessment

    def _visible(self, actor, rec):
        if not domain.can_view(actor, rec):
            raise NotAllowed(f"you may not see {rec['kind']} {rec['case_number']}",
                             {"id": ["forbidden"]})

    @rpc
    def get(self, token, handoff_id):
        actor = verify_token(token)
        with self.db.session() as s:
            rec = self.handoffs.load(s, handoff_id)
            self._visible(actor, rec)
            allowed = [t.command for t in domain.procedure(rec["kind"]).allowed(
                rec["state"], actor.role)]
            return {**handoff.public(rec), "timeline": self.handoffs.timeline(s, handoff_id),
                    "next_actions": allowed}

    @rpc
    def procedure(self, kind="joint_action"):
        """A procedure's transition table, deadlines (periods in force) and states."""
        proc = domain.procedure(kind)
        deadlines = {d: {**rule, "period": ref.period(kind, d)}
                     for d, rule in proc.deadlines.items()}
        return {"kind": kind, "table": proc.table(), "deadlines": deadlines,
                "states": proc.states, "case_file": casefile.describe(kind)}

    @rpc
    def reference(self, token):
        """Centres, neighbours, agencies, domains and the periods in force."""
        verify_token(token)
        return ref.reference().to_dict()

    @rpc
    def assessment(self, token, start, end):
        """Per-centre ack times, on-time report rate, cases per action and the ranking,
        over the joint actions dispatched in [start, end) (ISO 8601 with offset), with
        each county centre's alert tasks of the same period (the alerts service's
        ``assessment``; without it when that service is not deployed)."""
        actor = verify_token(token)
        if actor.role not in ASSESSORS:
            raise NotAllowed(f"role {actor.role!r} may not read the assessment",
                             {"role": [f"assessment requires one of: {', '.join(ASSESSORS)}"]})
        try:
            period = AssessmentQuerySchema().load({"start": start, "end": end})
        except ValidationError as exc:
            raise InvalidInput("invalid assessment period", exc.messages) from None
        with self.db.session() as s:
            actions = st.actions_with_steps(s, joint_action.KIND, period["start"],
                                            period["end"])
        try:
            alerts = self.alerts.assessment(token, period["start"].isoformat(),
                                            period["end"].isoformat())
        except UnknownService:
            log.warning("assessment_without_alerts", reason="alerts service not running")
            alerts = None
        return assess.assess(actions, period["start"], period["end"], _now(),
                             alerts=alerts)

    @timer(interval=SWEEP_SECONDS)
    def sweep(self):
        """Escalate every missed acknowledgement or report deadline, once."""
        now = _now()
        with self.db.session() as s:   # read without locks; lock only what is due
            records = st.overdue_records(s, joint_action.KIND, joint_action.OPEN_STATES, now)
        candidates = dict.fromkeys(a for a, _unit, _miss in joint_action.sweep(records, now))
        published = 0
        for action_id in candidates:
            try:
                done = self._escalate(action_id, now)
            except (InvalidTransition, SQLAlchemyError) as exc:
                # another replica escalated (or moved) this action meanwhile
                log.info("escalation_skipped", action_id=action_id,
                         reason=f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            for unit, miss in done:
                log.warning("joint_action_escalated", action_id=action_id, recipient=unit,
                            miss=miss)
            published += len(done)
        return published

    def _escalate(self, action_id: str, now: datetime) -> list[tuple[str, str]]:
        with self.db.transaction() as s:
            return st.escalate_due(s, action_id, now, for_update=self.db.is_postgres)

    @rpc
    def health(self):
        """Liveness for compose and ``make run``; ``pid`` tells replicas apart."""
        return {"service": self.name, "outbox": backlog(self.db), "pid": os.getpid(),
                "revocations": self.revocations.status()}

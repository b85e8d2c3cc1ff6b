"""A handoff procedure as data: the state machine of a standard in
``contracts/standards/<kind>.yaml`` (states, transitions with who may do them, the
deadline clocks each step starts and meets). Plain Python: services add only the
rules the table cannot say (documents present, team size, who owns the case).

A record is a plain dict with at least ``state``, ``step`` and ``clocks`` (running
deadlines by id); ``advance`` returns the new record and a description of the step.

Clocks: a step that changes the state stops every clock except those it ``keeps``; a
step that stays in its state stops those it ``stops`` (the others run on: a joint
action's acknowledgement clock runs until every recipient has met it); ``satisfies``
records whether the step met a clock in time; ``starts`` (or ``outcome_starts``) start
clocks. A deadline marked ``configurable: true`` is a local
working period, not a legal one: a deployment may set it with ``<KIND>_PERIODS`` (JSON,
e.g. ``CRIMINAL_REFERRAL_PERIODS='{"penalty_report": "60d"}'``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from shared import calendar
from shared.auth import ROLES, Actor, require_role
from shared.errors import InvalidInput, InvalidTransition
from shared.schemas.handoff import RECOMPUTE_COMMAND, recompute_event
from shared.standards import StandardError, json_object, load_standard

SAME = "same"


@dataclass(frozen=True)
class Transition:
    command: str
    sources: tuple[str, ...]
    to: str | None
    outcomes: dict
    roles: frozenset[str]
    event: str
    title: str
    article: str | None = None
    starts: tuple[str, ...] = ()
    outcome_starts: dict = field(default_factory=dict)
    satisfies: tuple[str, ...] = ()
    keeps: tuple[str, ...] = ()
    stops: tuple[str, ...] = ()
    requires_documents: bool = False

    def target(self, state: str | None, payload: dict) -> str:
        if self.outcomes:
            outcome = payload.get("outcome")
            if outcome not in self.outcomes:
                raise InvalidInput(f"{self.command} needs an outcome",
                                   {"outcome": [f"one of: {', '.join(self.outcomes)}"]})
            target = self.outcomes[outcome]
        else:
            target = self.to
        return state if target == SAME else target

    def clocks_started(self, payload: dict) -> tuple[str, ...]:
        if self.outcomes:
            started = self.outcome_starts.get(payload.get("outcome"))
            return tuple(_as_list(started))
        return self.starts


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def periods_env(kind: str) -> str:
    """The environment variable that sets a kind's configurable periods."""
    return f"{kind.upper()}_PERIODS"


def _period_overrides(kind: str, deadlines: dict, raw) -> dict[str, str]:
    """Check overrides of configurable periods: {deadline id: period}."""
    name = periods_env(kind)
    if not isinstance(raw, dict):
        raw = json_object(raw, name, "deadline id -> period")
    configurable = sorted(d for d, rule in deadlines.items() if rule.get("configurable"))
    for deadline_id, period in raw.items():
        if deadline_id not in configurable:
            raise StandardError(f"{name}: {deadline_id!r} is not a configurable period "
                                f"(configurable: {', '.join(configurable) or 'none'})")
        try:
            calendar.Period.parse(str(period))
        except ValueError as exc:
            raise StandardError(f"{name}: {deadline_id}: {exc}") from None
    return {k: str(v) for k, v in raw.items()}


class Procedure:
    """The state machine of one standard, checked for consistency on load."""

    def __init__(self, doc: dict, periods: dict | str | None = None):
        self.doc = doc
        self.kind: str = doc["kind"]
        self.states: dict = doc["states"]
        self.deadlines: dict = doc.get("deadlines", {})
        self.periods = _period_overrides(self.kind, self.deadlines, periods or {})
        self.creations = {c["command"]: self._transition(c, creation=True)
                          for c in doc.get("creations", [])}
        self.transitions: dict[tuple[str, str], Transition] = {}
        for raw in doc["transitions"]:
            t = self._transition(raw)
            for source in t.sources:
                if (source, t.command) in self.transitions:
                    raise StandardError(f"{self.kind}: {t.command} twice from {source}")
                self.transitions[(source, t.command)] = t
        self.commands = {t.command: t for t in self.transitions.values()} | self.creations

    def _transition(self, raw: dict, creation: bool = False) -> Transition:
        where = f"{self.kind}: transition {raw.get('command')!r}"
        sources = () if creation else tuple(raw.get("from", []))
        targets = [raw["to"]] if "to" in raw else list(raw.get("outcomes", {}).values())
        if not targets:
            raise StandardError(f"{where} has neither 'to' nor 'outcomes'")
        for state in list(sources) + [s for s in targets if s != SAME]:
            if state not in self.states:
                raise StandardError(f"{where} names unknown state {state!r}")
        starts = tuple(_as_list(raw.get("starts")))
        satisfies = tuple(_as_list(raw.get("satisfies")))
        keeps = tuple(_as_list(raw.get("keeps")))
        stops = tuple(_as_list(raw.get("stops")))
        outcome_starts = raw.get("outcome_starts", {})
        for clock in starts + satisfies + keeps + stops + tuple(
                c for v in outcome_starts.values() for c in _as_list(v)):
            if clock not in self.deadlines:
                raise StandardError(f"{where} names unknown deadline {clock!r}")
        for role in raw["roles"]:
            if role not in ROLES:
                raise StandardError(f"{where} names unknown role {role!r}")
        return Transition(
            command=raw["command"], sources=sources, to=raw.get("to"),
            outcomes=dict(raw.get("outcomes", {})), roles=frozenset(raw["roles"]),
            event=raw["event"], title=raw.get("title", raw["command"]),
            article=str(raw["article"]) if raw.get("article") is not None else None,
            starts=starts, outcome_starts=outcome_starts, satisfies=satisfies, keeps=keeps,
            stops=stops,
            requires_documents=bool(raw.get("requires_documents")))

    @classmethod
    @cache
    def load(cls, kind: str) -> Procedure:
        """The shipped standard with the deployment's configurable periods (cached)."""
        return cls(load_standard(kind), os.environ.get(periods_env(kind)))

    # ------------------------------------------------------------------ queries
    def transition(self, state: str, command: str) -> Transition:
        if command not in self.commands:
            raise InvalidInput(f"unknown command {command!r}",
                               {"command": [f"one of: {', '.join(sorted(self.commands))}"]})
        t = self.transitions.get((state, command))
        if t is None:
            allowed = sorted(c for (s, c) in self.transitions if s == state)
            raise InvalidTransition(
                f"{command} is not allowed in state {state!r}",
                {"command": [f"allowed in {state!r}: {', '.join(allowed) or 'none (final)'}"]})
        return t

    def allowed(self, state: str, role: str | None = None) -> list[Transition]:
        return [t for (s, _c), t in self.transitions.items()
                if s == state and (role is None or role in t.roles)]

    def is_final(self, state: str) -> bool:
        return bool(self.states[state].get("final"))

    def period(self, deadline_id: str) -> str:
        """The period in force: the standard's, or the deployment's for a configurable one."""
        return self.periods.get(deadline_id) or str(self.deadlines[deadline_id]["period"])

    def clock(self, deadline_id: str, start: datetime, period: str | None = None) -> dict:
        rule = self.deadlines[deadline_id]
        period = period or self.period(deadline_id)
        return {
            "id": deadline_id, "title": rule["title"], "period": str(period),
            "due": calendar.deadline(start, calendar.Period.parse(str(period))).isoformat(),
            "article": str(rule["article"]) if rule.get("article") is not None else None,
            "obligation": rule.get("obligation", "must"),
            "actor_role": rule.get("actor"),
            "tracked": rule.get("tracked", True),
            "started": start.isoformat(),
        }

    @staticmethod
    def overdue(record: dict, deadline_id: str, now: datetime) -> bool:
        """Whether the record's running clock ``deadline_id`` is past its due time."""
        clock = record.get("clocks", {}).get(deadline_id)
        return bool(clock) and now > datetime.fromisoformat(clock["due"])

    @staticmethod
    def next_deadline(clocks: dict) -> dict | None:
        tracked = [c for c in clocks.values() if c.get("tracked", True)]
        if not tracked:
            return None
        public = min(tracked, key=lambda c: c["due"])
        return {k: v for k, v in public.items() if k not in ("tracked", "started")}

    def table(self) -> list[dict]:
        """The transition table as plain rows (docs, console, tests)."""
        rows = []
        unique = {id(t): t for t in self.transitions.values()}   # one row per table entry
        for t in list(self.creations.values()) + list(unique.values()):
            rows.append({"command": t.command, "from": list(t.sources), "to": t.to,
                         "outcomes": t.outcomes, "roles": sorted(t.roles), "event": t.event,
                         "title": t.title, "article": t.article, "starts": list(t.starts),
                         "outcome_starts": t.outcome_starts, "satisfies": list(t.satisfies),
                         "keeps": list(t.keeps), "stops": list(t.stops)})
        return rows

    # ------------------------------------------------------------------ commands
    def advance(self, record: dict | None, command: str, actor: Actor, payload: dict,
                now: datetime) -> tuple[dict, dict]:
        """Apply ``command``; return (new record, step). Raises on role or order."""
        if record is None:
            t = self.creations.get(command)
            if t is None:
                raise InvalidInput(f"{command!r} does not create a {self.kind}",
                                   {"command": [f"one of: {', '.join(self.creations)}"]})
            state, step_no, clocks = None, 0, {}
        else:
            t = self.transition(record["state"], command)
            state, step_no, clocks = record["state"], record["step"], dict(record["clocks"])
        require_role(actor, t.roles, f"{t.command} ({t.title})")
        target = t.target(state, payload)
        satisfied = []
        for clock_id in t.satisfies:
            clock = clocks.get(clock_id)
            if clock:
                satisfied.append({"id": clock_id, "due": clock["due"],
                                  "on_time": now <= datetime.fromisoformat(clock["due"])})
        if target != state:
            clocks = {c: clocks[c] for c in t.keeps if c in clocks}
        for clock_id in t.stops:
            clocks.pop(clock_id, None)
        for clock_id in t.clocks_started(payload):
            clocks[clock_id] = self.clock(clock_id, now)
        new = dict(record or {})
        new.update(state=target, step=step_no + 1, clocks=clocks,
                   deadline=self.next_deadline(clocks), updated_at=now.isoformat())
        step = {"command": t.command, "event": t.event, "title": t.title,
                "article": t.article, "from": state, "to": target, "step": step_no + 1,
                "at": now.isoformat(), "actor": actor.to_dict(), "satisfied": satisfied}
        return new, step


def recompute_clocks(record: dict, kind: str, actor: Actor, now: datetime,
                     reason: str) -> tuple[dict, dict] | None:
    """Recompute a record's running clocks from their start and period under the
    calendar in force; (new record, step) when a due time moves, else None. The step
    (``<kind>.deadline_recomputed.v1``) keeps the state and says what moved and why."""
    clocks = dict(record.get("clocks") or {})
    changes, years = [], set()
    for clock_id, clock in clocks.items():
        if not clock.get("started") or not clock.get("period"):
            continue
        due = calendar.deadline(datetime.fromisoformat(clock["started"]),
                                calendar.Period.parse(str(clock["period"])))
        previous = datetime.fromisoformat(clock["due"])
        if due != previous:
            changes.append({"deadline_id": clock_id, "period": str(clock["period"]),
                            "started": clock["started"], "previous_due": clock["due"],
                            "due": due.isoformat()})
            clocks[clock_id] = {**clock, "due": due.isoformat()}
            years |= {calendar.to_local(previous).year, calendar.to_local(due).year}
    if not changes:
        return None
    sources = [{k: v for k, v in calendar.year_calendar(y).describe().items()
                if k in ("year", "source", "reference")} for y in sorted(years)]
    new = {**record, "step": record["step"] + 1, "clocks": clocks,
           "deadline": Procedure.next_deadline(clocks), "updated_at": now.isoformat()}
    step = {"command": RECOMPUTE_COMMAND, "event": recompute_event(kind),
            "title": "deadline recomputed", "article": None, "from": record["state"],
            "to": record["state"], "step": record["step"] + 1, "at": now.isoformat(),
            "actor": actor.to_dict(), "satisfied": [],
            "details": {"reason": reason, "changes": changes, "calendar": sources}}
    return new, step

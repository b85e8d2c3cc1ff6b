"""以罚代刑 supervision: plain Python, no nameko/SQLAlchemy.

* **Who sees what.** Penalty decisions and the candidates among them: the procuratorate
  (of its county when its token names one) and the coordinators (``OVERSEERS``). An
  inquiry: the procuratorate unit that opened it, the agency unit it is addressed to,
  and the overseers — nobody else (not the police, not other agencies).
* **Candidates.** A decision is *suspect* when its facts meet a judgment rule whose
  route is the police (penalties.evaluate); it is a *candidate* while no criminal
  referral covers it (penalties.covers).
* **The inquiry** is the procedure ``contracts/standards/supervision_inquiry.yaml``:
  opened by the procuratorate from a decision, answered by the agency's head.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from services.supervision import penalties
from shared.auth import Actor, require_role
from shared.errors import InvalidInput, NotAllowed
from shared.procedure import Procedure
from shared.schemas.common import load_payload
from shared.schemas.handoff import event_data
from shared.schemas.supervision_inquiry import COMMAND_SCHEMAS

KIND = "supervision_inquiry"
OVERSEERS = ("coordinator", "operator", "system")
READERS = ("procuratorate",) + OVERSEERS           # decisions and candidates
IMPORTERS = ("procuratorate", "coordinator", "operator", "system")


def procedure() -> Procedure:
    return Procedure.load(KIND)


# ------------------------------------------------------------------ decisions

def require_reader(actor: Actor, action: str = "see penalty decisions") -> None:
    require_role(actor, READERS, action)


def decision_county(actor: Actor) -> str | None:
    """The county an actor's view of decisions is limited to (None: all)."""
    return actor.county if actor.role == "procuratorate" else None


def may_see_decision(actor: Actor, decision: dict) -> bool:
    if actor.role in OVERSEERS:
        return True
    return actor.role == "procuratorate" and actor.county in (None, decision["county"])


def status(decision: dict, covering: list[dict], inquiries: list[dict]) -> dict:
    """A decision as the console shows it: suspect, referred (by which referral and
    why), candidate, and its inquiries."""
    referred = [{"referral_id": r["referral_id"], "case_number": r["case_number"],
                 "state": r["state"], "matched_by": penalties.covers(r, decision)}
                for r in covering]
    suspect = bool(decision["matches"])
    return {**decision, "suspect": suspect, "referred_by": referred,
            "candidate": suspect and not referred,
            "inquiries": [{"id": i["id"], "state": i["state"],
                           "target_unit": i["counterpart_unit"],
                           "deadline": i.get("deadline")} for i in inquiries]}


def statistics(decisions: int, suspects: list[dict], referred_ids: set[str],
               inquiries: list[dict], imports: int) -> dict:
    """Decisions imported, matches, candidates, inquiries by state and the transfers
    that followed an inquiry (the agency recorded one, or a referral of the decision
    appeared after the inquiry was opened)."""
    by_state: dict[str, int] = {}
    followed = 0
    for i in inquiries:
        by_state[i["state"]] = by_state.get(i["state"], 0) + 1
        if i["state"] == "transferred" or i.get("referral_after"):
            followed += 1
    return {"imports": imports, "decisions": decisions, "matches": len(suspects),
            "referred": sum(1 for d in suspects if d["case_number"] in referred_ids),
            "candidates": sum(1 for d in suspects if d["case_number"] not in referred_ids),
            "inquiries": len(inquiries), "inquiries_by_state": by_state,
            "transfers_followed": followed}


# ------------------------------------------------------------------ the inquiry

def can_view(actor: Actor, rec: dict) -> bool:
    if actor.role in OVERSEERS:
        return True
    if actor.role == "procuratorate":
        return actor.unit == rec["owner_unit"]
    if actor.role == "agency_head":
        return actor.unit == rec["counterpart_unit"]
    return False


def party_of(rec: dict, command: str) -> str:
    """The unit that takes ``command``: the procuratorate that opened the inquiry, or
    the agency it is addressed to."""
    roles = procedure().commands[command].roles
    return rec["owner_unit"] if "procuratorate" in roles else rec["counterpart_unit"]


def may_act(actor: Actor, rec: dict, command: str) -> bool:
    """Whether ``actor``'s unit is the party of the inquiry that takes ``command``."""
    return actor.unit == party_of(rec, command)


def open_inquiry(actor: Actor, payload, decision: dict | None, open_inquiries: list[dict],
                 now: datetime) -> tuple[dict, dict]:
    """The procuratorate asks the agency why a decision that meets a criminal threshold
    was not transferred (Decree 310 art. 14 ¶1, art. 11 ¶1)."""
    proc = procedure()
    t = proc.creations["open_inquiry"]
    require_role(actor, t.roles, f"{t.command} ({t.title})")
    data = load_payload(COMMAND_SCHEMAS, "open_inquiry", payload)
    if decision is None:
        raise InvalidInput(f"no penalty decision {data['decision_id']!r}",
                           {"decision_id": ["not an imported decision's case number"]})
    if not may_see_decision(actor, decision):
        raise NotAllowed("the decision is outside your county", {"decision_id": ["forbidden"]})
    if not decision["matches"]:
        raise InvalidInput("the decision meets no criminal threshold of the judgment "
                           "standards", {"decision_id": ["not a 以罚代刑 candidate"]})
    if open_inquiries:
        raise InvalidInput("an inquiry into this decision is already open",
                           {"decision_id": [f"open inquiry {open_inquiries[0]['id']}"]})
    data["target_unit"] = data.get("target_unit") or decision["unit"]
    data["case_number"] = decision["case_number"]
    data["rules"] = [m["rule_id"] for m in decision["matches"]]
    rec = {"id": str(uuid.uuid4()), "kind": KIND, "direction": "procuratorate_to_agency",
           "case_number": decision["case_number"], "county": decision["county"],
           "owner_unit": actor.unit, "counterpart_unit": data["target_unit"],
           "decision_id": decision["case_number"], "question": data["question"],
           "recommendations": decision["matches"], "plate": decision.get("plate"),
           "parties": [{**p, "role": "party"} for p in decision["parties"]], "answers": [],
           "created_at": now.isoformat(), "created_by": actor.to_dict()}
    state, step = proc.advance(None, "open_inquiry", actor, data, now)
    return {**rec, **state}, {**step, "details": data}


def act(rec: dict, command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    proc = procedure()
    t = proc.transition(rec["state"], command)
    require_role(actor, t.roles, f"{t.command} ({t.title})")
    party = party_of(rec, command)
    if actor.unit != party:
        raise NotAllowed(f"{actor.unit!r} is not a party of inquiry {rec['id']}",
                         {"unit": [f"{command} is for {party}"]})
    data = load_payload(COMMAND_SCHEMAS, command, payload)
    new, step = proc.advance(rec, command, actor, data, now)
    new = {**new, "answers": list(rec.get("answers", []))}
    entry = {"command": command, **data, "at": now.isoformat(), "unit": actor.unit}
    new["answers"].append(entry)
    if command == "record_transfer":
        new["transfer"] = entry
    return new, {**step, "details": data}


def create(command: str, actor: Actor, payload, now: datetime):  # HandoffDomain protocol
    raise InvalidInput("open an inquiry with open_inquiry", {"command": ["open_inquiry"]})


def event_payload(rec: dict, step: dict) -> dict:
    return event_data(KIND, rec, step)

"""Criminal referral (行刑衔接) domain: plain Python, no nameko/SQLAlchemy/pika.

The procedure itself is the table in ``contracts/standards/criminal_referral.yaml``
(run by ``shared.procedure``); this module adds what the table cannot say: payload
validation, the documents a transfer must carry (Decree art. 6), the size of the case
team (art. 5), who owns a referral and may see it, and the judgment standards'
recommendation recorded with the case.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from shared.auth import Actor, NotAllowed
from shared.errors import InvalidInput
from shared.procedure import Procedure
from shared.schemas.common import check_document_kinds, load_payload
from shared.schemas.criminal_referral import COMMAND_SCHEMAS
from shared.schemas.handoff import event_data
from shared.standards import FactError, judgment_rules

KIND = "criminal_referral"


def procedure() -> Procedure:
    return Procedure.load(KIND)


def document_kinds() -> dict[str, dict]:
    return {d["id"]: d for d in procedure().doc["documents"]}


def validate(command: str, payload) -> dict:
    """Load a command's payload with its schema; InvalidInput names each bad field."""
    data = load_payload(COMMAND_SCHEMAS, command, payload)
    check_document_kinds(data.get("documents"), document_kinds())
    return data


def recommend(facts: dict) -> list[dict]:
    """The judgment standards' recommendations for a case's facts (never automatic)."""
    try:
        return [r.to_dict() for r in judgment_rules().evaluate(facts)]
    except FactError as exc:
        raise InvalidInput("invalid case facts", {"facts": exc.errors}) from None


# ------------------------------------------------------------------ ownership and scope

def can_view(actor: Actor, rec: dict) -> bool:
    """Each agency sees only what it may (DESIGN.md security rules)."""
    role = actor.role
    if role in ("coordinator", "city_command", "operator", "system"):
        return True
    if role in ("agency_head", "county_command"):
        return actor.county is None or actor.county == rec["county"]
    if role == "enforcement_unit":
        return actor.unit == rec["owner_unit"]
    if role == "police":
        return actor.unit in rec.get("police_units", [])
    if role == "procuratorate":
        return actor.unit is not None and actor.unit == rec.get("procuratorate_unit")
    return False


def check_may_act(actor: Actor, rec: dict) -> None:
    """Beyond the role: the acting unit must be the one this referral is with."""
    role = actor.role
    ok = {
        "enforcement_unit": actor.unit == rec["owner_unit"],
        "agency_head": actor.county is None or actor.county == rec["county"],
        "police": actor.unit == rec.get("counterpart_unit"),
        "procuratorate": actor.unit == rec.get("procuratorate_unit"),
    }.get(role, False)
    if not ok:
        raise NotAllowed(f"{actor.unit!r} is not a party to referral {rec['id']}",
                         {"unit": [f"this referral is with {rec.get('counterpart_unit')!r} "
                                   f"and owned by {rec['owner_unit']!r}"]})


# ------------------------------------------------------------------ commands

def create(command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    """Draft a referral (agency) or open a reverse transfer (police)."""
    data = validate(command, payload)
    if command == "draft":
        rec = {
            "id": str(uuid.uuid4()), "kind": KIND, "direction": "agency_to_police",
            "case_number": data["case_number"], "county": data["county"],
            "owner_unit": actor.unit, "counterpart_unit": None, "police_units": [],
            "procuratorate_unit": None, "plate": data.get("plate"),
            "summary": data["summary"], "facts": data["facts"],
            "recommendations": recommend(data["facts"]), "parties": data["parties"],
            "team": data["team"], "prior_penalties": data["prior_penalties"],
            "documents": {}, "created_at": now.isoformat(), "created_by": actor.to_dict(),
        }
        _add_documents(rec, data["documents"], now)
    else:
        rec = {
            "id": str(uuid.uuid4()), "kind": KIND, "direction": "police_to_agency",
            "case_number": data["police_case_number"], "county": data["county"],
            "owner_unit": data["target_unit"], "counterpart_unit": actor.unit,
            "police_units": [actor.unit], "procuratorate_unit": None,
            "plate": data.get("plate"), "summary": data["summary"], "facts": {},
            "recommendations": [], "parties": data["parties"], "team": [],
            "prior_penalties": [], "documents": {}, "created_at": now.isoformat(),
            "created_by": actor.to_dict(),
        }
    state, step = procedure().advance(None, command, actor, data, now)
    return {**rec, **state}, {**step, "details": data}


def act(rec: dict, command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    """Apply one step of the procedure to a referral."""
    proc = procedure()
    transition = proc.transition(rec["state"], command)  # order first: clearest error
    data = validate(command, payload)
    new, step = proc.advance(rec, command, actor, data, now)
    check_may_act(actor, rec)
    new = {**new, "documents": dict(rec["documents"]), "police_units": list(rec["police_units"])}
    if command == "attach_documents":
        _add_documents(new, data["documents"], now)
    elif command == "request_approval":
        if data.get("team"):
            new["team"] = data["team"]
        minimum = proc.doc.get("minimum_team_size", 2)
        if len(new["team"]) < minimum:
            raise InvalidInput(
                "the case team is too small",
                {"team": [f"at least {minimum} officers must check the case (art. 5)"]})
        new["transfer_report"] = data["transfer_report"]
    elif command == "transfer":
        _add_documents(new, data["documents"], now)
        missing = [k for k in document_kinds() if k not in new["documents"]]
        if transition.requires_documents and missing:
            titles = [f"{k} ({document_kinds()[k]['title']})" for k in missing]
            raise InvalidInput("the transfer lacks required documents (art. 6)",
                               {"documents": [f"missing: {', '.join(titles)}"]})
        new["counterpart_unit"] = data["police_unit"]
        new["police_units"] = [data["police_unit"]]
        new["procuratorate_unit"] = data["procuratorate_unit"]
    elif command == "extend_review":
        rule = proc.deadlines["review_decision"]["extensions"][data["extension"]]
        clock = new["clocks"]["review_decision"]
        new["clocks"] = {**new["clocks"], "review_decision": proc.clock(
            "review_decision", datetime.fromisoformat(clock["started"]), rule["period"])}
        new["deadline"] = proc.next_deadline(new["clocks"])
    elif command == "forward":
        new["counterpart_unit"] = data["competent_authority"]
        new["police_units"].append(data["competent_authority"])
    elif command == "request_supervision" and data.get("procuratorate_unit"):
        new["procuratorate_unit"] = data["procuratorate_unit"]
    if command in ("file", "decide_reconsideration") and data.get("filing_number"):
        new["filing_number"] = data["filing_number"]
    return new, {**step, "details": data}


def _add_documents(rec: dict, documents: list, now: datetime) -> None:
    for doc in documents:
        rec["documents"][doc["kind"]] = {**doc, "attached_at": now.isoformat()}


def event_payload(rec: dict, step: dict) -> dict:
    """The event data of a step (``shared.schemas.handoff.event_data``)."""
    return event_data(KIND, rec, step)

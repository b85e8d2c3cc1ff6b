"""Market-regulation referral (市场监管移送) domain: plain Python, no nameko/SQLAlchemy/pika.

The procedure is the table in ``contracts/standards/market_referral.yaml`` (run by
``shared.procedure``); this module adds what the table cannot say:

* **direction** — one procedure travels both ways. ``send`` (transport enforcement unit or
  county command centre) refers a matter to market regulation (``transport_to_market``);
  ``send_to_transport`` (market regulation) refers one to transport
  (``market_to_transport``). Each step of the table names its ``side``: the *receiving*
  unit acknowledges, accepts or returns, investigates and reports the result; the
  *sending* unit amends, resends and closes; either may link another handoff. The
  standard's ``directions`` say which roles are sender and receiver in each direction.
* **referral kinds and evidence** — a kind may travel only the directions it lists and
  must carry its required evidence when sent and when resent after a return.
* **scope** — who may see a referral (the clocks a step keeps are the table's).

Record fields: ``sender_unit``/``receiver_unit`` (who sent, who received) and, as for every
handoff, ``owner_unit`` (the transport-side unit) and ``counterpart_unit`` (the
market-regulation unit), whatever the direction.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from shared import units
from shared.auth import Actor, require_role
from shared.errors import InvalidInput, NotAllowed
from shared.procedure import Procedure
from shared.schemas.common import check_document_kinds, load_payload
from shared.schemas.handoff import event_data
from shared.schemas.market_referral import COMMAND_SCHEMAS

KIND = "market_referral"
OVERSEERS = ("coordinator", "city_command", "operator", "system")
COUNTY_WIDE = ("county_command", "agency_head")
# direction -> the kinds of unit (contracts/units.yaml) that may receive a referral
RECEIVER_KINDS = {"transport_to_market": ("market_regulation",),
                  "market_to_transport": ("enforcement", "partner", "port_shipping",
                                          "county_centre")}


def procedure() -> Procedure:
    return Procedure.load(KIND)


def directions() -> dict[str, dict]:
    return procedure().doc["directions"]


def referral_kinds() -> dict[str, dict]:
    return procedure().doc["referral_kinds"]


def evidence_kinds() -> dict[str, dict]:
    return {e["id"]: e for e in procedure().doc["evidence"]}


def step_rule(command: str) -> dict:
    """The standard's own entry of a command (``side``, ``keeps``, ``direction``...)."""
    doc = procedure().doc
    for raw in doc.get("creations", []) + doc["transitions"]:
        if raw["command"] == command:
            return raw
    raise KeyError(command)


def describe() -> dict:
    """What the table of ``Procedure.table()`` does not carry: directions and sides,
    referral kinds with their evidence and legal basis, the evidence catalogue."""
    doc = procedure().doc
    return {"directions": doc["directions"], "referral_kinds": doc["referral_kinds"],
            "evidence": doc["evidence"],
            "sides": {t["command"]: t.get("side", "sender")
                      for t in doc["transitions"] + doc.get("creations", [])}}


# ------------------------------------------------------------------ validation

def validate(command: str, payload) -> dict:
    """Load a command's payload with its schema; InvalidInput names each bad field."""
    data = load_payload(COMMAND_SCHEMAS, command, payload)
    known = evidence_kinds()
    check_document_kinds(data.get("documents"), known, "evidence")
    unknown = [e for e in data.get("missing_evidence") or [] if e not in known]
    if unknown:
        raise InvalidInput("unknown evidence kind", {"missing_evidence": [
            f"unknown: {', '.join(unknown)}; one of: {', '.join(known)}"]})
    return data


def check_referral_kind(referral_kind: str, direction: str) -> dict:
    kinds = referral_kinds()
    rule = kinds.get(referral_kind)
    if rule is None:
        raise InvalidInput(f"unknown referral kind {referral_kind!r}",
                           {"referral_kind": [f"one of: {', '.join(kinds)}"]})
    if direction not in rule["directions"]:
        allowed = [k for k, r in kinds.items() if direction in r["directions"]]
        raise InvalidInput(
            f"{referral_kind} is not referred {direction}",
            {"referral_kind": [f"{referral_kind} ({rule['title']}) travels only "
                               f"{', '.join(rule['directions'])}; for {direction} use one "
                               f"of: {', '.join(allowed)}"]})
    return rule


def missing_evidence(rec: dict) -> list[str]:
    """Evidence the referral still lacks: what its kind requires and, after a return,
    what the receiver's last return said was missing."""
    required = list(referral_kinds()[rec["referral_kind"]]["required_evidence"])
    if rec.get("returns"):
        required += [k for k in rec["returns"][-1].get("missing_evidence", [])
                     if k not in required]
    present = {d["kind"] for d in rec["documents"]}
    return [k for k in required if k not in present]


def check_evidence(rec: dict) -> None:
    """The referral carries every piece of evidence it must carry (missing_evidence)."""
    missing = missing_evidence(rec)
    if missing:
        titles = evidence_kinds()
        kind = referral_kinds()[rec["referral_kind"]]
        raise InvalidInput(
            f"the referral lacks required evidence for {rec['referral_kind']}",
            {"documents": [f"missing for {kind['title']}: " + ", ".join(
                f"{k} ({titles[k]['title']})" for k in missing)]})


# ------------------------------------------------------------------ ownership and scope

def can_view(actor: Actor, rec: dict) -> bool:
    """Market regulation sees the referrals to and from its unit, a transport unit its
    own, a county command centre (and agency head) its county's, coordinators and the
    city command centre all."""
    role = actor.role
    if role in OVERSEERS:
        return True
    if role == "market_regulation":
        return actor.unit == rec["counterpart_unit"]
    if role == "enforcement_unit":
        return actor.unit == rec["owner_unit"]
    if role in COUNTY_WIDE:
        return actor.unit == rec["owner_unit"] or (
            actor.county is not None and actor.county == rec["county"])
    return False


def side_of(actor: Actor, rec: dict) -> str | None:
    """'sender' or 'receiver' if ``actor`` is that party of the referral, else None."""
    direction = directions()[rec["direction"]]
    if actor.role in direction["sender_roles"] and actor.unit == rec["sender_unit"]:
        return "sender"
    if actor.role in direction["receiver_roles"] and actor.unit == rec["receiver_unit"]:
        return "receiver"
    return None


def check_may_act(actor: Actor, rec: dict, command: str) -> None:
    """The step's side (standard: ``side``) must be the actor's side of this referral."""
    side = step_rule(command).get("side", "sender")
    direction = directions()[rec["direction"]]
    sides = ("sender", "receiver") if side == "either" else (side,)
    roles = sorted({r for s in sides for r in direction[f"{s}_roles"]})
    if actor.role not in roles:
        raise NotAllowed(
            f"role {actor.role!r} may not {command} a {rec['direction']} referral",
            {"role": [f"{command} is for the {' or '.join(sides)} ({direction['title']}): "
                      f"one of {', '.join(roles)}"]})
    actual = side_of(actor, rec)
    if actual not in sides:
        units = " or ".join(rec[f"{s}_unit"] for s in sides)
        raise NotAllowed(f"{actor.unit!r} is not the {' or '.join(sides)} of referral "
                         f"{rec['id']}", {"unit": [f"{command} is for {units}"]})


def may_act(actor: Actor, rec: dict, command: str) -> bool:
    """Whether ``actor``'s side of the referral takes ``command`` (for next actions)."""
    try:
        check_may_act(actor, rec, command)
    except NotAllowed:
        return False
    return True


# ------------------------------------------------------------------ commands

def create(command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    """Send a referral: ``send`` (transport -> market) or ``send_to_transport``."""
    proc = procedure()
    t = proc.creations.get(command)
    if t is None:
        raise InvalidInput(f"{command!r} does not create a {KIND}",
                           {"command": [f"one of: {', '.join(proc.creations)}"]})
    require_role(actor, t.roles, f"{t.command} ({t.title})")
    data = validate(command, payload)
    direction = step_rule(command)["direction"]
    if data.get("direction") not in (None, direction):
        other = directions()[data["direction"]]["creation"]
        raise InvalidInput(f"{command} sends {direction}",
                           {"direction": [f"{command} sends {direction}; "
                                          f"{data['direction']} is sent with {other}"]})
    data["direction"] = direction
    check_referral_kind(data["referral_kind"], direction)
    # the county is the sender's own; the receiver is a unit of the receiving side
    units.check_serves(actor, data["county"])
    units.check_named("target_unit", data["target_unit"], RECEIVER_KINDS[direction],
                      not_unit=actor.unit, county=data["county"])
    transport_unit, market_unit = (actor.unit, data["target_unit"]) \
        if direction == "transport_to_market" else (data["target_unit"], actor.unit)
    rec = {
        "id": str(uuid.uuid4()), "kind": KIND, "direction": direction,
        "referral_kind": data["referral_kind"], "case_number": data["case_number"],
        "county": data["county"], "sender_unit": actor.unit,
        "receiver_unit": data["target_unit"], "owner_unit": transport_unit,
        "counterpart_unit": market_unit, "summary": data["summary"],
        "findings": data.get("findings"), "plate": data.get("plate"),
        "parties": data["parties"], "contact": data.get("contact"), "documents": [],
        "linked": [], "returns": [], "result": None, "created_at": now.isoformat(),
        "created_by": actor.to_dict(),
    }
    _add_documents(rec, data["documents"], now)
    _add_links(rec, data["linked"])
    check_evidence(rec)
    state, step = proc.advance(None, command, actor, data, now)
    return {**rec, **state}, {**step, "details": data}


def act(rec: dict, command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    """Apply one step of the procedure to a referral."""
    proc = procedure()
    t = proc.transition(rec["state"], command)        # order first: clearest error
    require_role(actor, t.roles, f"{t.command} ({t.title})")
    check_may_act(actor, rec, command)
    data = validate(command, payload)
    new, step = proc.advance(rec, command, actor, data, now)
    new = {**new, "documents": list(rec["documents"]), "linked": list(rec["linked"]),
           "returns": list(rec["returns"])}
    if command == "acknowledge":
        new["receipt"] = {**data, "at": now.isoformat()}
    elif command == "accept":
        new["acceptance_number"] = data.get("acceptance_number")
    elif command == "return":
        new["returns"].append({**data, "at": now.isoformat(), "unit": actor.unit})
    elif command == "amend":
        _add_documents(new, data["documents"], now)
        _add_links(new, data["linked"])
        for key in ("summary", "findings", "parties"):
            if data.get(key):
                new[key] = data[key]
    elif command == "resend":
        _add_documents(new, data["documents"], now)
        if step_rule(command).get("requires_evidence"):
            check_evidence(new)
    elif command == "start_investigation":
        new["investigation_number"] = data.get("investigation_number")
    elif command == "report_result":
        new["result"] = {**data, "at": now.isoformat()}
    elif command == "link":
        if any(link["id"] == rec["id"] for link in data["linked"]):
            raise InvalidInput("a referral cannot link itself", {"linked": ["own id"]})
        _add_links(new, data["linked"])
    return new, {**step, "details": data}


def _add_documents(rec: dict, documents: list, now: datetime) -> None:
    rec["documents"].extend({**d, "attached_at": now.isoformat()} for d in documents)


def _add_links(rec: dict, links: list) -> None:
    for link in links:
        if link not in rec["linked"]:
            rec["linked"].append(dict(link))


def event_payload(rec: dict, step: dict) -> dict:
    """The event data of a step (``shared.schemas.handoff.event_data``). The
    ``case_number`` is the one a linked criminal referral carries too."""
    return event_data(KIND, rec, step)

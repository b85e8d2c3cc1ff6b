"""Reliability rules through the running services: dead letters with reasons, the
inbox against redelivery, order by sequence, and relays killed mid-way."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pika
import pytest
from sqlalchemy import func, select

from services.police_handoff import domain
from services.police_handoff import store as ph_store
from services.tracker import store as tr_store
from shared import deadletters, signing
from shared import envelope as env
from shared.messaging import messaging_tables
from tests.conftest import wait_for
from tests.helpers import COORDINATOR, UNIT, draft_payload, token

pytestmark = pytest.mark.e2e


def publish(uri: str, body: bytes, routing_key: str, message_id: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish(env.EXCHANGE, routing_key, body, pika.BasicProperties(
            delivery_mode=2, message_id=message_id, content_type="application/json"))
    finally:
        conn.close()


def dead_letter(uri: str, message_id: str, queue: str | None = None):
    """The dead letter of a message (that failed in ``queue``, when given)."""
    found = [d for d in deadletters.list_dead_letters(1000, uri=uri)
             if d["message_id"] == message_id and queue in (None, d["queue"])]
    return found[0] if found else None


def real_envelopes(stack, n_steps: int = 2) -> list[dict]:
    """Envelopes of a referral's first steps, built by the real domain and signed with
    the police_handoff key of the running stack."""
    now = datetime.now(timezone.utc)
    rec, step = domain.create("draft", UNIT, draft_payload(f"OOO-{uuid.uuid4().hex[:6]}"), now)
    out = [(rec, step)]
    if n_steps > 1:
        rec2, step2 = domain.act(rec, "request_approval", UNIT, {"transfer_report": "r"}, now)
        out.append((rec2, step2))
    return [signing.sign(env.make_envelope(
        event_type=s["event"], source=ph_store.SOURCE, subject=r["id"],
        data=domain.event_payload(r, s), sequence=r["step"], actor=UNIT), stack.tmp / "keys")
        for r, s in out]


def tracked(stack, handoff_id: str, step: int):
    def seen():
        with stack.rpc() as rpc:
            try:
                found = rpc.tracker.handoff(token(COORDINATOR), handoff_id)
            except Exception:  # noqa: BLE001 - not there yet
                return None
        return found if found["step"] >= step else None
    return wait_for(seen, message=f"tracker at step {step} of {handoff_id}")


def test_poison_messages_are_dead_lettered_with_reason(stack):
    good = real_envelopes(stack, 1)[0]
    keys = stack.tmp / "keys"   # correctly signed, wrong inside:
    unknown = signing.sign({**good, "id": str(uuid.uuid4()),
                            "type": "criminal_referral.teleported.v1"}, keys)
    bad_payload = signing.sign({**good, "id": str(uuid.uuid4()),
                                "data": {**good["data"], "step": "one"}}, keys)
    no_id = {k: v for k, v in good.items() if k != "id"}
    unsigned = {k: v for k, v in good.items() if k not in ("signature", "signer")}
    altered = {**good, "data": {**good["data"], "case_number": "TAMPERED"}}
    forged_source = signing.sign({**good, "id": str(uuid.uuid4()),
                                  "source": "/wenzhou/coordination/tracker"}, keys)
    forged_source["source"] = good["source"]   # tracker's signature, police_handoff's name
    cases = {
        "not-json": (b"{this is not json", "criminal_referral.drafted.v1", "not JSON"),
        "unknown": (env.encode(unknown), unknown["type"], "unknown event type"),
        "bad-payload": (env.encode(bad_payload), good["type"], "step"),
        "no-id": (json.dumps(no_id).encode(), good["type"], "id"),
        "unsigned": (env.encode(unsigned), good["type"], "unsigned envelopes are refused"),
        "altered": (env.encode(altered), good["type"], "forged or altered"),
        "forged-source": (env.encode(forged_source), good["type"], "forged source"),
    }
    run = uuid.uuid4().hex[:6]
    for name, (body, key, _reason) in cases.items():
        publish(stack.amqp_uri, body, key, f"{run}-{name}")
    for name, (_body, _key, reason) in cases.items():
        # the tracker takes every event (supervision also criminal_referral.*: it dead-
        # letters the same poison in its own queue)
        letter = wait_for(lambda n=name: dead_letter(stack.amqp_uri, f"{run}-{n}",
                                                     "tracker.events"),
                          message=f"dead letter {name}")
        assert letter["queue"] == "tracker.events"
        assert reason in letter["reason"], (name, letter["reason"])
    # the consumer kept going: a real event after the poison is applied
    publish(stack.amqp_uri, env.encode(good), good["type"], good["id"])
    assert tracked(stack, good["subject"], 1)["case_number"] == good["data"]["case_number"]


def test_redelivered_event_is_applied_once(stack):
    first, second = real_envelopes(stack, 2)
    for _ in range(3):   # the same event three times (a redelivery, a replay, a retry)
        publish(stack.amqp_uri, env.encode(first), first["type"], first["id"])
    publish(stack.amqp_uri, env.encode(second), second["type"], second["id"])
    found = tracked(stack, first["subject"], 2)   # FIFO: the copies were handled before
    assert [e["event_id"] for e in found["timeline"]] == [first["id"], second["id"]]
    store = stack.store("tracker")
    inbox = messaging_tables(tr_store.metadata)["inbox"]
    with store.session() as s:
        count = s.execute(select(func.count()).where(inbox.c.event_id == first["id"])).scalar()
    store.dispose()
    assert count == 1


def test_out_of_order_event_is_parked_until_its_predecessor(stack):
    first, second, = real_envelopes(stack, 2)
    publish(stack.amqp_uri, env.encode(second), second["type"], second["id"])
    store = stack.store("tracker")
    wait_for(lambda: _count(store, tr_store.parked, tr_store.parked.c.subject == second[
        "subject"]) == 1, message="step 2 parked")
    assert _count(store, tr_store.handoffs,
                  tr_store.handoffs.c.handoff_id == second["subject"]) == 0
    publish(stack.amqp_uri, env.encode(first), first["type"], first["id"])
    found = tracked(stack, first["subject"], 2)   # step 1 applied, then the parked step 2
    assert [e["step"] for e in found["timeline"]] == [1, 2]
    assert _count(store, tr_store.parked, tr_store.parked.c.subject == second["subject"]) == 0
    store.dispose()


def _count(store, table, where) -> int:
    with store.session() as s:
        return s.execute(select(func.count()).select_from(table).where(where)).scalar()


def dead_lettered_for_want_of_key(stack) -> tuple[dict, dict]:
    """(event, its dead letter): a real event published while the tracker lacks the
    publisher's public key; the key is back (the fix) when this returns."""
    event = real_envelopes(stack, 1)[0]
    pub = stack.tmp / "keys" / "police_handoff.pub"
    hidden = pub.with_suffix(".away")
    pub.rename(hidden)
    try:
        publish(stack.amqp_uri, env.encode(event), event["type"], event["id"])
        letter = wait_for(lambda: dead_letter(stack.amqp_uri, event["id"], "tracker.events"),
                          message="dead-lettered for want of the key")
    finally:
        hidden.rename(pub)              # the fix: the key is distributed
    return event, letter


def test_dead_letter_replayed_from_the_cli_after_a_fix(stack):
    """An event signed by a publisher whose public key has not reached this consumer yet
    is dead-lettered; once the key is installed, the operator replays it."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    event, letter = dead_lettered_for_want_of_key(stack)
    assert "no public key" in letter["reason"]
    out = subprocess.run([sys.executable, "-m", "shared.cli", "dead-letters", "replay",
                          "--queue", "tracker.events"], cwd=ROOT, env=stack.env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "replayed" in out.stdout, out.stderr
    assert tracked(stack, event["subject"], 1)["timeline"][0]["event_id"] == event["id"]
    assert dead_letter(stack.amqp_uri, event["id"], "tracker.events") is None
    _replay_the_rest(stack)


def _replay_the_rest(stack) -> None:
    """Other consumers of the event (supervision) dead-lettered it too: replay theirs, so
    no test after this one finds it."""
    from shared import deadletters
    deadletters.replay(uri=stack.amqp_uri)


def _unsent(stack) -> int:
    store = stack.store("police_handoff")
    outbox = messaging_tables(ph_store.metadata)["outbox"]
    with store.session() as s:
        n = s.execute(select(func.count()).where(outbox.c.sent_at.is_(None))).scalar()
    store.dispose()
    return n


def _create_under_fault(stack, fault: str) -> str:
    stack.stop("police_handoff")
    proc = stack.start("police_handoff", LIANDONG_FAULT=fault)
    number = f"CRASH-{uuid.uuid4().hex[:6]}"
    try:
        with stack.rpc(timeout=5) as rpc:
            rpc.police_handoff.create(token(UNIT), "draft", draft_payload(number))
    except Exception:  # noqa: BLE001 - the process may die before it replies
        pass
    wait_for(lambda: proc.poll() is not None, message="the faulty relay to die")
    assert proc.returncode in (137, -9), stack.log("police_handoff")[-2000:]
    stack.procs.pop("police_handoff")
    store = stack.store("police_handoff")
    with store.session() as s:
        referral_id = s.execute(select(ph_store.handoffs.handoffs.c.id).where(
            ph_store.handoffs.handoffs.c.case_number == number)).scalar_one()
    store.dispose()
    return referral_id


def test_relay_killed_between_commit_and_publish_loses_nothing(stack):
    referral_id = _create_under_fault(stack, "crash_before_publish")
    assert _unsent(stack) >= 1       # committed, never published
    stack.start("police_handoff")    # a normal restart relays the backlog
    found = tracked(stack, referral_id, 1)
    assert len(found["timeline"]) == 1
    wait_for(lambda: _unsent(stack) == 0, message="outbox drained")


def test_relay_killed_between_publish_and_mark_applies_once(stack):
    referral_id = _create_under_fault(stack, "crash_after_publish")
    assert _unsent(stack) >= 1       # published but not marked: will be published again
    stack.start("police_handoff")
    wait_for(lambda: _unsent(stack) == 0, message="outbox drained")
    with stack.rpc() as rpc:          # a later step proves the duplicate was consumed first
        rpc.police_handoff.act(token(UNIT), referral_id, "request_approval",
                               {"transfer_report": "r"})
    found = tracked(stack, referral_id, 2)
    assert [e["step"] for e in found["timeline"]] == [1, 2]


def test_consumer_killed_between_commit_and_ack_applies_once(stack):
    first, second = real_envelopes(stack, 2)
    stack.stop("tracker")
    proc = stack.start("tracker", LIANDONG_FAULT="crash_before_ack")
    publish(stack.amqp_uri, env.encode(first), first["type"], first["id"])
    wait_for(lambda: proc.poll() is not None, message="the tracker to die before its ack")
    stack.procs.pop("tracker")
    store = stack.store("tracker")
    inbox = messaging_tables(tr_store.metadata)["inbox"]
    with store.session() as s:         # committed before the crash
        assert s.execute(select(func.count()).where(inbox.c.event_id == first["id"])
                         ).scalar() == 1
    store.dispose()
    stack.start("tracker")             # the unacked message is delivered again
    publish(stack.amqp_uri, env.encode(second), second["type"], second["id"])
    found = tracked(stack, first["subject"], 2)
    assert [e["event_id"] for e in found["timeline"]] == [first["id"], second["id"]]


def test_dead_letter_tools_take_a_failover_uri_list(stack):
    """AMQP_URI may be kombu's failover list; the pika-based tools try each node in
    order (the first here is a closed port, as a stopped node would be)."""
    from tests.conftest import free_port
    down = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    listed = deadletters.list_dead_letters(10, uri=f"{down};{stack.amqp_uri}")
    assert isinstance(listed, list)
    assert len(deadletters.connection_parameters(f"{down};{stack.amqp_uri}")) == 2

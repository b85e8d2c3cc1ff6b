"""A create whose reply is lost, retried: done once (issue 7).

The police_handoff service is started with ``LIANDONG_FAULT=crash_before_reply``: it
commits the referral, then dies like ``kill -9`` before replying. The broker gives the
unacked request to the restarted service (nameko acks an RPC request only after its
worker), and the caller, having had no reply, asks again with the same key. Both must
answer with the first referral; one row, one event, one board entry.
"""
from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from services.police_handoff import store as ph_store
from shared.errors import IdempotencyConflict
from shared.messaging import messaging_tables
from tests.conftest import wait_for
from tests.e2e.test_reliability_e2e import tracked
from tests.helpers import UNIT, draft_payload, token

pytestmark = pytest.mark.e2e


def _counts(stack, case_number: str) -> tuple[int, int]:
    """(referrals with that case number, outbox events about them)."""
    store = stack.store("police_handoff")
    handoffs = ph_store.handoffs.handoffs
    outbox = messaging_tables(ph_store.metadata)["outbox"]
    with store.session() as s:
        ids = s.execute(select(handoffs.c.id).where(
            handoffs.c.case_number == case_number)).scalars().all()
        events = s.execute(select(func.count()).where(outbox.c.subject.in_(ids))).scalar()
    store.dispose()
    return len(ids), events


def test_lost_reply_retried_with_the_same_key_creates_once(stack):
    number, key = f"LOST-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    payload = draft_payload(number)
    stack.stop("police_handoff")
    proc = stack.start("police_handoff", LIANDONG_FAULT="crash_before_reply")
    with pytest.raises(Exception), stack.rpc(timeout=5) as rpc:  # noqa: B017,PT011 - no reply
        rpc.police_handoff.create(token(UNIT), "draft", payload, key)
    wait_for(lambda: proc.poll() is not None, message="the service to die before replying")
    assert proc.returncode in (137, -9), stack.log("police_handoff")[-2000:]
    stack.procs.pop("police_handoff")
    assert _counts(stack, number) == (1, 1)        # committed before the crash

    stack.start("police_handoff")                  # takes the unacked request again
    with stack.rpc() as rpc:                       # the caller retries with its key
        first = rpc.police_handoff.create(token(UNIT), "draft", payload, key)
        again = rpc.police_handoff.create(token(UNIT), "draft", payload, key)
        assert first == again and first["case_number"] == number
        with pytest.raises(IdempotencyConflict):   # same key, another request
            rpc.police_handoff.create(token(UNIT), "draft", draft_payload(number + "-B"), key)
        # without a key a retry is a new request: that is what the key is for
        other = rpc.police_handoff.create(token(UNIT), "draft", draft_payload(number + "-C"))
        assert other["id"] != first["id"]
    assert _counts(stack, number) == (1, 1)
    assert tracked(stack, first["id"], 1)["case_number"] == number


def test_concurrent_http_retries_with_one_key_create_once(stack):
    wait_for(lambda: requests.get(stack.base_url + "/healthz", timeout=2).ok,
             message="gateway")
    number, key = f"RACE-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    body = json.dumps(draft_payload(number))
    headers = {"Authorization": f"Bearer {token(UNIT)}", "Content-Type": "application/json",
               "Idempotency-Key": key}

    def post(_):
        return requests.post(stack.base_url + "/api/v1/criminal-referrals", data=body,
                             headers=headers, timeout=60)
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(post, range(6)))
    assert [r.status_code for r in replies] == [201] * 6, [r.text for r in replies]
    assert len({r.json()["id"] for r in replies}) == 1
    assert _counts(stack, number) == (1, 1)
    rid = replies[0].json()["id"]
    act = f"/api/v1/criminal-referrals/{rid}/request_approval"
    step = json.dumps({"transfer_report": "报告"})
    twice = [requests.post(stack.base_url + act, data=step, timeout=60,
                           headers={**headers, "Idempotency-Key": key + "-act"})
             for _ in range(2)]
    assert [r.status_code for r in twice] == [200, 200] and twice[0].json() == twice[1].json()
    assert _counts(stack, number) == (1, 2)        # the step once
    clash = requests.post(stack.base_url + "/api/v1/criminal-referrals", timeout=60,
                          data=json.dumps(draft_payload(number + "-X")), headers=headers)
    assert clash.status_code == 409 and clash.json()["code"] == "idempotency_conflict"
    bad = requests.post(stack.base_url + "/api/v1/criminal-referrals", data=body, timeout=60,
                        headers={**headers, "Idempotency-Key": "x" * 201})
    assert bad.status_code == 422 and "idempotency_key" in bad.json()["errors"]

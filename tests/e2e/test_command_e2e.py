"""The command centres end to end: RPC into the running command service, its outbox
relay over RabbitMQ, the tracker consuming every event. Joint action dispatched,
acknowledged, reported and closed; missed deadlines escalated exactly once with two
replicas sweeping; assistance between neighbours and across the city; the assessment.
Runs once on SQLite and once on PostgreSQL (the ``stack`` fixture)."""
from __future__ import annotations

import json
import subprocess
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from shared.errors import InvalidInput, InvalidTransition, NotAllowed, Unauthenticated
from tests.conftest import ROOT, wait_for
from tests.helpers import (
    CITY,
    CITY_AMR,
    COORDINATOR,
    LUCHENG,
    LUCHENG_PSB,
    OUHAI,
    RESULT,
    RUIAN,
    TAISHUN,
    dispatch_payload,
    token,
)

pytestmark = pytest.mark.e2e


def tracked(rpc, handoff_id: str, step: int) -> dict:
    """Wait until the tracker has applied ``step`` events of this handoff."""
    def seen():
        try:
            found = rpc.tracker.handoff(token(COORDINATOR), handoff_id)
        except Exception:  # noqa: BLE001 - not there yet
            return None
        return found if found["step"] >= step else None
    return wait_for(seen, timeout=60, message=f"tracker to reach step {step} of {handoff_id}")


def test_joint_action_dispatch_acks_results_closed_and_tracked(stack):
    with stack.rpc() as rpc:
        svc = rpc.command
        rec = svc.create(token(CITY), "dispatch", dispatch_payload(datetime.now(UTC)))
        action_id = rec["id"]
        assert rec["state"] == "dispatched" and rec["case_number"].startswith("LD-")
        assert rec["deadline"]["id"] == "acknowledgement" and rec["deadline"]["period"] == "30m"
        assert svc.get(token(LUCHENG), action_id)["next_actions"] == [
            "acknowledge", "report_progress", "report_result", "close"]

        for actor in (LUCHENG, OUHAI, CITY_AMR):
            rec = svc.act(token(actor), action_id, "acknowledge", {"note": "收到"})
        assert rec["state"] == "under_way" and rec["deadline"]["id"] == "result_report"
        svc.act(token(OUHAI), action_id, "report_progress",
                {"note": "已出动执法人员12名", "vehicles_checked": 15})
        svc.act(token(LUCHENG), action_id, "report_result", {
            **RESULT, "referrals_made": 1, "referrals": [{
                "route": "police", "case_number": "WZ-LC-2026-0901",
                "summary": "驾驶员持伪造道路运输证，涉嫌伪造国家机关证件罪"}]})
        svc.act(token(OUHAI), action_id, "report_result", RESULT)
        rec = svc.act(token(CITY_AMR), action_id, "report_result",
                      {**RESULT, "cases_opened": 1})
        assert rec["state"] == "closed" and rec["deadline"] is None
        assert rec["referrals"][0]["case_number"] == "WZ-LC-2026-0901"
        assert rec["referrals"][0]["action_id"] == action_id

        shown = svc.get(token(CITY), action_id)
        assert [s["command"] for s in shown["timeline"]] == [
            "dispatch", "acknowledge", "acknowledge", "acknowledge", "report_progress",
            "report_result", "report_result", "report_result"]
        assert shown["next_actions"] == []

        seen = tracked(rpc, action_id, 8)
        assert seen["kind"] == "joint_action" and seen["state"] == "closed"
        assert seen["case_number"] == rec["case_number"]
        assert seen["owner_unit"] == CITY.unit
        assert [e["type"] for e in seen["timeline"]][:2] == [
            "joint_action.dispatched.v1", "joint_action.acknowledged.v1"]
        result_event = seen["timeline"][5]
        assert result_event["data"]["details"]["referrals"][0]["route"] == "police"
        assert result_event["actor_unit"] == LUCHENG.unit


def test_dispatcher_close_roles_and_bad_input(stack):
    with stack.rpc() as rpc:
        svc = rpc.command
        now = datetime.now(UTC)
        with pytest.raises(Unauthenticated):
            svc.create("forged.token", "dispatch", dispatch_payload(now))
        with pytest.raises(NotAllowed) as err:
            svc.create(token(LUCHENG_PSB), "dispatch", dispatch_payload(now))
        assert "role" in err.value.errors
        with pytest.raises(NotAllowed) as err:
            svc.create(token(LUCHENG), "dispatch", dispatch_payload(now))  # outside its area
        assert "area" in err.value.errors
        with pytest.raises(InvalidInput) as err:
            svc.create(token(CITY), "dispatch",
                       dispatch_payload(now, recipients=["lucheng-command", "nobody"]))
        assert "nobody" in json.dumps(err.value.errors["recipients"])
        with pytest.raises(InvalidInput) as err:
            svc.create(token(CITY), "dispatch", dispatch_payload(now, domain="parking"))
        assert "domain" in err.value.errors

        rec = svc.create(token(LUCHENG), "dispatch", dispatch_payload(
            now, area=["lucheng"], recipients=["lucheng-psb", "lucheng-amr"],
            priority="urgent"))
        assert rec["deadline"]["period"] == "10m" and rec["county"] == "lucheng"
        with pytest.raises(NotAllowed):
            svc.get(token(OUHAI), rec["id"])
        with pytest.raises(InvalidTransition):
            svc.act(token(LUCHENG_PSB), rec["id"], "report_result", RESULT)
        svc.act(token(LUCHENG_PSB), rec["id"], "acknowledge", {})
        with pytest.raises(NotAllowed) as err:
            svc.act(token(CITY), rec["id"], "close", {"reason": "x"})
        assert "unit" in err.value.errors
        closed = svc.act(token(LUCHENG), rec["id"], "close", {"reason": "行动提前完成"})
        assert closed["state"] == "closed"
        assert rec["id"] in [r["id"] for r in svc.list(token(LUCHENG_PSB))]
        assert rec["id"] not in [r["id"] for r in svc.list(token(OUHAI))]
        assert tracked(rpc, rec["id"], 3)["state"] == "closed"


def test_assistance_between_neighbours_and_across_the_city(stack):
    with stack.rpc() as rpc:
        svc = rpc.command
        near = svc.create(token(LUCHENG), "request_assistance", {
            "to_county": "ouhai", "subject": "协查浙C·A1234", "request": "请协查该车停放地点",
            "plate": "浙CA1234"})
        assert near["state"] == "requested" and near["deadline"]["period"] == "2h"
        svc.act(token(OUHAI), near["id"], "acknowledge", {})
        done = svc.act(token(OUHAI), near["id"], "answer", {"answer": "已查明", "found": True})
        assert done["state"] == "answered"
        seen = tracked(rpc, near["id"], 3)
        assert seen["kind"] == "assistance_request" and seen["state"] == "answered"
        assert seen["counterpart_unit"] == "ouhai-command"

        far = svc.create(token(LUCHENG), "request_assistance", {
            "to_county": "taishun", "subject": "协查驾驶员", "request": "请协查驾驶员住址"})
        assert far["state"] == "approval_pending" and far["deadline"] is None
        with pytest.raises(NotAllowed):
            svc.act(token(TAISHUN), far["id"], "acknowledge", {})
        with pytest.raises(NotAllowed) as err:
            svc.act(token(LUCHENG), far["id"], "approve", {})
        assert "role" in err.value.errors
        approved = svc.act(token(CITY), far["id"], "approve", {"opinion": "同意"})
        assert approved["state"] == "requested"
        svc.act(token(TAISHUN), far["id"], "acknowledge", {})
        svc.act(token(TAISHUN), far["id"], "answer", {"answer": "查无此人", "found": False})
        assert [e["command"] for e in tracked(rpc, far["id"], 4)["timeline"]] == [
            "request_assistance", "approve", "acknowledge", "answer"]
        with pytest.raises(InvalidInput) as err:
            svc.create(token(LUCHENG), "request_assistance",
                       {"to_county": "lucheng", "subject": "s", "request": "r"})
        assert "to_county" in err.value.errors


def test_assessment_and_reference_over_rpc(stack):
    with stack.rpc() as rpc:
        svc = rpc.command
        now = datetime.now(UTC)
        rec = svc.create(token(CITY), "dispatch", dispatch_payload(
            now, recipients=["ruian-command"], area=["ruian"]))
        svc.act(token(RUIAN), rec["id"], "acknowledge", {})
        svc.act(token(RUIAN), rec["id"], "report_result", {**RESULT, "cases_opened": 5})
        start = (now - timedelta(minutes=1)).isoformat()
        end = (now + timedelta(minutes=5)).isoformat()
        result = svc.assessment(token(CITY), start, end)
        rows = {r["unit"]: r for r in result["units"]}
        assert rows["ruian-command"]["actions"] >= 1
        assert rows["ruian-command"]["on_time_report_rate"] == 1.0
        assert "ruian-command" in result["ranking"]
        with pytest.raises(NotAllowed):
            svc.assessment(token(LUCHENG), start, end)
        with pytest.raises(InvalidInput) as err:
            svc.assessment(token(CITY), "yesterday", end)
        assert "start" in err.value.errors
        reference = svc.reference(token(LUCHENG))
        assert len(reference["county_centres"]) == 12
        assert reference["periods"]["joint_action.acknowledgement"] == "30m"
        assert svc.procedure("assistance_request")["deadlines"]["answer"]["period"] == "3wd"


# ------------------------------------------------------------------ escalation

@contextmanager
def replicas(stack, count: int, **extra_env):
    """Replace the stack's command service by ``count`` replicas with ``extra_env``;
    put the ordinary one back afterwards."""
    from shared.cli import service_command
    stack.stop("command")
    procs = []
    try:
        for i in range(count):
            log = open(stack.tmp / f"command-replica-{i + 1}.log", "ab")
            procs.append(subprocess.Popen(service_command("command"), cwd=ROOT, stdout=log,
                                          stderr=subprocess.STDOUT,
                                          env={**stack.env, **extra_env}))
        pids, deadline = {p.pid for p in procs}, time.monotonic() + 90
        seen: set[int] = set()
        with stack.rpc(timeout=5) as rpc:
            while seen != pids:   # every replica answered (health names its pid)
                assert time.monotonic() < deadline, f"replicas not up: {seen} of {pids}"
                assert all(p.poll() is None for p in procs), "a replica exited"
                try:
                    seen.add(rpc.command.health()["pid"])
                except Exception:  # noqa: BLE001 - not up yet
                    time.sleep(0.3)
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        stack.start("command")


def test_missed_deadlines_escalate_exactly_once_with_two_replicas(stack):
    periods = {"joint_action.acknowledgement": "1m", "joint_action.result_report": "1m"}
    with replicas(stack, 2, COMMAND_SWEEP_SECONDS="1",
                  COMMAND_PERIODS=json.dumps(periods)), stack.rpc() as rpc:
        svc = rpc.command
        now = datetime.now(UTC)
        rec = svc.create(token(CITY), "dispatch", dispatch_payload(
            now, recipients=["lucheng-command", "ouhai-command"],
            window_start=(now - timedelta(hours=1)).isoformat(),
            window_end=(now + timedelta(seconds=5)).isoformat()))
        action_id = rec["id"]
        assert rec["deadline"]["period"] == "1m"
        svc.act(token(LUCHENG), action_id, "acknowledge", {})
        # ouhai never acknowledges, nobody reports: after about a minute three escalations
        # are due — ouhai's acknowledgement, ouhai's report and lucheng's report.
        expected = {("ouhai-command", "acknowledgement"), ("ouhai-command", "result_report"),
                    ("lucheng-command", "result_report")}

        def escalations():
            timeline = svc.get(token(CITY), action_id)["timeline"]
            return [(s["details"]["recipient"], s["details"]["miss"])
                    for s in timeline if s["command"] == "escalate"]
        wait_for(lambda: set(escalations()) == expected, timeout=150, interval=0.5,
                 message="three escalations")
        time.sleep(5)   # both replicas sweep several more times
        found = escalations()
        assert sorted(found) == sorted(expected), found   # each exactly once

        shown = svc.get(token(CITY), action_id)
        steps = [s["step"] for s in shown["timeline"]]
        assert steps == list(range(1, len(steps) + 1))
        store = stack.store("command")
        outbox = store.metadata.tables["outbox"]
        with store.session() as s:
            published = s.execute(select(func.count()).where(
                outbox.c.subject == action_id,
                outbox.c.type == "joint_action.escalated.v1")).scalar()
        store.dispose()
        assert published == 3

        seen = tracked(rpc, action_id, shown["step"])
        escalated = [e for e in seen["timeline"] if e["type"] == "joint_action.escalated.v1"]
        assert len(escalated) == 3
        assert {e["data"]["details"]["escalated_to"] for e in escalated} == {"wenzhou-command"}
        assert all(e["actor_role"] == "system" for e in escalated)

        # late, but still possible: the action carries on and closes
        svc.act(token(OUHAI), action_id, "acknowledge", {})
        svc.act(token(LUCHENG), action_id, "report_result", RESULT)
        done = svc.act(token(OUHAI), action_id, "report_result", RESULT)
        assert done["state"] == "closed"
        assert {r["report_on_time"] for r in done["recipients"].values()} == {False}

"""Alerts over MQTT end to end (issue 17): roadside devices publish QoS-1 alerts to a
Mosquitto broker run from deploy/mosquitto/mosquitto.conf (a private one per test
module, on its own port, so the fixed client id and persistent session are ours); the
alerts service's MQTT intake process (services/alerts/mqtt_intake.py) applies them.

* an over-limit truck over MQTT becomes a task for the Lucheng team, which acknowledges,
  arrives and disposes with an administrative case opened; the county centre closes it;
  a repeated message id is applied once, a bad message is a dead letter with its reason
  (``liandong alerts dead-letters``), never dropped;
* a storm of 2,000 messages (700 distinct message ids over 20 trucks, the rest repeats)
  with the intake killed (SIGKILL) mid-storm and restarted: every message id applied
  exactly once, the repeats merged into 20 tasks, the storm visible
  (``GET /api/v1/alert-intake``, ``liandong alerts intake``).
Runs once on SQLite and once on PostgreSQL (the ``stack`` fixture)."""
from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import func, select

from tests.conftest import ROOT, wait_for
from tests.e2e.test_alerts_e2e import act, get, plate, tracked
from tests.e2e.test_gateway_e2e import web  # noqa: F401 - the stack with HTTP up
from tests.helpers import CITY, LUCHENG, UNIT

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not shutil.which("mosquitto"),
                                 reason="mosquitto is not installed (apt-get install mosquitto)")]

INTAKE = [sys.executable, "-m", "services.alerts.mqtt_intake"]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A private Mosquitto with the deployment's limits (the bench's, bench/mqtt.py)."""
    from bench.mqtt import private_broker
    with private_broker(tmp_path_factory.mktemp("mosquitto")) as url:
        yield url


@pytest.fixture()
def intake(web, broker):  # noqa: F811
    """Start (again) the MQTT intake of this stack; waits until it has subscribed."""
    client_id = f"liandong-alerts-intake-{web.backend}-{uuid.uuid4().hex[:6]}"
    beat = web.tmp / f"{client_id}.alive"

    def start():
        beat.unlink(missing_ok=True)
        web.start("alerts-mqtt", wait=False, command=INTAKE, MQTT_URL=broker,
                  MQTT_CLIENT_ID=client_id, MQTT_HEARTBEAT_FILE=str(beat))
        wait_for(lambda: beat.exists() or _exited(web), timeout=60,
                 message="the MQTT intake to subscribe")
        assert not _exited(web), web.log("alerts-mqtt")[-3000:]
    start()
    yield start
    if "alerts-mqtt" in web.procs:
        web.stop("alerts-mqtt")


def _exited(stack) -> bool:
    return stack.procs["alerts-mqtt"].poll() is not None


class Publisher:
    """A device (or many): QoS-1 publishes, each confirmed by the broker (PUBACK)."""

    def __init__(self, url: str):
        import paho.mqtt.client as mqtt
        port = int(url.rsplit(":", 1)[1])
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"device-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(200)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, source: str, messages: list) -> None:
        infos = [self.client.publish(f"liandong/alerts/{source}",
                                     m if isinstance(m, bytes) else json.dumps(m), qos=1)
                 for m in messages]
        for info in infos:
            info.wait_for_publish(timeout=30)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def overlimit(alert_id: str, p: str) -> dict:
    return {"alert_id": alert_id, "kind": "overlimit_wim", "plate": p, "site": "WIM-LC-01",
            "gross_weight_kg": 68000, "limit_kg": 49000, "excess_percent": 38.8}


def cli(stack, *args) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT,
                         env=stack.env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def applied(stack, source: str) -> tuple[int, list[dict]]:
    """Alert ids applied for ``source`` and the tasks they made (from the database)."""
    from services.alerts import store as st
    store = stack.store("alerts")
    try:
        with store.session() as s:
            n = s.execute(select(func.count()).select_from(st.intake).where(
                st.intake.c.source == source)).scalar_one()
            ids = {r for (r,) in s.execute(select(st.intake.c.task_id).where(
                st.intake.c.source == source).distinct())}
            tasks = [st.handoffs.load(s, i) for i in ids]
    finally:
        store.dispose()
    return n, tasks


def test_over_limit_truck_over_mqtt_to_a_closed_task_with_a_case(web, broker, intake):  # noqa: F811
    p, source = plate(), f"wim-lc-{uuid.uuid4().hex[:6]}"
    device = Publisher(broker)
    try:
        device.send(source, [overlimit(f"{source}-1", p), overlimit(f"{source}-1", p),
                             b"{not json", {"alert_id": "x", "kind": "ufo"}])
    finally:
        device.close()

    def task():
        rows = get(web, UNIT, "/api/v1/alert-tasks", limit=1000).json()
        return next((r for r in rows if r["plate"] == p), None)
    row = wait_for(task, timeout=60, message="the MQTT alert's task")
    assert (row["county"], row["counterpart_unit"], row["state"], row["repeats"]) == (
        "lucheng", "lucheng-team-1", "dispatched", 0)        # the repeated id: once
    task_id = row["id"]
    for command in ("acknowledge", "arrive"):
        assert act(web, UNIT, task_id, command).status_code == 200
    number = f"温交执罚〔2026〕{p}号"        # over-limit: an administrative case
    disposed = act(web, UNIT, task_id, "dispose", {"result": "case_opened", "case": {
        "kind": "administrative", "case_number": number}})
    assert disposed.status_code == 200, disposed.text
    assert disposed.json()["case"]["case_number"] == number
    closed = act(web, LUCHENG, task_id, "close", {"note": "审核通过"})
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    row = tracked(web, task_id, "closed")
    assert [s["command"] for s in row["timeline"]] == [
        "dispatch", "acknowledge", "arrive", "dispose", "close"]

    # the two bad messages are kept with their reasons
    def dead():
        out = cli(web, "alerts", "dead-letters", "--source", source).stdout
        return out if "2 dead letter(s)" in out else None
    out = wait_for(dead, timeout=30, message="two dead letters")
    assert "not a JSON alert" in out and "unknown kind of alert 'ufo'" in out
    assert get(web, UNIT, "/api/v1/alert-intake").status_code == 200


def test_storm_with_the_intake_killed_mid_storm_applies_each_message_once(
        web, broker, intake):  # noqa: F811
    source = f"wim-storm-{uuid.uuid4().hex[:6]}"
    plates = [plate() for _ in range(20)]
    rnd = random.Random(17)
    ids = [f"{source}-{i}" for i in range(700)]
    alerts = {i: overlimit(i, plates[n % 20]) for n, i in enumerate(ids)}
    messages = [alerts[i] for i in ids] + [alerts[rnd.choice(ids)] for _ in range(1300)]
    rnd.shuffle(messages)
    device = Publisher(broker)
    try:
        device.send(source, messages[:1000])
        wait_for(lambda: applied(web, source)[0] >= 50, timeout=60,
                 message="the intake to be applying the storm")
        web.procs["alerts-mqtt"].send_signal(signal.SIGKILL)       # mid-storm
        web.stop("alerts-mqtt")
        device.send(source, messages[1000:])      # queued by the broker meanwhile
    finally:
        device.close()
    started = time.monotonic()
    intake()                                      # the same client id: its session
    wait_for(lambda: applied(web, source)[0] >= 700, timeout=120,
             message="every message id applied")
    n, tasks = applied(web, source)
    assert n == 700                               # each id once (its key), none lost
    assert len(tasks) == 20                       # one task per truck
    assert sum(1 + t["repeats"] for t in tasks) == 700      # merged once each
    assert all(t["county"] == "lucheng" for t in tasks)
    status = get(web, CITY, "/api/v1/alert-intake").json()
    mine = next(s for s in status["sources"] if s["source"] == source)
    assert mine["applied"] == 700 and mine["dead_letters"] == 0
    assert status["storm"] is True and status["per_minute"] >= status["threshold"]
    out = json.loads(cli(web, "alerts", "intake").stdout)
    assert out["storm"] is True
    print(f"storm drained {time.monotonic() - started:.1f} s after the restart")

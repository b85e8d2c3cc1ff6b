"""``--only mqtt``: the alerts service's MQTT intake against a private Mosquitto run from
deploy/mosquitto/mosquitto.conf (the deployment's in-flight and queue limits), in
PostgreSQL:

* raw: QoS-1 publish → subscribe on that broker (a paho subscriber that only counts),
  the ceiling;
* intake: the same publishes as alerts (``unique`` share of distinct trucks, the rest
  repeats that merge) → tasks committed by the intake process
  (``python -m services.alerts.mqtt_intake``: persistent session, acks after commit),
  alerts/s and the ratio to raw;
* latency: alerts paced at ``rate``/s, each a new task: p50/p99 publish → the alert
  readable in the database (what the API and the wall read).
Prints a row each; asserts nothing."""
from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench import common

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def private_broker(tmp: Path):
    """A Mosquitto with the deployment's limits (in flight, queued, persistence), anonymous
    on loopback instead of the deployment's users and ACL; yields its mqtt:// URL."""
    port = _free_port()
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    conf = re.sub(r"(?m)^(listener|allow_anonymous|password_file|acl_file|"
                  r"persistence_location)\b.*$", "", conf)
    (tmp / "mosquitto.conf").write_text(
        conf + f"\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
               f"persistence_location {tmp}/\n")
    with open(tmp / "mosquitto.log", "ab") as log:
        proc = subprocess.Popen(["mosquitto", "-c", str(tmp / "mosquitto.conf")],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _answers(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"mosquitto did not start: {tmp / 'mosquitto.log'}")
            time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _client(url: str, client_id: str, **kw):
    import paho.mqtt.client as mqtt
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, **kw)
    c.max_inflight_messages_set(200)
    c.connect("127.0.0.1", int(url.rsplit(":", 1)[1]))
    return c


def _publish(url: str, topic: str, bodies: list[bytes], rate: float = 0.0) -> list[float]:
    """Publish QoS 1 (paced at ``rate``/s when given); the wall time of each publish."""
    pub = _client(url, f"bench-pub-{uuid.uuid4().hex[:6]}")
    pub.loop_start()
    sent, infos = [], []
    start = time.perf_counter()
    for i, body in enumerate(bodies):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        sent.append(time.time())
        infos.append(pub.publish(topic, body, qos=1))
    for info in infos:
        info.wait_for_publish(timeout=60)
    pub.disconnect()
    pub.loop_stop()
    return sent


def raw(url: str, count: int) -> dict:
    got = threading.Event()
    n = [0]

    def on_message(*_a):
        n[0] += 1
        if n[0] == count:
            got.set()
    sub = _client(url, "bench-raw-sub")
    sub.on_message = on_message
    sub.subscribe("bench/raw", qos=1)
    sub.loop_start()
    time.sleep(0.3)
    started = time.perf_counter()
    _publish(url, "bench/raw", [b'{"n": %d}' % i for i in range(count)])
    got.wait(120)
    seconds = time.perf_counter() - started
    sub.disconnect()
    sub.loop_stop()
    return {"messages": n[0], "seconds": seconds, "per_s": n[0] / seconds}


def _alerts(prefix: str, count: int, unique: float) -> list[bytes]:
    import json
    plates = [f"浙C{prefix[:2].upper()}{i:03d}" for i in range(max(1, int(count * unique)))]
    return [json.dumps({"alert_id": f"{prefix}-{i}", "kind": "overlimit_wim",
                        "plate": plates[i % len(plates)], "site": "WIM-LC-01",
                        "gross_weight_kg": 60000, "limit_kg": 49000,
                        "excess_percent": 22.4}).encode() for i in range(count)]


def intake(url: str, database_url: str, tmp: Path, count: int, unique: float,
           rate: float = 0.0) -> dict:
    """``count`` alerts published to the intake running as it does in production (its own
    process, ``python -m services.alerts.mqtt_intake``); an alert is visible when its
    row can be read from the database (polled every 10 ms)."""
    import os
    import sys

    from sqlalchemy import select

    from services.alerts import store as st
    from shared.db import Store
    source = f"bench-{uuid.uuid4().hex[:6]}"
    beat = tmp / f"{source}.alive"
    env = {**os.environ, "ALERTS_DATABASE_URL": database_url, "MQTT_URL": url,
           "MQTT_CLIENT_ID": f"bench-intake-{source}", "MQTT_HEARTBEAT_FILE": str(beat),
           "LIANDONG_DATA_DIR": str(tmp), "PYTHONWARNINGS": "ignore"}
    with open(tmp / f"{source}.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "services.alerts.mqtt_intake"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    store = Store("alerts", st.metadata, database_url)
    try:
        deadline = time.monotonic() + 60
        while not beat.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the MQTT intake did not subscribe: {tmp}/{source}.log")
            time.sleep(0.05)
        bodies = _alerts(source, count, unique)
        sent: list[float] = []
        publisher = threading.Thread(target=lambda: sent.extend(_publish(
            url, f"liandong/alerts/{source}", bodies, rate)))
        started = time.perf_counter()
        publisher.start()
        visible: dict[str, float] = {}
        since = None
        t = st.intake
        deadline = time.monotonic() + 300
        while len(visible) < count and time.monotonic() < deadline:
            query = select(t.c.alert_id, t.c.received_at).where(t.c.source == source)
            if since is not None:
                query = query.where(t.c.received_at >= since)
            with store.session() as s:
                rows = s.execute(query).all()
            now = time.time()
            for alert_id, received in rows:
                visible.setdefault(alert_id, now)
                since = received if since is None or received > since else since
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        publisher.join(60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        store.dispose()
    lat = sorted(visible[f"{source}-{i}"] - sent[i] for i in range(min(count, len(sent)))
                 if f"{source}-{i}" in visible)
    return {"alerts": count, "applied": len(visible), "seconds": seconds,
            "per_s": len(visible) / seconds, "p50_s": common.percentile(lat, 50),
            "p99_s": common.percentile(lat, 99), "rate": rate, "unique": unique}


def run(count: int = 10000, rate: float = 200.0, seconds: float = 15.0) -> dict:
    """The storm (``count`` alerts, 5% distinct trucks) as fast as it comes, the raw
    ceiling, then ``rate`` alerts/s for ``seconds`` of new tasks."""
    from services.alerts import store as st
    from shared.db import Store
    prefix = f"lbench_{common.run_id()}_"
    with tempfile.TemporaryDirectory() as tmp, private_broker(Path(tmp)) as url, \
            common.pg_databases(prefix) as base:
        store = Store("alerts", st.metadata, f"{base}alerts")
        store.engine   # noqa: B018 - creates the database and its schema
        store.dispose()
        ceiling = raw(url, count)
        storm = intake(url, f"{base}alerts", Path(tmp), count, unique=0.05)
        paced_run = intake(url, f"{base}alerts", Path(tmp), int(rate * seconds), unique=1.0,
                           rate=rate)
    return {"raw": ceiling, "storm": storm, "paced": paced_run,
            "ratio": storm["per_s"] / ceiling["per_s"]}


def print_report(out: dict) -> None:
    r, s, p = out["raw"], out["storm"], out["paced"]
    print(f"\nMQTT (private Mosquitto, deploy/mosquitto/mosquitto.conf; PostgreSQL):\n"
          f"  raw QoS-1 publish -> subscribe   {r['messages']:>6} msgs  {r['per_s']:>7.0f} /s\n"
          f"  intake -> committed tasks        {s['applied']:>6} alerts {s['per_s']:>7.0f} /s"
          f"  ratio {out['ratio']:.2f} (goal >= 0.3), {s['unique']:.0%} distinct trucks\n"
          f"  at {p['rate']:.0f} alerts/s, new tasks: publish -> task visible "
          f"p50 {p['p50_s'] * 1000:.0f} ms, p99 {p['p99_s'] * 1000:.0f} ms (goal < 1 s), "
          f"{p['applied']}/{p['alerts']} applied")

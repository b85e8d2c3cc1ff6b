"""MQTT intake of the alerts service: roadside devices and monitoring gateways publish
one alert (JSON, the same body as ``POST /api/v1/alerts``) per message, QoS 1, on
``liandong/alerts/<source>`` (the broker's ACL lets a device write only its own
``<source>``, see deploy/mosquitto/); this process applies each to the alerts database.

Why a process of its own, not a nameko extension: paho runs in plain threads here (no
eventlet green sockets under it), a storm of device messages cannot starve the service's
RPC workers, and it is restarted on its own (``liandong run`` supervises it). It writes
through the alerts service's own store and the same ``apply_alert`` as the RPC intake
(record, step and outbox row in one transaction); the service's outbox relay publishes
the events.

Delivery: a persistent session (``clean_session`` False, a fixed client id
``MQTT_CLIENT_ID``) so what devices publish while this process is down is queued by the
broker and delivered on restart; manual acknowledgements: a message is PUBACKed only
after the transaction that applied it (or dead-lettered it) committed. A message
redelivered after a crash, or a device repeating its message id, finds its
(source, alert id) applied and is a ``duplicate``: every QoS-1 message is applied
exactly once. A message that is not an alert of a known kind is kept with its reason in
``alert_dead_letters`` (``liandong alerts dead-letters``), never dropped.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from services.alerts import reference as ref
from services.alerts import store as st
from shared.auth import Actor
from shared.errors import InvalidInput, InvalidTransition
from shared.logging import configure_logging

log = structlog.get_logger(__name__)

DEFAULT_URL = "mqtt://127.0.0.1:1883"
TOPIC_PREFIX = "liandong/alerts/"
SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class Settings:
    url: str = DEFAULT_URL
    client_id: str = "liandong-alerts-intake"
    topic: str = TOPIC_PREFIX + "+"
    batch: int = 200
    heartbeat: str | None = None    # a file touched every few seconds while subscribed

    @classmethod
    def from_env(cls, env=os.environ) -> Settings:
        return cls(url=env.get("MQTT_URL") or DEFAULT_URL,
                   client_id=env.get("MQTT_CLIENT_ID") or cls.client_id,
                   topic=env.get("MQTT_TOPIC") or cls.topic,
                   batch=int(env.get("MQTT_BATCH") or cls.batch),
                   heartbeat=env.get("MQTT_HEARTBEAT_FILE") or None)

    @property
    def address(self) -> tuple[str, int, str | None, str | None]:
        """host, port, user, password of ``MQTT_URL`` (mqtt://user:pass@host:port)."""
        u = urlsplit(self.url)
        if u.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"MQTT_URL must be mqtt://[user:password@]host[:port], "
                             f"not {self.url!r}")
        return (u.hostname or "127.0.0.1", u.port or 1883,
                unquote(u.username) if u.username else None,
                unquote(u.password) if u.password else None)


def source_of(topic: str) -> str:
    """The sending device or gateway: the last level of ``liandong/alerts/<source>`` (the
    subscription, ``MQTT_TOPIC``, decides which topics arrive)."""
    rest = topic.rsplit("/", 1)[-1]
    if "/" not in topic or not SOURCE.match(rest):
        raise InvalidInput(f"topic {topic!r} is not {TOPIC_PREFIX}<source>",
                           {"topic": [f"{TOPIC_PREFIX}<source>"]})
    return rest


def parse(topic: str, payload: bytes) -> tuple[Actor, dict]:
    """The source (an ``alert_source`` actor) and the validated alert of one message;
    InvalidInput names what is wrong (the dead letter's reason)."""
    source = source_of(topic)
    try:
        alert = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"not a JSON alert: {exc}", {"payload": ["JSON object"]}) from None
    return Actor(user_id=source, role="alert_source", unit=source), ref.validate_alert(alert)


@dataclass
class Counts:
    received: int = 0
    outcomes: dict = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class Applier:
    """Applies batches of MQTT messages to the alerts store, one transaction per batch
    (a conflict with a concurrent intake falls back to one message at a time)."""

    def __init__(self, store=None):
        self.store = store or st.store
        self.counts = Counts()

    def apply(self, messages: list) -> list[str]:
        """Outcomes (created / merged / duplicate / dead_letter), in order. A database
        that does not answer raises: nothing is acknowledged, the batch is retried."""
        now = datetime.now(UTC)
        items = [self._parse(m) for m in messages]
        try:
            with self.store.transaction() as s:
                out = self._batch(s, messages, items, now)
        except (IntegrityError, InvalidTransition):
            out = [self._alone(m, item, now) for m, item in zip(messages, items, strict=True)]
        except SQLAlchemyError:
            raise
        except Exception:  # noqa: BLE001 - one message the code cannot apply: find it
            log.exception("mqtt_batch_failed", size=len(messages))
            out = [self._alone(m, item, now) for m, item in zip(messages, items, strict=True)]
        self.counts.received += len(messages)
        for o in out:
            self.counts.add(o)
        return out

    @staticmethod
    def _parse(msg):
        try:
            return parse(msg.topic, msg.payload)
        except InvalidInput as exc:
            return exc

    def _batch(self, session, messages, items, now) -> list[str]:
        """The good alerts in one ``apply_alerts``, the bad ones dead-lettered."""
        good = [item for item in items if not isinstance(item, InvalidInput)]
        applied = iter(st.apply_alerts(session, good, now, for_update=self.store.is_postgres))
        out = []
        for msg, item in zip(messages, items, strict=True):
            if isinstance(item, InvalidInput):
                self._dead(session, msg, item.message, item.errors, now)
                out.append("dead_letter")
            else:
                out.append(next(applied)["outcome"])
        return out

    def _alone(self, msg, item, now) -> str:
        for attempt in (1, 2, 3):
            try:
                with self.store.transaction() as s:
                    return self._batch(s, [msg], [item], now)[0]
            except (IntegrityError, InvalidTransition) as exc:
                if attempt == 3:
                    return self._dead_alone(msg, f"not applied after 3 attempts: "
                                                 f"{type(exc).__name__}", now)
            except SQLAlchemyError:
                raise             # the database is away: not acked, retried
            except Exception as exc:  # noqa: BLE001 - a poison message: kept, not retried
                return self._dead_alone(msg, f"could not be applied: {type(exc).__name__}: "
                                             f"{str(exc)[:300]}", now)
        raise AssertionError("unreachable")

    def _dead_alone(self, msg, reason: str, now) -> str:
        with self.store.transaction() as s:
            self._dead(s, msg, reason, None, now)
        return "dead_letter"

    @staticmethod
    def _dead(session, msg, reason, errors, now) -> None:
        try:
            source = source_of(msg.topic)
        except InvalidInput:
            source = "?"
        st.dead_letter(session, source, msg.topic, reason, errors, msg.payload, now)
        log.warning("mqtt_alert_dead_lettered", topic=msg.topic, reason=reason)


class Intake:
    """The subscriber: paho's network loop in its thread hands messages to a queue; the
    main loop applies them in batches and acknowledges each after its commit."""

    def __init__(self, settings: Settings, applier: Applier | None = None):
        import paho.mqtt.client as mqtt
        self.settings = settings
        self.applier = applier or Applier()
        self.messages: queue.Queue = queue.Queue()
        self.generation = 0          # a message is acked on the connection it came on
        self.subscribed = threading.Event()
        host, port, user, password = settings.address
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=settings.client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311, manual_ack=True)
        if user:
            self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(0.2, 5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.host, self.port = host, port

    def _on_connect(self, client, _userdata, flags, reason_code, _props):
        if reason_code.is_failure:
            log.error("mqtt_connect_refused", reason=str(reason_code))
            return
        self.generation += 1
        log.info("mqtt_connected", host=self.host, port=self.port,
                 session_present=flags.session_present, client_id=self.settings.client_id)
        client.subscribe(self.settings.topic, qos=1)

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _props):
        if any(rc.is_failure for rc in reason_codes):
            log.error("mqtt_subscribe_refused", topic=self.settings.topic,
                      reasons=[str(rc) for rc in reason_codes])
            return
        log.info("mqtt_subscribed", topic=self.settings.topic)
        self.subscribed.set()
        self._beat()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props):
        self.subscribed.clear()
        log.warning("mqtt_disconnected", reason=str(reason_code))

    def _on_message(self, _client, _userdata, msg):
        self.messages.put((self.generation, msg))

    def _take(self, wait: float) -> list:
        try:
            batch = [self.messages.get(timeout=wait)]
        except queue.Empty:
            return []
        while len(batch) < self.settings.batch:
            try:
                batch.append(self.messages.get_nowait())
            except queue.Empty:
                break
        return batch

    def _beat(self) -> None:
        if self.settings.heartbeat and self.subscribed.is_set():
            with open(self.settings.heartbeat, "a"):
                os.utime(self.settings.heartbeat)

    def run(self, stop: threading.Event) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        backoff = 0.5
        pending: list = []
        last_report = time.monotonic()
        try:
            while not stop.is_set():
                pending = pending or self._take(0.5)
                if pending:
                    try:
                        self.applier.apply([m for _g, m in pending])
                    except SQLAlchemyError as exc:   # the database is away: retry, no ack
                        log.warning("mqtt_intake_db_failed", retry_in=backoff,
                                    error=f"{type(exc).__name__}: {str(exc)[:200]}")
                        stop.wait(backoff)
                        backoff = min(backoff * 2, 10)
                        continue
                    backoff = 0.5
                    for generation, msg in pending:
                        if generation == self.generation:   # else redelivered anyway
                            self.client.ack(msg.mid, msg.qos)
                    pending = []
                if time.monotonic() - last_report > 5:
                    last_report = time.monotonic()
                    self._beat()
                    c = self.applier.counts
                    log.info("mqtt_intake_counts", received=c.received, **c.outcomes)
        finally:
            self.client.disconnect()
            self.client.loop_stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.alerts.mqtt_intake",
        description="MQTT intake of the alerts service: subscribes (QoS 1, persistent "
                    "session) to liandong/alerts/<source> and applies each alert to the "
                    "alerts database; bad messages go to alert_dead_letters. Settings: "
                    "MQTT_URL (mqtt://[user:password@]host[:port], default "
                    f"{DEFAULT_URL}), MQTT_CLIENT_ID, MQTT_TOPIC, MQTT_BATCH, "
                    "MQTT_HEARTBEAT_FILE, and the "
                    "alerts service's DATABASE_URL / ALERTS_DATABASE_URL.")
    parser.parse_args(argv)
    configure_logging("alerts-mqtt")
    ref.reference()      # a bad alerts.yaml stops it at start, as it does the service
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Intake(Settings.from_env()).run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())

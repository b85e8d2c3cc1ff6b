"""Scenario (a), the broker's own ceiling: pika ``SelectConnection`` on both sides, no
framework, no database.

* publisher: persistent 1 KiB messages to a topic exchange, the channel in confirm
  mode with up to ``--window`` unconfirmed publishes in flight (pipelined confirms);
  back to back, or open-loop at ``--rate`` messages/s;
* consumer: a durable quorum queue (as Liandong's ``tracker.events``), prefetch
  ``--prefetch``, a manual ``basic_ack`` per message.

Each body starts with the publish time and the message index; latency is publish to
receipt by the consumer. ``python -m bench.raw {publisher|consumer} --amqp URI --dir D``
(same file protocol as ``bench.harness``).
"""
from __future__ import annotations

import argparse
import json
import struct
import time
from pathlib import Path

import pika

from bench.common import say

EXCHANGE = "bench.raw"
QUEUE = "bench.raw"
SIZE = 1024
HEAD = struct.Struct("!dQ")
PAD = b"x" * (SIZE - HEAD.size)
PROPS = pika.BasicProperties(delivery_mode=2, content_type="application/octet-stream")


def _connect(a, on_channel):
    def on_open(conn):
        conn.channel(on_open_callback=on_channel)

    def on_error(_conn, exc):
        raise SystemExit(f"bench.raw: cannot connect: {exc}")

    def on_close(conn, _reason):
        conn.ioloop.stop()

    return pika.SelectConnection(pika.URLParameters(a.amqp), on_open_callback=on_open,
                                 on_open_error_callback=on_error, on_close_callback=on_close)


class Publisher:
    def __init__(self, a):
        self.a = a
        self.i = 0
        self.unconfirmed: set[int] = set()
        self.tag = 0
        self.nacked = 0
        self.phase = "warmup"
        self.phase_first = 0
        self.phase_t0 = 0.0
        self.max_lag = 0.0
        self.results: dict = {}
        self.conn = _connect(a, self.on_channel)

    def on_channel(self, ch):
        self.ch = ch
        ch.confirm_delivery(ack_nack_callback=self.on_confirm,
                            callback=lambda _frame: self.ready())

    def ready(self):
        say("READY")
        self.wait_for_go()

    def wait_for_go(self):
        """Start once the orchestrator says the consumer (and its queue) is up."""
        if Path(self.a.dir, "go").exists():
            self.phase_t0 = time.time()
            self.pump()
        else:
            self.conn.ioloop.call_later(0.02, self.wait_for_go)

    def on_confirm(self, frame):
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            self.nacked += 1
        if not method.multiple:
            self.unconfirmed.discard(method.delivery_tag)
        elif method.delivery_tag >= self.tag:
            self.unconfirmed.clear()
        else:
            self.unconfirmed = {t for t in self.unconfirmed if t > method.delivery_tag}
        if self.phase == "measure" and not self.a.rate:
            self.pump()
        elif self.phase == "drain" and not self.unconfirmed:
            self.end_phase()

    def publish_one(self):
        self.ch.basic_publish(EXCHANGE, "handoff.drafted", HEAD.pack(time.time(), self.i) + PAD,
                              PROPS)
        self.i += 1
        self.tag += 1
        self.unconfirmed.add(self.tag)

    def pump(self):
        """Publish what is due: up to the window (back to back) or by the schedule."""
        a, now = self.a, time.time()
        if self.phase == "warmup":
            while len(self.unconfirmed) < a.window and self.i < a.warmup:
                self.publish_one()
            if self.i >= a.warmup:
                self.phase = "drain"
                if not self.unconfirmed:
                    self.end_phase()
            else:
                self.conn.ioloop.call_later(0.001, self.pump)
            return
        if now - self.phase_t0 >= a.seconds:
            self.phase = "drain"
            if not self.unconfirmed:
                self.end_phase()
            return
        if a.rate:
            while True:
                due = self.phase_t0 + (self.i - self.phase_first) / a.rate
                if due > now:
                    break
                self.max_lag = max(self.max_lag, now - due)
                self.publish_one()
            self.conn.ioloop.call_later(0.0005, self.pump)
        else:
            while len(self.unconfirmed) < a.window:
                self.publish_one()

    def end_phase(self):
        if not self.results:      # warm-up confirmed: settle, then measure
            self.results["warmup"] = {"ok": self.i, "failed": 0}
            self.conn.ioloop.call_later(self.a.settle, self.start_measure)
            return
        t_end = time.time()
        measured = {"ok": self.i - self.phase_first, "failed": self.nacked, "sent":
                    self.i - self.phase_first, "first": self.phase_first,
                    "t_start": self.phase_t0, "t_end": t_end, "max_lag": self.max_lag}
        Path(self.a.dir, "done.json").write_text(json.dumps({
            "warmup": self.results["warmup"], "measured": measured, "expected": self.i}))
        self.stop_when_told()

    def start_measure(self):
        say("MEASURE")
        self.phase, self.phase_first, self.phase_t0 = "measure", self.i, time.time()
        self.pump()

    def stop_when_told(self):
        if Path(self.a.dir, "stop").exists():
            self.conn.close()
        else:
            self.conn.ioloop.call_later(0.1, self.stop_when_told)


class Consumer:
    def __init__(self, a):
        self.a = a
        self.seen: dict[int, tuple[float, float]] = {}
        self.expected = None
        self.deadline = None
        self.conn = _connect(a, self.on_channel)

    def on_channel(self, ch):
        self.ch = ch
        ch.exchange_declare(EXCHANGE, "topic", durable=True, callback=self.on_exchange)

    def on_exchange(self, _frame):
        self.ch.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"},
                              callback=self.on_queue)

    def on_queue(self, _frame):
        self.ch.queue_bind(QUEUE, EXCHANGE, routing_key="#", callback=self.on_bind)

    def on_bind(self, _frame):
        self.ch.basic_qos(prefetch_count=self.a.prefetch, callback=self.on_qos)

    def on_qos(self, _frame):
        self.ch.basic_consume(QUEUE, self.on_message, auto_ack=False,
                              callback=lambda _f: say("READY"))
        self.conn.ioloop.call_later(0.05, self.watch)

    def on_message(self, ch, method, _props, body):
        sent, i = HEAD.unpack_from(body)
        self.seen.setdefault(i, (sent, time.time()))
        ch.basic_ack(method.delivery_tag)

    def watch(self):
        done = Path(self.a.dir, "done.json")
        if self.expected is None and done.exists():
            self.expected = json.loads(done.read_text())["expected"]
            self.deadline = time.time() + self.a.timeout
        if self.expected is not None and (len(self.seen) >= self.expected
                                          or time.time() > self.deadline):
            Path(self.a.dir, "consumer.json").write_text(json.dumps({
                "expected": self.expected, "received": len(self.seen), "duplicates": 0,
                "events": [[i, s, r] for i, (s, r) in self.seen.items()]}))
            say("FINISHED")
            self.conn.close()
            return
        self.conn.ioloop.call_later(0.05, self.watch)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.raw")
    p.add_argument("role", choices=["publisher", "consumer"])
    p.add_argument("--amqp", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--window", type=int, default=1000, help="unconfirmed publishes in flight")
    p.add_argument("--prefetch", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=120)
    a = p.parse_args()
    worker = Publisher(a) if a.role == "publisher" else Consumer(a)
    worker.conn.ioloop.start()


if __name__ == "__main__":
    main()

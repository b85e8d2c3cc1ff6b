"""One nameko worker process of scenario (b), started by the orchestrator:
``python -m bench.node ROLE --dir RUN_DIR --amqp URI [...]``. Says READY on stdout
when its consumers are up; a consumer says FINISHED when it has written its
results, a producer stops when the orchestrator writes RUN_DIR/stop."""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()  # before anything imports sockets, as `nameko run` does

import argparse  # noqa: E402
import importlib  # noqa: E402
from pathlib import Path  # noqa: E402

from nameko.runners import ServiceRunner  # noqa: E402

from bench.common import say  # noqa: E402

ROLES = {
    "naive-producer": ("bench.naive", "NaiveProducer"),
    "naive-consumer": ("bench.naive", "NaiveConsumer"),
}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.node")
    p.add_argument("role", choices=sorted(ROLES))
    p.add_argument("--dir", required=True)
    p.add_argument("--amqp", required=True)
    p.add_argument("--max-workers", type=int, default=10)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--rate", type=float, default=0, help="events/s; 0 = back to back")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--warmup-rate", type=float, default=200)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=120,
                   help="consumer: give up this long after the producer is done")
    a = p.parse_args()
    module, cls_name = ROLES[a.role]
    service = getattr(importlib.import_module(module), cls_name)
    config = {"AMQP_URI": a.amqp, "max_workers": a.max_workers, "serializer": "json",
              "parent_calls_tracked": 10,
              "BENCH": {"dir": a.dir, "seconds": a.seconds, "rate": a.rate,
                        "warmup": a.warmup, "warmup_rate": a.warmup_rate,
                        "settle": a.settle}}
    runner = ServiceRunner(config)
    runner.add_service(service)
    if a.role.endswith("consumer"):
        from bench.harness import RECORDER
        runner.start()
        eventlet.spawn(RECORDER.watch, a.dir, a.timeout)
        say("READY")
        RECORDER.finished.wait()
        say("FINISHED")
    else:
        runner.start()
        say("READY")
        stop = Path(a.dir, "stop")
        while not stop.exists():
            eventlet.sleep(0.1)
    runner.stop()


if __name__ == "__main__":
    main()

"""``python -m shared.serve --config config.yaml services.<name>.service``: how every
service runs — ``nameko run`` (same arguments), with a bound on how long it stops.

nameko stops a service by stopping its entrypoints and waiting for its consumers to
let go, which they do only from their consume loop. With the broker or the vhost gone,
that loop does nothing but reconnect, so SIGTERM (or Ctrl-C) never ends the process. Here
a stop has ``LIANDONG_STOP_TIMEOUT`` seconds (default 10): past that the process logs
``service_stop_forced`` and exits with status 1. The bound is kept by an operating-system
thread, not a green one, so it holds even when the event loop itself is stuck.
"""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone

DEFAULT_STOP_TIMEOUT = 10.0
FORCED_EXIT_STATUS = 1


def stop_timeout() -> float:
    """Seconds a stopping service gets before its forced exit (``LIANDONG_STOP_TIMEOUT``)."""
    value = float(os.environ.get("LIANDONG_STOP_TIMEOUT", DEFAULT_STOP_TIMEOUT))
    if value <= 0:
        raise ValueError("LIANDONG_STOP_TIMEOUT must be a positive number of seconds")
    return value


def forced_exit(seconds: float, services: list[str]) -> None:
    """Log ``service_stop_forced`` (one JSON line, as shared/logging.py writes them) and
    end the process at once. Written straight to the file descriptor: this runs in a
    plain thread, where the green locks of the logging machinery must not be taken."""
    line = {"event": "service_stop_forced", "level": "error",
            "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "service": ",".join(services), "stop_timeout_s": seconds,
            "reason": "still stopping (consumers or dependencies waiting on the broker)"}
    try:
        os.write(sys.stdout.fileno(), (json.dumps(line) + "\n").encode())
    finally:
        os._exit(FORCED_EXIT_STATUS)


def arm_stop_bound(seconds: float, services: list[str]) -> None:
    """From now on the process has ``seconds`` to end by itself."""
    from eventlet import patcher
    threading = patcher.original("threading")
    real_time = patcher.original("time")

    def expire():
        real_time.sleep(seconds)
        forced_exit(seconds, services)

    threading.Thread(target=expire, name="stop-bound", daemon=True).start()


def bounded_runner():
    """nameko's ServiceRunner whose ``stop`` (SIGTERM, Ctrl-C) is bounded."""
    from nameko.runners import ServiceRunner

    class BoundedStopRunner(ServiceRunner):
        _bound_armed = False

        def stop(self):
            if not self._bound_armed:
                self._bound_armed = True
                arm_stop_bound(stop_timeout(), list(self.service_names))
            super().stop()

    return BoundedStopRunner


def main(argv: list[str] | None = None) -> None:
    import eventlet
    eventlet.monkey_patch()  # before anything imports sockets, as `nameko run` does
    try:
        stop_timeout()       # a bad setting stops the start, not the stop
    except ValueError as exc:
        sys.exit(f"liandong: {exc}")

    from nameko.cli import run as nameko_run
    from nameko.cli.main import main as nameko_main

    nameko_run.ServiceRunner = bounded_runner()   # what `nameko run` builds and stops
    sys.argv = ["nameko", "run", *(sys.argv[1:] if argv is None else argv)]
    nameko_main()


if __name__ == "__main__":
    main()

"""A stopping service ends within a bound (shared/serve.py), even with its vhost gone:
nameko alone would wait forever for consumers that only try to reconnect."""
from __future__ import annotations

import shutil
import subprocess
import uuid
from urllib.parse import quote

import pytest

from tests.conftest import Stack, vhost, wait_for

pytestmark = pytest.mark.e2e

BOUND = 3            # LIANDONG_STOP_TIMEOUT for these services, seconds
MARGIN = 12          # for the interpreter to go, on a busy machine


def test_sigterm_ends_a_service_within_the_bound_even_with_its_vhost_gone(servers, tmp_path):
    host, port, _ = servers
    if not host.endswith("@127.0.0.1") or not shutil.which("rabbitmqctl"):
        pytest.skip("needs the local broker and rabbitmqctl to delete a vhost")
    with vhost(f"liandong-stop-{uuid.uuid4().hex[:8]}", True) as vh:
        stack = Stack("sqlite", f"amqp://{host}:{port}/{quote(vh, safe='')}", tmp_path, None)
        try:
            tracker = stack.start("tracker", LIANDONG_STOP_TIMEOUT=str(BOUND))
            police = stack.start("police_handoff", LIANDONG_STOP_TIMEOUT=str(BOUND))
            # with the broker there: an orderly stop, not a forced one
            tracker.terminate()
            assert tracker.wait(timeout=BOUND + MARGIN) == 0, stack.log("tracker")[-2000:]
            assert "service_stop_forced" not in stack.log("tracker")

            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vh], check=True,
                           capture_output=True, timeout=60)
            wait_for(lambda: "Connection to broker lost" in stack.log("police_handoff"),
                     timeout=30, message="police_handoff reconnecting to the deleted vhost")
            police.terminate()
            try:
                code = police.wait(timeout=BOUND + MARGIN)
            except subprocess.TimeoutExpired:
                police.kill()
                pytest.fail(f"still running {BOUND + MARGIN}s after SIGTERM: "
                            f"{stack.log('police_handoff')[-2000:]}")
            log = stack.log("police_handoff")
            assert code == 1, (code, log[-2000:])
            forced = [line for line in log.splitlines() if "service_stop_forced" in line]
            assert len(forced) == 1 and '"service": "police_handoff"' in forced[0], log[-2000:]
            assert f'"stop_timeout_s": {float(BOUND)}' in forced[0], forced
        finally:
            for proc in stack.procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)

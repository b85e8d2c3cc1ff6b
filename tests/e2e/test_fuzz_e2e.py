"""Property-based fuzzing: schemathesis generates requests from the OpenAPI document
against the running gateway (as several roles); no input may cause a server error,
and afterwards every audit trail still verifies (no corrupted record)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import requests

from tests.conftest import ROOT, wait_for
from tests.helpers import COORDINATOR, MARKET, UNIT, token

pytestmark = pytest.mark.e2e
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "25")


def _up(base):
    try:
        return requests.get(base + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("actor", [UNIT, MARKET], ids=["enforcement_unit", "market"])
def test_no_input_causes_a_server_error(stack, actor, tmp_path):
    if stack.backend != "postgres":
        pytest.skip("the API layer is the same on both databases; fuzzed once, on PostgreSQL")
    wait_for(lambda: _up(stack.base_url), message="gateway HTTP")
    st = [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()"]
    out = subprocess.run(
        [*st, "run", f"{stack.base_url}/api/v1/openapi.json",
         "--checks", "not_a_server_error", "--max-examples", EXAMPLES, "--seed", "2026",
         "--header", f"Authorization: Bearer {token(actor)}", "--request-timeout", "30",
         # logout would revoke the run's own token (test_sessions_e2e covers it)
         "--exclude-path", "/metrics", "--exclude-path", "/api/v1/logout",
         "--workers", "2", "--phases", "fuzzing,stateful"],
        cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=900)
    report = out.stdout + out.stderr
    (tmp_path / "schemathesis.txt").write_text(report)
    assert out.returncode == 0, report[-4000:]
    calls = re.search(r"(\d+) generated", report) or re.search(r"(\d+) total", report)
    print(f"schemathesis as {actor.role}: {calls.group(0) if calls else report[-400:]}")
    with stack.rpc() as rpc:
        for service in ("police_handoff", "market_referral", "command"):
            result = getattr(rpc, service).verify_audit(token(COORDINATOR))
            assert result["problems"] == {}, service

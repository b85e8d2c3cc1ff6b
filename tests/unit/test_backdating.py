"""A step's time from the caller (``at``, shared/handoffs.py step_time): only in
development (the demo), never in the future, never before the previous step."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import InvalidInput, NotAllowed
from shared.handoffs import step_time


def test_production_refuses_a_backdated_step(monkeypatch):
    monkeypatch.setenv("LIANDONG_ENV", "production")
    assert step_time(None) <= datetime.now(UTC)
    with pytest.raises(NotAllowed) as err:
        step_time((datetime.now(UTC) - timedelta(days=3)).isoformat())
    assert "at" in err.value.errors


def test_development_takes_a_past_time_after_the_previous_step(monkeypatch):
    monkeypatch.setenv("LIANDONG_ENV", "development")
    then = datetime.now(UTC) - timedelta(days=3)
    assert step_time(then.isoformat()) == then
    earlier = then - timedelta(hours=5)
    assert step_time(earlier.isoformat(), after=then.isoformat()) == then   # follows it
    for bad in ((datetime.now(UTC) + timedelta(hours=1)).isoformat(), "yesterday",
                "2026-01-01T00:00:00"):
        with pytest.raises(InvalidInput):
            step_time(bad)

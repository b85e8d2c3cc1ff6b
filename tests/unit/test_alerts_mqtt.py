"""The MQTT intake's applier without a broker (SQLite in a temporary folder): a batch of
messages, in order, as if each were applied alone — repeats of a message id applied
once, repeats of a truck merged into its task, bad messages dead-lettered with their
reason; the topic names the source; MQTT_URL is read."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from services.alerts import store as st
from services.alerts.mqtt_intake import Applier, Settings, source_of
from shared.db import Store
from shared.errors import InvalidInput


def message(payload, source="wim-lc-01"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return SimpleNamespace(topic=f"liandong/alerts/{source}", payload=body, mid=1, qos=1)


def alert(alert_id, plate="浙C12345"):
    return {"alert_id": alert_id, "kind": "overlimit_wim", "plate": plate,
            "site": "WIM-LC-01", "gross_weight_kg": 68000, "limit_kg": 49000,
            "excess_percent": 38.8}


@pytest.fixture()
def store(tmp_path):
    s = Store("alerts", st.metadata, f"sqlite:///{tmp_path / 'alerts.db'}")
    yield s
    s.dispose()


def test_a_batch_applies_each_message_id_once_and_merges_repeats(store):
    applier = Applier(store)
    batch = [message(alert("a1")), message(alert("a1")), message(alert("a2")),
             message(alert("b1", "浙C54321")), message(b"{oops"),
             message({"alert_id": "u", "kind": "ufo"}),
             message(alert("a1"), source="another-site")]
    assert applier.apply(batch) == ["created", "duplicate", "merged", "created",
                                    "dead_letter", "dead_letter", "merged"]
    # the same messages again (a redelivery after a crash): nothing applied twice
    assert applier.apply(batch[:4]) == ["duplicate"] * 4
    with store.session() as s:
        assert s.execute(select(func.count()).select_from(st.intake)).scalar_one() == 4
        tasks = st.handoffs.search(s, kind="alert_task", limit=10)
        assert sorted(1 + t["repeats"] for t in tasks) == [1, 3]
        dead = st.list_dead_letters(s)
    assert [d["reason"][:17] for d in dead] == ["unknown kind of a", "not a JSON alert:"]
    assert dead[1]["payload"] == "{oops" and dead[1]["source"] == "wim-lc-01"
    assert applier.counts.outcomes == {"created": 2, "duplicate": 5, "merged": 2,
                                       "dead_letter": 2}


def test_the_topic_names_the_source_and_the_url_the_broker():
    assert source_of("liandong/alerts/wim-lc-01") == "wim-lc-01"
    for bad in ("wim-lc-01", "liandong/alerts/", "liandong/alerts/a b"):
        with pytest.raises(InvalidInput):
            source_of(bad)
    s = Settings.from_env({"MQTT_URL": "mqtt://intake:s%40cret@broker:1884"})
    assert s.address == ("broker", 1884, "intake", "s@cret")
    assert s.client_id == "liandong-alerts-intake" and s.topic == "liandong/alerts/+"
    with pytest.raises(ValueError):
        _ = Settings(url="http://broker").address


def test_a_message_the_code_cannot_apply_is_kept_and_the_rest_applied(store, monkeypatch):
    from services.alerts import domain
    real = domain.create

    def create(command, actor, data, now):
        if data["plate"] == "浙C00000":
            raise KeyError("boom")
        return real(command, actor, data, now)
    monkeypatch.setattr(domain, "create", create)
    applier = Applier(store)
    out = applier.apply([message(alert("p1", "浙C00000")), message(alert("ok1"))])
    assert out == ["dead_letter", "created"]
    with store.session() as s:
        (dead,) = st.list_dead_letters(s)
    assert dead["reason"].startswith("could not be applied: KeyError")

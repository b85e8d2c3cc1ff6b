"""Who is told what (services/notifications/domain.py), the channels' signatures and the
configuration check."""
from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

import pytest

from services.notifications import domain
from shared.errors import InvalidInput


def envelope(type_, **data):
    return {"id": "e1", "type": type_, "data": {"kind": "criminal_referral",
                                                "case_number": "WZ-1", **data}}


def test_a_transfer_tells_the_police_it_was_sent_to():
    [note] = domain.notices(envelope("criminal_referral.transferred.v1", owner_unit="lc-team",
                                     details={"police_unit": "lucheng-psb"}))
    assert note["unit"] == "lucheng-psb" and note["topic"] == "new_handoff"


def test_a_deadline_alert_goes_to_the_side_that_must_act():
    police = domain.notices(envelope("deadline.breached.v1", owner_unit="team",
                                     counterpart_unit="psb", level="breached",
                                     deadline={"actor_role": "police", "title": "审查"}))
    head = domain.notices(envelope("deadline.approaching.v1", owner_unit="team",
                                   counterpart_unit="psb", level="approaching",
                                   deadline={"actor_role": "agency_head", "title": "审批"}))
    assert police[0]["unit"] == "psb" and police[0]["topic"] == "deadline_breached"
    assert head[0]["unit"] == "team" and "即将到期" in head[0]["text"]


def test_dispatch_escalation_and_return():
    sent = domain.notices(envelope("joint_action.dispatched.v1", details={
        "recipients": ["a-command", "b-psb"], "title": "整治"}))
    assert [n["unit"] for n in sent] == ["a-command", "b-psb"]
    [up] = domain.notices(envelope("joint_action.escalated.v1", details={
        "escalated_to": "wenzhou-command", "recipient": "a-command", "miss": "acknowledgement"}))
    assert up["unit"] == "wenzhou-command" and up["topic"] == "escalation"
    [back] = domain.notices(envelope("market_referral.returned.v1", owner_unit="lc-team",
                                     details={"reason": "缺照片"}))
    assert back["unit"] == "lc-team" and "缺照片" in back["text"]
    assert domain.notices(envelope("criminal_referral.approved.v1", owner_unit="x")) == []


def test_dingtalk_signature_is_the_robots_scheme():
    url = domain.dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=T", "SEC",
                              1700000000000)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    expected = base64.b64encode(hmac.new(b"SEC", b"1700000000000\nSEC",
                                         hashlib.sha256).digest()).decode()
    assert query["timestamp"] == ["1700000000000"] and query["sign"] == [expected]
    assert query["access_token"] == ["T"]


def test_webhook_signature_and_stable_keys():
    body = b'{"a": 1}'
    assert domain.webhook_signature("k", body) == "sha256=" + hmac.new(
        b"k", body, hashlib.sha256).hexdigest()
    assert domain.delivery_key("e", "u", "c") == domain.delivery_key("e", "u", "c")
    assert domain.delivery_key("e", "u", "c") != domain.delivery_key("e", "u", "d")
    assert [domain.backoff_seconds(n) for n in (1, 2, 3, 20)] == [2, 4, 8, 3600]


def test_config_keeps_secrets_out_and_names_every_problem():
    doc = {"default": [{"type": "log"}],
           "units": {"u": [{"type": "webhook", "url": "http://x", "secret_env": "S"}]}}
    assert domain.check_config(doc) is doc
    assert [c["type"] for _n, c in domain.channels_of("u", doc)] == ["webhook"]
    assert [c["type"] for _n, c in domain.channels_of("other", doc)] == ["log"]
    with pytest.raises(InvalidInput) as err:
        domain.check_config({"units": {"u": [{"type": "dingtalk", "secret": "plain"},
                                             {"type": "fax"}]}})
    assert set(err.value.errors) == {"units.u[0]", "units.u[1]"}
    domain.config.cache_clear()
    assert domain.config()["default"] == [{"type": "log"}]      # the shipped file

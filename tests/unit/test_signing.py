"""Envelopes are signed by their issuer and checked by receivers."""
from __future__ import annotations

import pytest

from shared import envelope as env
from shared import signing
from shared.envelope import EnvelopeError

SOURCE = "/wenzhou/transport/police_handoff"


def envelope(**over):
    e = env.make_envelope(event_type="criminal_referral.filed.v1", source=SOURCE,
                          subject="r-1", data={"x": 1}, sequence=3)
    e.update(over)
    return e


def test_signed_envelope_verifies_and_keys_are_private(tmp_path):
    signed = signing.sign(envelope(), tmp_path)
    assert signed["signer"] == "police_handoff"
    signing.verify(signed, tmp_path)
    assert (tmp_path / "police_handoff.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "police_handoff.pub").exists()
    # round trip through the wire format and the decoder
    signing.verify(env.decode(env.encode(signed)), tmp_path)


@pytest.mark.parametrize("tamper, reason", [
    (lambda e: {k: v for k, v in e.items() if k != "signature"}, "unsigned"),
    (lambda e: {**e, "data": {"x": 2}}, "forged or altered"),
    (lambda e: {**e, "sequence": 4}, "forged or altered"),
    (lambda e: {**e, "source": "/wenzhou/coordination/tracker"}, "forged source"),
    (lambda e: {**e, "signer": "tracker"}, "forged source"),
])
def test_tampered_envelopes_are_refused(tmp_path, tamper, reason):
    signed = signing.sign(envelope(), tmp_path)
    with pytest.raises(EnvelopeError) as err:
        signing.verify(tamper(signed), tmp_path)
    assert reason in str(err.value)


def test_signature_by_another_publisher_is_refused(tmp_path):
    by_tracker = signing.sign(envelope(source="/wenzhou/coordination/tracker"), tmp_path)
    by_tracker["source"] = SOURCE
    with pytest.raises(EnvelopeError, match="forged source"):
        signing.verify(by_tracker, tmp_path)


def test_unknown_source_cannot_sign(tmp_path):
    with pytest.raises(ValueError, match="no publisher owns"):
        signing.sign(envelope(source="/somewhere/else"), tmp_path)



ARGS = {"event_type": "criminal_referral.drafted.v1", "source": SOURCE, "subject": "s",
        "data": {}, "sequence": 1}


@pytest.mark.parametrize(("argument", "field", "value"), [
    ("subject", "subject", ""), ("subject", "subject", "s" * 201), ("sequence", "sequence", 0),
    ("sequence", "sequence", True), ("event_type", "type", "NotAType"),
    ("data", "data", ["not", "a", "mapping"]), ("source", "source", 7)])
def test_a_producer_built_envelope_is_checked_as_the_schema_checks_it(argument, field, value):
    """make_envelope checks its arguments without a marshmallow load (issue 16): what it
    refuses, the full schema a consumer loads with refuses for the same field; what it
    builds, the full schema accepts."""
    with pytest.raises(EnvelopeError) as err:
        env.make_envelope(**{**ARGS, argument: value})
    assert set(err.value.errors) == {field}
    good = env.make_envelope(**ARGS)
    assert env._schema.validate(good) == {}
    assert set(env._schema.validate({**good, field: value})) == {field}

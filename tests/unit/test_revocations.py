"""The revocation follower of every service (shared/revocations.py), without a broker:
which services join it, and how it stays fail-closed across a lost connection."""
from __future__ import annotations

import importlib
import inspect
from unittest import mock

import pytest

from shared import revocations
from shared.cli import SERVICES
from shared.errors import Unavailable
from shared.revocations import Revocations


def service_class(name: str):
    module = importlib.import_module(f"services.{name}.service")
    return next(obj for obj in vars(module).values()
                if inspect.isclass(obj) and getattr(obj, "name", None) == name)


def test_every_service_that_takes_tokens_follows_the_revocations():
    """A service whose RPC methods take a token must refuse revoked ones: it joins with
    ``revocations = Revocations()`` (the gateway checks its own table instead)."""
    takes_tokens = []
    for name in SERVICES:
        if name == "gateway":
            continue
        cls = service_class(name)
        if any("token" in inspect.signature(fn).parameters
               for _, fn in inspect.getmembers(cls, inspect.isfunction)):
            takes_tokens.append(name)
            joined = [attr for attr, value in vars(cls).items()
                      if isinstance(value, Revocations)]
            assert joined, f"{name} takes tokens but does not follow the revocations"
    assert "notifications" in takes_tokens and len(takes_tokens) >= 7, takes_tokens


# --------------------------------------------------------------------------- follower

class Gateway:
    """What ``gateway.revocations`` answers; each fetch is logged."""

    def __init__(self, log):
        self.entries: list[dict] = []
        self.log = log

    def fetch(self, _uri):
        self.log.append("fetch")
        return list(self.entries)


class Broker:
    """Fake kombu Connection/Consumer: each connection plays a script of what
    ``drain_events`` does ("timeout", "drop", or a callable run in its place)."""

    def __init__(self, log):
        self.log = log
        self.scripts: list[list] = []

    def connection(self, uri, heartbeat=None):
        broker, script = self, list(self.scripts.pop(0))

        class Conn:
            def __enter__(self):
                broker.log.append("connect")
                return self

            def __exit__(self, *exc):
                broker.log.append("close")

            def drain_events(self, timeout):
                step = script.pop(0)
                if step == "timeout":
                    raise TimeoutError
                if step == "drop":
                    raise ConnectionResetError(104, "Connection reset by peer")
                step()

            def heartbeat_check(self):
                pass
        return Conn()

    def consumer(self, conn, queues, on_message, accept):
        broker = self

        class Bound:
            def __enter__(self):
                broker.log.append("bind")     # the queue exists: events reach it from now

            def __exit__(self, *exc):
                pass
        return Bound()


@pytest.fixture
def follower(monkeypatch):
    log: list[str] = []
    broker, gateway = Broker(log), Gateway(log)
    monkeypatch.setattr(revocations, "Connection", broker.connection)
    monkeypatch.setattr(revocations, "Consumer", broker.consumer)
    monkeypatch.setenv("LIANDONG_REVOCATION_WAIT", "0")
    rev = Revocations()
    rev.container = mock.Mock(service_name="police_handoff", config={"AMQP_URI": "amqp://x"})
    rev._fetch = gateway.fetch
    rev._running = True
    return rev, broker, gateway, log


def test_not_current_after_a_lost_connection_until_the_list_is_fetched_again(follower):
    rev, broker, gateway, log = follower
    claims = {"jti": "j-1", "sub": "u-1", "iat": 100}
    seen_while_up = []

    def revoke_while_connected_elsewhere():
        # the service is current; a revocation is committed while its connection is
        # about to drop, so the event never reaches it
        seen_while_up.append(rev.current)
        gateway.entries.append({"jti": "j-1", "sub": "u-1", "expires": 2**31})

    broker.scripts = [["timeout", revoke_while_connected_elsewhere, "drop"]]
    with pytest.raises(ConnectionResetError):
        rev._follow("amqp://x", "q")
    assert seen_while_up == [True]
    assert log == ["connect", "bind", "fetch", "close"]
    assert rev.current is False
    with pytest.raises(Unavailable):          # fail closed: it may have missed an event
        rev.check(claims)

    def stop():
        seen_while_up.append(rev.current)
        rev._running = False
    broker.scripts = [[stop]]
    rev._follow("amqp://x", "q")               # reconnected (another node)
    # bound before fetching, the whole list fetched again before it was current
    assert log[4:] == ["connect", "bind", "fetch", "close"]
    assert seen_while_up == [True, True]
    rev.current = True                         # (stopping cleared it)
    assert rev.check(claims) is True           # the revocation it missed is known
    assert rev.check({"jti": "j-2", "sub": "u-2", "iat": 100}) is False


def test_a_fetch_that_fails_leaves_it_not_current(follower):
    rev, broker, _gateway, log = follower

    def no_answer(_uri):
        log.append("fetch")
        raise TimeoutError("gateway.revocations did not answer")
    rev._fetch = no_answer
    broker.scripts = [["timeout"]]
    with pytest.raises(TimeoutError):
        rev._follow("amqp://x", "q")
    assert log == ["connect", "bind", "fetch", "close"] and rev.current is False
    with pytest.raises(Unavailable):
        rev.check({"jti": "j", "sub": "u", "iat": 1})

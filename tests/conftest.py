"""Test harness: real RabbitMQ and real databases.

Where a Docker engine answers, pytest-docker starts docker-compose.yml's rabbitmq and
postgres; otherwise (as on the CI machine) the tests use the servers already running
on 127.0.0.1 (RabbitMQ 5672, PostgreSQL 5432). Each stack of services gets its own
RabbitMQ virtual host and its own databases, so runs never see each other's messages.
"""
from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The tests run in development mode, said explicitly (the default is production, where a
# service refuses to start without production token keys): token keys are created on
# first use, in the session's own folder (see _own_keys), never in var/.
os.environ["LIANDONG_ENV"] = "development"
for _leftover in ("LIANDONG_SECRET", "LIANDONG_TOKEN_PUBLIC_KEYS"):
    os.environ.pop(_leftover, None)

RABBIT_HOST = os.environ.get("TEST_RABBIT_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("TEST_RABBIT_PORT", "5672"))
PG_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432")


@functools.cache
def _docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session", autouse=True)
def _own_keys(tmp_path_factory):
    """Signing keys of in-process code (unit tests) go to a temporary folder, never var/.

    Token keys: one folder for the whole session, shared by this process (tests sign
    tokens with the gateway's development key, as the gateway does) and by every stack
    (Stack.env inherits it), so a token made here is accepted by either backend's services.
    """
    os.environ["LIANDONG_KEYS_DIR"] = str(tmp_path_factory.mktemp("keys"))
    os.environ["LIANDONG_TOKEN_KEYS_DIR"] = str(tmp_path_factory.mktemp("token-keys"))


@pytest.fixture(scope="session")
def docker_compose_file():
    """pytest-docker: the project's own compose file (not tests/docker-compose.yml)."""
    return str(ROOT / "docker-compose.yml")


@pytest.fixture(scope="session")
def docker_setup(tmp_path_factory):
    """pytest-docker: only the servers; the tests start the services themselves. The
    compose file requires token keys (no default) even to start these two: the tests'."""
    from shared import tokenkeys
    keys = tmp_path_factory.mktemp("compose-token-keys")
    tokenkeys.init(["gateway"], keys)
    os.environ.setdefault("TOKEN_PUBLIC_KEYS_DIR", str(keys / "public"))
    os.environ.setdefault("GATEWAY_TOKEN_KEY", str(keys / "gateway.key"))
    for name in ("RABBITMQ_PASSWORD", "POSTGRES_PASSWORD", "RABBITMQ_ERLANG_COOKIE"):
        os.environ.setdefault(name, "tests-only-" + uuid.uuid4().hex)   # development values
    return ["up --build -d rabbitmq postgres"]


@pytest.fixture(scope="session")
def servers(request):
    """(rabbit credentials@host, rabbit port, postgres DSN) of real servers."""
    if _docker_engine():  # pragma: no cover - no engine on the CI machine
        docker_ip = request.getfixturevalue("docker_ip")
        docker_services = request.getfixturevalue("docker_services")
        rport = docker_services.port_for("rabbitmq", 5672)
        pport = docker_services.port_for("postgres", 5432)
        docker_services.wait_until_responsive(
            timeout=90, pause=1, check=lambda: _port_open(docker_ip, rport))
        return (f"liandong:liandong@{docker_ip}", rport,
                f"postgresql://postgres:liandong@{docker_ip}:{pport}")
    for name, host, port in (("RabbitMQ", RABBIT_HOST, RABBIT_PORT),
                             ("PostgreSQL", "127.0.0.1", 5432)):
        if not _port_open(host, port):
            pytest.fail(f"{name} is not answering on {host}:{port}; `make test` starts it "
                        f"(see Makefile target `servers`)")
    return f"guest:guest@{RABBIT_HOST}", RABBIT_PORT, PG_DSN


@contextmanager
def vhost(name: str, local: bool):
    """A RabbitMQ virtual host of our own (rabbitmqctl, when the broker is local)."""
    if not local or not shutil.which("rabbitmqctl"):
        yield "/"
        return
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*",
                    ".*"], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drop_databases(dsn: str, prefix: str) -> None:
    from sqlalchemy import create_engine, text

    from shared.db import normalize_url
    engine = create_engine(normalize_url(f"{dsn}/postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        names = conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                             {"p": prefix + "%"}).scalars().all()
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


class Stack:
    """Running services of one backend, started as real processes (`nameko run`)."""

    def __init__(self, backend: str, amqp_uri: str, tmp: Path, database_url: str | None):
        self.backend = backend
        self.amqp_uri = amqp_uri
        self.tmp = tmp
        self.database_url = database_url
        self.procs: dict[str, subprocess.Popen] = {}
        self.http_port = free_port()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def env(self) -> dict:
        env = {**os.environ, "AMQP_URI": self.amqp_uri, "LIANDONG_DATA_DIR": str(self.tmp),
               "PYTHONWARNINGS": "ignore", "LOG_LEVEL": "INFO",
               "WEB_SERVER_ADDRESS": f"127.0.0.1:{self.http_port}",
               "TRACKER_SWEEP_SECONDS": "1", "LIANDONG_ENV": "development",
               # every test signs in from 127.0.0.1: trust it as a proxy (the throttle
               # tests name their addresses in X-Forwarded-For) and do not lock the
               # address out when the fuzz run sends thousands of wrong sign-ins
               "LIANDONG_TRUSTED_PROXIES": "127.0.0.1",
               "LIANDONG_SIGNIN_THROTTLE": '{"address_failures": 1000000}'}
        env.pop("DATABASE_URL", None)
        env["LIANDONG_KEYS_DIR"] = str(self.tmp / "keys")
        env.pop("LIANDONG_FAULT", None)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        return env

    def start(self, name: str, wait: bool = True, command: list[str] | None = None,
              **extra_env) -> subprocess.Popen:
        """Start a service (``command``: another nameko service than services/<name>)."""
        from shared.cli import service_command
        log = open(self.tmp / f"{name}.log", "ab")
        proc = subprocess.Popen(command or service_command(name), cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, env={**self.env, **extra_env})
        self.procs[name] = proc
        if wait:
            self.wait_healthy(name)
        return proc

    def wait_healthy(self, name: str, timeout: float = 60) -> None:
        from shared.healthcheck import check
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log(name)[-3000:]}")
            try:
                check(name, timeout=3, uri=self.amqp_uri)
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.3)
        raise RuntimeError(f"{name} not healthy in {timeout}s: {self.log(name)[-3000:]}")

    def stop(self, name: str, kill: bool = False) -> int:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.kill() if kill else proc.terminate()
        return proc.wait(timeout=30)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def store(self, service: str):
        """A second handle on a service's own database (for checks and fault tests)."""
        import importlib

        from shared.db import Store
        module = importlib.import_module(f"services.{service}.store")
        url = (self.database_url.replace("{service}", service) if self.database_url
               else f"sqlite:///{self.tmp / (service + '.db')}")
        return Store(service, module.metadata, url)

    def tamper(self, service: str, table: str, sql: str, params: dict) -> None:
        """Change an append-only table behind its triggers' back (the audit tests)."""
        from sqlalchemy import text
        store = self.store(service)
        with store.transaction() as s:
            if self.backend == "postgres":
                s.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            else:
                s.execute(text(f"DROP TRIGGER {table}_no_update"))
            s.execute(text(sql), params)
            if self.backend == "postgres":
                s.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        store.dispose()

    @contextmanager
    def rpc(self, timeout: float = 30):
        from nameko.standalone.rpc import ClusterRpcProxy
        with ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=timeout) as proxy:
            yield proxy

    def shutdown(self) -> None:
        for name in list(self.procs):
            self.stop(name)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def stack(request, servers, tmp_path_factory):
    host, port, pg_dsn = servers
    run_id = uuid.uuid4().hex[:8]
    backend = request.param
    tmp = tmp_path_factory.mktemp(f"stack-{backend}")
    prefix = f"lt_{run_id}_"
    database_url = f"{pg_dsn}/{prefix}{{service}}" if backend == "postgres" else None
    local = host.endswith("@127.0.0.1") and not _docker_engine()
    with vhost(f"liandong-test-{run_id}", local) as vh:
        from urllib.parse import quote
        uri = f"amqp://{host}:{port}/{quote(vh, safe='')}"
        s = Stack(backend, uri, tmp, database_url)
        try:
            from shared.cli import SERVICES
            for name in SERVICES:       # every service of the system, as `make run` does
                s.start(name)
            yield s
        finally:
            s.shutdown()
            if database_url:
                drop_databases(pg_dsn, prefix)


def wait_for(predicate, timeout: float = 30, interval: float = 0.1, message: str = ""):
    """Poll until ``predicate()`` returns a truthy value; return it or fail."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}: last={last!r}")

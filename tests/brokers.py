"""Private RabbitMQ nodes for fault-injection tests.

The machine's shared node (``rabbit@localhost`` on 5672) is never touched: every node
started here has its own name (``ldt<run>-<i>@localhost``), its own AMQP and
distribution ports, its own data, log, pid, config and enabled-plugins files under one
temporary directory, and its own Erlang cookie (a private ``HOME``), so no command sent
to it can reach the shared node by mistake.

    with Brokers() as brokers:
        a, b, c = brokers.cluster(3)        # three nodes, b and c joined to a
        uri = a.uri()                       # amqp://guest:guest@127.0.0.1:<port>/
        c.stop(); c.start()                 # a full node restart
        a.stop_app(); a.start_app()         # the RabbitMQ application only
    # every node stopped (or killed) and every directory removed

The scripts in ``/usr/lib/rabbitmq/bin`` are run directly, as the current user; the
Debian wrappers in ``/usr/sbin`` would switch to the ``rabbitmq`` user and its cookie.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

LIB_BIN = Path("/usr/lib/rabbitmq/bin")
_taken_ports: set[int] = set()
_lock = threading.Lock()


def script(name: str) -> str | None:
    """Path of a RabbitMQ script that runs as the current user (None: not installed)."""
    direct = LIB_BIN / name
    if direct.exists():
        return str(direct)
    return shutil.which(name)


def available() -> bool:
    """Whether ``rabbitmq-server`` and ``rabbitmqctl`` are installed on this machine."""
    return bool(shutil.which("rabbitmq-server") or script("rabbitmq-server")) and \
        bool(script("rabbitmqctl"))


def free_port(low: int = 20000, high: int = 32000) -> int:
    """A free TCP port on 127.0.0.1 below the ephemeral range (so the CLI's
    distribution ports, derived from it, stay valid) and not handed out before."""
    with _lock:
        for _ in range(500):
            port = random.randint(low, high)
            if port in _taken_ports:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _taken_ports.add(port)
            return port
    raise RuntimeError("no free port found")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def _pids_with_env(marker: bytes) -> list[int]:
    """Processes whose environment holds ``marker`` (e.g. b"RABBITMQ_NODENAME=x@localhost"):
    how leftovers of one of our nodes are found, whatever their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "comm").read_text().strip() == "epmd":
                continue        # the port mapper is shared by every node: never ours
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


class BrokerError(RuntimeError):
    pass


class Node:
    """One private RabbitMQ node (a ``rabbitmq-server -detached`` process)."""

    def __init__(self, brokers: Brokers, index: int):
        self.brokers = brokers
        self.index = index
        self.short = f"{brokers.prefix}-{index}"
        self.nodename = f"{self.short}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.ctl_port = free_port()          # the CLI's own distribution ports: +0..+9
        self.dir = brokers.base / self.short
        self.log_dir = self.dir / "log"
        self.pid_file = self.dir / "rabbitmq.pid"
        self._prepared = False
        # more rabbitmq.conf lines (set before the first start), e.g. load_definitions
        self.extra_conf: list[str] = []

    def __repr__(self) -> str:
        return f"<Node {self.nodename} amqp:{self.port}>"

    # -------------------------------------------------------------- environment

    @property
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update({
            "HOME": str(self.brokers.home),              # private Erlang cookie
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.log_dir),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            # not /etc/rabbitmq/rabbitmq-env.conf (the shared node's name and settings)
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CTL_DIST_PORT_MIN": str(self.ctl_port),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(self.ctl_port + 9),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        })
        return env

    def _prepare(self, peers: list[str] | None = None) -> None:
        """Write the node's files; ``peers``: nodes to join on first boot (classic
        peer discovery, as deploy/rabbitmq/rabbitmq.conf does for compose)."""
        if self._prepared:
            return
        for d in (self.dir, self.log_dir, self.dir / "mnesia"):
            d.mkdir(parents=True, exist_ok=True)
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("# private test node: no settings\n")
        conf = ["# private test node (tests/brokers.py)",
                "log.console = false",
                "log.file.level = info",
                "cluster_partition_handling = pause_minority",
                "disk_free_limit.absolute = 50MB"]
        conf += self.extra_conf
        if peers:
            conf += ["cluster_formation.peer_discovery_backend = classic_config"]
            conf += [f"cluster_formation.classic_config.nodes.{i} = {peer}"
                     for i, peer in enumerate(peers, start=1)]
        (self.dir / "rabbitmq.conf").write_text("\n".join(conf) + "\n")
        self._prepared = True

    def uri(self, vhost: str = "/", user: str = "guest", password: str = "guest") -> str:
        from urllib.parse import quote
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}/{quote(vhost, safe='')}"

    # -------------------------------------------------------------- commands

    def ctl(self, *args: str, timeout: float = 90, check: bool = True
            ) -> subprocess.CompletedProcess:
        """``rabbitmqctl -n <this node> ARGS`` with this node's environment."""
        cmd = [script("rabbitmqctl"), "-n", self.nodename, *args]
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.dir)
        if check and done.returncode != 0:
            raise BrokerError(f"{' '.join(cmd[1:])} failed ({done.returncode}): "
                              f"{done.stdout[-1500:]}{done.stderr[-1500:]}")
        return done

    @property
    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def pids(self) -> list[int]:
        """Every live process of this node (the VM and its helpers)."""
        found = set(_pids_with_env(f"RABBITMQ_NODENAME={self.nodename}".encode()))
        if self.pid:
            found.add(self.pid)
        return sorted(p for p in found if _pid_alive(p))

    def spawn(self, peers: list[str] | None = None) -> None:
        """``rabbitmq-server -detached`` (returns at once; see ``await_startup``)."""
        self._prepare(peers)
        if self.pids():
            raise BrokerError(f"{self.nodename} is already running")
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        out = open(self.log_dir / "startup.log", "ab")
        done = subprocess.run([script("rabbitmq-server"), "-detached"], env=self.env,
                              stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
                              timeout=60)
        out.close()
        if done.returncode != 0:
            raise BrokerError(f"rabbitmq-server -detached ({self.nodename}) exited "
                              f"{done.returncode}: {self.startup_log()[-2000:]}")

    def await_startup(self, timeout: float = 120) -> None:
        """Wait until the node's AMQP port answers (cheap polling: a CLI call costs a
        second of CPU), then confirm with ``rabbitmqctl await_startup``."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not port_open(self.port):
                if not self.pids() and time.monotonic() > deadline - timeout + 10:
                    raise BrokerError(f"{self.nodename} is not running: "
                                      f"{self.startup_log()[-2000:]}{self.log()[-2000:]}")
                time.sleep(0.3)
                continue
            remaining = max(5, int(deadline - time.monotonic()))
            done = self.ctl("await_startup", "--timeout", str(remaining),
                            check=False, timeout=remaining + 30)
            if done.returncode == 0:
                return
            last = done.stdout[-800:] + done.stderr[-800:]
            time.sleep(0.5)
        raise BrokerError(f"{self.nodename} did not start in {timeout}s: {last}\n"
                          f"{self.startup_log()[-2000:]}{self.log()[-2000:]}")

    def start(self, timeout: float = 120) -> Node:
        self.spawn()
        self.await_startup(timeout)
        return self

    def stop(self, timeout: float = 60) -> None:
        """Stop the whole node (the Erlang VM) gracefully; kill it if that fails."""
        pids = self.pids()
        if not pids:
            return
        self.ctl("stop", check=False, timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
            time.sleep(0.2)
        self.kill()

    def terminate(self, timeout: float = 60) -> None:
        """SIGTERM to the VM: the same orderly shutdown as ``rabbitmqctl stop``
        without starting a CLI node first; killed if it takes longer than ``timeout``."""
        pids = self.pids()
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
            time.sleep(0.1)
        self.kill()

    def kill(self) -> None:
        """SIGKILL every process of this node (a crash, or leftovers at teardown)."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
            time.sleep(0.1)

    def stop_app(self) -> None:
        """Stop the RabbitMQ application; the VM keeps running (clients are cut off)."""
        self.ctl("stop_app")

    def start_app(self, timeout: float = 120) -> None:
        self.ctl("start_app", timeout=timeout)
        self.await_startup(timeout)

    @property
    def running(self) -> bool:
        return bool(self.pids()) and port_open(self.port)

    def add_vhost(self, name: str, user: str = "guest") -> str:
        self.ctl("add_vhost", name)
        self.ctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        return name

    def cluster_nodes(self) -> list[str]:
        """Running nodes of this node's cluster."""
        import json
        out = self.ctl("cluster_status", "--formatter", "json").stdout
        return sorted(json.loads(out[out.index("{"):]).get("running_nodes", []))

    def list_queues(self, vhost: str, *items: str) -> list[dict]:
        """``rabbitmqctl list_queues -p VHOST ITEMS`` as dicts."""
        import json
        out = self.ctl("list_queues", "-p", vhost, "--formatter", "json",
                       *(items or ("name", "messages", "consumers"))).stdout
        return json.loads(out[out.index("["):]) if "[" in out else []

    def startup_log(self) -> str:
        path = self.log_dir / "startup.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log(self) -> str:
        path = self.log_dir / f"{self.nodename}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Brokers:
    """A set of private nodes under one temporary directory; ``teardown()`` (or leaving
    the ``with`` block, or the interpreter exiting) stops them and removes it."""

    def __init__(self, base: Path | None = None, prefix: str | None = None):
        if not available():
            raise BrokerError("rabbitmq-server is not installed")
        self.prefix = prefix or f"ldt{secrets.token_hex(3)}"
        self.base = Path(base or tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.base.mkdir(parents=True, exist_ok=True)
        self.home = self.base / "home"
        self.home.mkdir(exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        self.nodes: list[Node] = []
        self._closed = False
        atexit.register(self.teardown)

    def __enter__(self) -> Brokers:
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def new_node(self) -> Node:
        node = Node(self, len(self.nodes) + 1)
        self.nodes.append(node)
        return node

    def node(self, timeout: float = 120) -> Node:
        """A new stand-alone node, started."""
        return self.new_node().start(timeout)

    def cluster(self, size: int = 3, timeout: float = 180) -> list[Node]:
        """``size`` new nodes in one cluster (the first started alone, see ``grow``)."""
        first = self.node(timeout)
        return [first, *self.grow(first, size - 1, timeout)]

    def grow(self, first: Node, count: int, timeout: float = 180) -> list[Node]:
        """``count`` new nodes joined to ``first``'s cluster. They start together and
        join on first boot (classic peer discovery, as in deploy/rabbitmq); one that
        did not is joined by hand (``stop_app``, ``join_cluster``, ``start_app``)."""
        nodes = [self.new_node() for _ in range(count)]
        for node in nodes:
            node.spawn(peers=[first.nodename])
        for node in nodes:
            node.await_startup(timeout)
        running = first.cluster_nodes()
        for node in nodes:
            if node.nodename not in running:
                node.stop_app()
                node.ctl("join_cluster", first.nodename)
                node.start_app(timeout)
        running = first.cluster_nodes()
        missing = [n.nodename for n in nodes if n.nodename not in running]
        if missing:
            raise BrokerError(f"{missing} did not join {first.nodename}: {running}")
        return nodes

    def teardown(self) -> None:
        """Stop every node at once (SIGTERM, then SIGKILL after 20 s), find leftovers by
        node name (never by program name), remove the directory."""
        if self._closed:
            return
        self._closed = True
        pids = {node: node.pids() for node in self.nodes}
        for node, node_pids in pids.items():
            if node.pid in node_pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(
                _pid_alive(p) for node_pids in pids.values() for p in node_pids):
            time.sleep(0.2)
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.base, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.teardown)

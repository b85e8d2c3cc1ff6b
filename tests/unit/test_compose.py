"""Static checks of docker-compose.yml, the Dockerfile and deploy/rabbitmq/rabbitmq.conf.

No Docker engine is needed: the files are parsed and cross-checked against the repository
(every ``services/<name>/service.py`` must have a compose service, the image must carry
every package the services import, ...). Only ``docker compose config`` needs docker and is
skipped without an engine.
"""
from __future__ import annotations

import ast
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
RABBITMQ_CONF = ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf"

# Not Python packages, but read at run time: the procedure/judgment standards
# (shared/standards.py resolves contracts/ next to shared/) and the nameko config file.
RUNTIME_DATA = {"contracts", "config.yaml"}


def service_names() -> list[str]:
    """Every service of the repository: services/<name>/service.py."""
    return sorted(p.parent.name for p in ROOT.glob("services/*/service.py"))


def load_compose() -> dict:
    # safe_load resolves the anchors and `<<` merge keys the compose file uses.
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def environment(svc: dict) -> dict:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def depends_on(svc: dict) -> list[str]:
    deps = svc.get("depends_on") or []
    return list(deps) if isinstance(deps, (list, dict)) else []


def healthcheck_test(svc: dict) -> str:
    check = svc.get("healthcheck") or {}
    if check.get("disable"):
        return ""
    test = check.get("test") or ""
    return " ".join(test) if isinstance(test, list) else str(test)


def active_in(svc: dict, profile: str | None) -> bool:
    """Whether the service runs with `--profile <profile>` (None: no profile given)."""
    profiles = svc.get("profiles") or []
    return not profiles or profile in profiles


def bind_source(volume) -> str | None:
    """Host path of a bind mount (short or long syntax), None for named volumes."""
    if isinstance(volume, dict):
        return volume.get("source") if volume.get("type", "bind") == "bind" else None
    source = str(volume).split(":", 1)[0]
    return source if source.startswith((".", "/", "~")) else None


# --- Liandong services ---------------------------------------------------------------


def test_services_are_discovered():
    assert service_names(), "no services/*/service.py found: the glob is broken"


@pytest.mark.parametrize("name", service_names())
def test_every_service_has_a_compose_entry(services, name):
    assert name in services, (
        f"services/{name}/service.py has no `{name}` service in docker-compose.yml "
        f"(copy an existing service entry; the x-service extension carries the rest)")
    svc = services[name]

    build = svc.get("build")
    assert build, f"{name}: must be built from the Dockerfile"
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE.resolve(), name

    env = environment(svc)
    for key in ("AMQP_URI", "DATABASE_URL"):
        assert env.get(key), f"{name}: {key} not set"
    assert re.match(r"^amqp://[^@/]+@rabbitmq:5672/", env["AMQP_URI"]), env["AMQP_URI"]
    assert "{service}" in env["DATABASE_URL"], "one database per service: keep {service}"

    runs = env.get("SERVICE") == name or f"services.{name}.service" in str(svc.get("command"))
    assert runs, f"{name}: SERVICE={env.get('SERVICE')!r} does not start services.{name}"

    check = healthcheck_test(svc)
    assert "shared.healthcheck" in check and name in check.split(), (
        f"{name}: healthcheck must be `python -m shared.healthcheck {name}`, got {check!r}")

    deps = svc.get("depends_on") or {}
    for infra in ("rabbitmq", "postgres"):
        assert infra in deps, f"{name}: must depend on {infra}"
        if isinstance(deps, dict):
            assert deps[infra].get("condition") == "service_healthy", (name, infra)


# --- token keys (issue 20): no known secret, public keys only, the gateway's own key ----

INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z0-9_]+)(?P<op>:?[-?+=])?(?P<arg>[^}]*)\}")
KEY_MAKER = "liandong keys init"


def interpolations(text: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for m in INTERPOLATION.finditer(text):
        found.setdefault(m["name"], []).append((m["op"] or "", m["arg"]))
    return found


def test_no_token_secret_and_no_default_for_any_key():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "LIANDONG_SECRET" not in text, "HMAC token secrets are gone: nothing sets one"
    keyish = {name: uses for name, uses in interpolations(text).items()
              if re.search(r"KEY|SECRET|TOKEN", name)}
    assert {"TOKEN_PUBLIC_KEYS_DIR", "GATEWAY_TOKEN_KEY"} <= set(keyish), keyish
    for name, uses in keyish.items():
        for op, message in uses:
            assert op == ":?", f"${{{name}}} must be required (:?), not {op or 'optional'}"
            assert KEY_MAKER in message, f"${{{name}}}: the error must say how to make a key"


@pytest.mark.parametrize("name", service_names())
def test_services_run_in_production_with_read_only_public_keys(services, name):
    svc = services[name]
    env = environment(svc)
    assert env.get("LIANDONG_ENV") == "production", f"{name}: no development mode in compose"
    target = env.get("LIANDONG_TOKEN_PUBLIC_KEYS")
    assert target, f"{name}: LIANDONG_TOKEN_PUBLIC_KEYS not set"
    mounts = [v for v in svc.get("volumes") or [] if isinstance(v, dict)
              and v.get("target") == target]
    assert mounts, f"{name}: nothing mounted at {target}"
    assert mounts[0].get("read_only") is True, f"{name}: public keys must be read-only"
    assert "TOKEN_PUBLIC_KEYS_DIR:?" in str(mounts[0].get("source")), mounts[0]


def test_only_the_gateway_holds_a_private_token_key(compose, services):
    holders = {name: svc.get("secrets") for name, svc in services.items() if svc.get("secrets")}
    assert list(holders) == ["gateway"], holders
    # the token key, and the alert sources' file (hashed secrets, no key)
    assert holders["gateway"] == [{"source": "gateway_token_key", "target": "gateway.key"},
                                  {"source": "alert_clients", "target": "alert-clients.yaml"}]
    assert "ALERT_CLIENTS_FILE:?" in compose["secrets"]["alert_clients"]["file"]
    assert environment(services["gateway"]).get("LIANDONG_TOKEN_KEYS_DIR") == "/run/secrets"
    assert "GATEWAY_TOKEN_KEY:?" in compose["secrets"]["gateway_token_key"]["file"]
    for name in service_names():
        if name != "gateway":
            assert "LIANDONG_TOKEN_KEYS_DIR" not in environment(services[name]), name


def test_compose_has_no_version_key(compose):
    assert "version" not in compose, "compose spec: the top-level `version` key is obsolete"


# --- infrastructure ------------------------------------------------------------------


def test_rabbitmq_and_postgres_have_healthchecks(services):
    assert "rabbitmq-diagnostics" in healthcheck_test(services["rabbitmq"])
    assert "ping" in healthcheck_test(services["rabbitmq"])
    assert "pg_isready" in healthcheck_test(services["postgres"])


def test_no_default_password_or_cookie():
    """Every password and the Erlang cookie must be given (no value anyone can read here)."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    secrets = {name: uses for name, uses in interpolations(text).items()
               if re.search(r"PASSWORD|COOKIE", name)}
    assert {"RABBITMQ_PASSWORD", "POSTGRES_PASSWORD", "RABBITMQ_ERLANG_COOKIE"} <= set(secrets)
    for name, uses in secrets.items():
        for op, message in uses:
            assert op == ":?", f"${{{name}}} must be required (:?), not {op or 'optional'}"
            assert "openssl rand" in message, f"${{{name}}}: say how to make one"


def test_rabbitmq_guest_user_is_replaced(services):
    env = environment(services["rabbitmq"])
    user = env.get("RABBITMQ_DEFAULT_USER") or ""
    assert user and "guest" not in user, "the default guest user must not be used"
    assert env.get("RABBITMQ_DEFAULT_PASS")


def test_every_depends_on_target_exists(services):
    for name, svc in services.items():
        for target in depends_on(svc):
            assert target in services, f"{name} depends on unknown service {target!r}"
            # A service that runs without a profile must not wait for a profile-only one.
            if not svc.get("profiles"):
                assert not services[target].get("profiles"), (
                    f"{name} (no profile) depends on profile-only {target}")


def test_published_ports_are_loopback_only(services):
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port)
            assert str(host_ip).startswith("127.0.0.1"), f"{name} publishes {port!r} publicly"
    published = [str(p) for p in services["rabbitmq"].get("ports") or []]
    assert any(p.endswith(":5672") for p in published), published
    assert any(p.endswith(":15672") for p in published), published


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for volume in svc.get("volumes") or []:
            if bind_source(volume) is None:
                source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
                assert source in declared, f"{name}: volume {source!r} not declared"


# --- RabbitMQ cluster profile --------------------------------------------------------


def parse_rabbitmq_conf() -> dict:
    conf = {}
    for line in RABBITMQ_CONF.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            conf[key.strip()] = value.strip()
    return conf


def test_cluster_profile_has_three_nodes_sharing_one_cookie(services):
    nodes = {name: svc for name, svc in services.items()
             if str(svc.get("image", "")).startswith("rabbitmq")
             and active_in(svc, "cluster")}
    assert len(nodes) == 3, sorted(nodes)
    assert sum(1 for svc in nodes.values() if "cluster" in (svc.get("profiles") or [])) == 2
    assert [n for n, svc in services.items()
            if str(svc.get("image", "")).startswith("rabbitmq") and active_in(svc, None)] \
        == ["rabbitmq"], "without the profile only the `rabbitmq` node runs"

    cookies = {environment(svc).get("RABBITMQ_ERLANG_COOKIE") for svc in nodes.values()}
    assert len(cookies) == 1 and None not in cookies, f"nodes must share one cookie: {cookies}"

    nodenames = {}
    for name, svc in nodes.items():
        nodename = environment(svc).get("RABBITMQ_NODENAME") or ""
        assert nodename.startswith("rabbit@"), (name, nodename)
        assert nodename.split("@", 1)[1] == svc.get("hostname"), (
            f"{name}: node name host must be the container hostname")
        nodenames[name] = nodename
    assert len(set(nodenames.values())) == 3, nodenames

    conf = parse_rabbitmq_conf()
    assert conf.get("cluster_formation.peer_discovery_backend") == "classic_config"
    listed = {v for k, v in conf.items() if k.startswith("cluster_formation.classic_config.nodes.")}
    assert listed == set(nodenames.values()), (listed, nodenames)

    for name, svc in nodes.items():
        mounted = {(COMPOSE_FILE.parent / src).resolve()
                   for src in map(bind_source, svc.get("volumes") or []) if src}
        assert RABBITMQ_CONF.resolve() in mounted, f"{name} does not mount {RABBITMQ_CONF}"


# --- Dockerfile ----------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            instr, _, args = full.partition(" ")
            out.append((instr.upper(), args.strip()))
    return out


def copied_sources() -> set[str]:
    sources = set()
    for instr, args in dockerfile_instructions():
        if instr not in ("COPY", "ADD"):
            continue
        parts = json.loads(args) if args.startswith("[") else shlex.split(args)
        parts = [p for p in parts if not p.startswith("--")]
        for src in parts[:-1]:
            sources.add(src.removeprefix("./").rstrip("/"))
    return sources


def local_packages_imported_by_services() -> set[str]:
    """Top-level packages/modules of this repository reached from services/ (transitively)."""
    def local(name: str) -> bool:
        return (ROOT / name / "__init__.py").exists() or (ROOT / f"{name}.py").exists()

    found, todo = {"services"}, ["services"]
    while todo:
        pkg = todo.pop()
        files = [ROOT / f"{pkg}.py"] if (ROOT / f"{pkg}.py").exists() \
            else (ROOT / pkg).rglob("*.py")
        for path in files:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for top in (n.split(".", 1)[0] for n in names):
                    if top not in found and local(top):
                        found.add(top)
                        todo.append(top)
    return found


def test_dockerfile_copies_everything_the_services_need():
    required = local_packages_imported_by_services() | RUNTIME_DATA
    assert {"services", "shared"} <= required
    missing = required - copied_sources()
    assert not missing, f"Dockerfile does not COPY {sorted(missing)}"


def test_dockerfile_image_shape():
    instructions = dockerfile_instructions()
    froms = [args for instr, args in instructions if instr == "FROM"]
    assert froms and froms[-1].split()[0] == "python:3.11-slim", froms
    runs = " ".join(args for instr, args in instructions if instr == "RUN")
    assert "pip install -r requirements.txt" in runs
    assert "pip install --no-deps ." in runs
    users = [args for instr, args in instructions if instr == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    assert ("WORKDIR", "/app") in instructions
    cmd = [args for instr, args in instructions if instr == "CMD"][-1]
    assert "exec python -m shared.serve --config config.yaml" in cmd and "${SERVICE" in cmd, cmd


# --- docker compose itself (only where an engine answers) ----------------------------


@functools.cache
def _docker_engine_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        for cmd in (["docker", "compose", "version"], ["docker", "info"]):
            done = subprocess.run(cmd, check=False, capture_output=True, timeout=30)
            if done.returncode != 0:
                return False
    except (OSError, subprocess.TimeoutExpired):
        return False
    return True


@pytest.mark.parametrize("profile", [None, "cluster"])
def test_docker_compose_config_is_valid(profile, tmp_path):
    if not _docker_engine_available():
        pytest.skip("no Docker engine")
    cmd = ["docker", "compose", "-f", str(COMPOSE_FILE)]
    if profile:
        cmd += ["--profile", profile]
    env = {k: v for k, v in os.environ.items()
           if k not in ("TOKEN_PUBLIC_KEYS_DIR", "GATEWAY_TOKEN_KEY")}
    missing = subprocess.run(cmd + ["config", "-q"], check=False, cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and KEY_MAKER in missing.stderr, missing.stderr
    (tmp_path / "public").mkdir()
    (tmp_path / "gateway.key").write_text("{}")
    env.update(TOKEN_PUBLIC_KEYS_DIR=str(tmp_path / "public"),
               GATEWAY_TOKEN_KEY=str(tmp_path / "gateway.key"))
    result = subprocess.run(cmd + ["config", "-q"], check=False, cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --- bus users (issue 15): each service its own RabbitMQ user, loaded at broker start ---

DEFINITIONS_TARGET = "/etc/rabbitmq/definitions.json"


def amqp_user(uri: str) -> tuple[str, str]:
    """(user, password text) of ``amqp://user:password@host...``."""
    m = re.match(r"^amqp://(?P<user>[^:@/]+):(?P<password>[^@]+)@", uri)
    assert m, f"no user:password in {uri!r}"
    return m["user"], m["password"]


@pytest.mark.parametrize("name", service_names())
def test_every_service_connects_as_its_own_bus_user(services, name):
    from shared.bususers import bus_users, password_variable
    users = bus_users()
    assert name in users, (f"services/{name} has no user in contracts/bus/publishers.yaml "
                           f"(publishers: or consumers:)")
    user, password = amqp_user(environment(services[name])["AMQP_URI"])
    assert user == users[name][0], f"{name} connects as {user!r}, not {users[name][0]!r}"
    variable = password_variable(name)
    assert password.startswith(f"${{{variable}:?"), (
        f"{name}: the password must be ${{{variable}:?...}} (required), got {password!r}")


def test_bus_users_are_distinct_and_none_is_the_administrator(services):
    from shared.bususers import bus_users
    connecting = {name: amqp_user(environment(services[name])["AMQP_URI"])[0]
                  for name in service_names()}
    assert len(set(connecting.values())) == len(connecting), connecting
    admin = environment(services["rabbitmq"])["RABBITMQ_DEFAULT_USER"]
    assert not {admin, "liandong", "guest"} & set(connecting.values()), connecting
    assert "AMQP_URI" not in (load_compose().get("x-service-env") or {}), (
        "no AMQP_URI shared by every service: each one sets its own")
    # every user in the contract belongs to a service that exists
    assert set(bus_users()) == set(service_names())


def test_every_node_loads_the_bus_definitions_at_start(services):
    conf = parse_rabbitmq_conf()
    assert conf.get("load_definitions") == DEFINITIONS_TARGET
    nodes = [svc for svc in services.values() if str(svc.get("image", "")).startswith("rabbitmq")]
    assert len(nodes) == 3
    for svc in nodes:
        mounts = [v for v in svc.get("volumes") or [] if isinstance(v, dict)
                  and v.get("target") == DEFINITIONS_TARGET]
        assert len(mounts) == 1, svc.get("hostname")
        assert mounts[0].get("read_only") is True
        source = str(mounts[0].get("source"))
        assert source.startswith("${RABBITMQ_DEFINITIONS:?") and \
            "liandong bus definitions" in source, source


def test_definitions_file_is_never_committed_nor_built_in():
    for ignore in (".gitignore", ".dockerignore"):
        lines = (ROOT / ignore).read_text(encoding="utf-8").splitlines()
        assert "deploy/rabbitmq/definitions.json" in lines, ignore

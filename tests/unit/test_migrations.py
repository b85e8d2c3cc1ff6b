"""Schema migrations (shared/migrations.py): the models and the migrations agree
(autogenerate finds nothing to do) on SQLite and PostgreSQL, a database that create_all
made before migrations is recognised and stamped only when it matches a revision, and
``liandong migrate`` applies them or prints their SQL."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DatabaseError

from shared import migrations
from shared.cli import DATABASES
from shared.db import Store
from tests.unit.test_db_startup import PG, _pg_up, drop_database


def _metadata(service: str):
    return importlib.import_module(f"services.{service}.store").metadata


def test_every_service_database_has_migrations():
    assert DATABASES and all(migrations.has_migrations(s) for s in DATABASES)
    assert all(len(migrations.heads(s)) == 1 for s in DATABASES)


def _drift_after_start(service: str, url: str) -> list:
    """Start on an empty database as the service does (it migrates), then autogenerate's
    diff between the models and what the migrations made."""
    store = Store(service, _metadata(service), url)
    try:
        with store.engine.connect() as conn:
            assert migrations.current(conn) == migrations.heads(service)[0]
            return migrations.drift(_metadata(service), conn)
    finally:
        store.dispose()


@pytest.mark.parametrize("service", DATABASES)
def test_models_and_migrations_agree_on_sqlite(service, tmp_path):
    assert _drift_after_start(service, f"sqlite:///{tmp_path / 'db.sqlite'}") == []


@pytest.mark.skipif(not _pg_up(), reason="no PostgreSQL on 127.0.0.1:5432")
def test_models_and_migrations_agree_on_postgresql():
    name = f"liandong_drift_{uuid.uuid4().hex[:8]}"
    url = f"{PG}/{name}"
    differences = {}
    try:
        for service in DATABASES:   # each service in a fresh database
            drop_database(name)
            differences[service] = _drift_after_start(service, url)
    finally:
        drop_database(name)
    assert differences == {s: [] for s in DATABASES}


def test_a_database_made_by_create_all_is_stamped_not_altered(tmp_path):
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    metadata = _metadata("tracker")
    engine = create_engine(url)
    metadata.create_all(engine)            # as every version before migrations did
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tracker_meta (key, value) VALUES ('k', 'v')"))
    engine.dispose()
    store = Store("tracker", metadata, url)
    try:
        with store.engine.connect() as conn:
            assert migrations.current(conn) == migrations.heads("tracker")[0]
            assert conn.execute(text("SELECT value FROM tracker_meta")).scalar() == "v"
    finally:
        store.dispose()


def test_a_database_matching_no_revision_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'command.db'}"
    engine = create_engine(url)
    _metadata("command").create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE handoffs ADD COLUMN surprise VARCHAR(10)"))
    engine.dispose()
    store = Store("command", _metadata("command"), url)
    with pytest.raises(migrations.SchemaMismatch, match="match no revision"):
        store.engine  # noqa: B018
    store.dispose()
    check = create_engine(url)
    assert "alembic_version" not in inspect(check).get_table_names()   # left as it was
    check.dispose()


def test_migrated_audit_steps_are_append_only(tmp_path):
    store = Store("police_handoff", _metadata("police_handoff"),
                  f"sqlite:///{tmp_path / 'p.db'}")
    try:
        with store.transaction() as s:
            s.execute(text("INSERT INTO handoff_steps VALUES ('h', 1, 'draft', NULL, 'draft', "
                           "'{}', '2026-01-01', '{}', 'e', 'p', 'h')"))
        with pytest.raises(DatabaseError, match="append-only"), store.transaction() as s:
            s.execute(text("DELETE FROM handoff_steps"))
    finally:
        store.dispose()


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_migrate_command_applies_and_prints_sql(tmp_path):
    env = {"LIANDONG_DATA_DIR": str(tmp_path), "DATABASE_URL": ""}
    assert "--sql" in _cli("migrate", "--help").stdout
    sql = _cli("migrate", "--service", "tracker", "--sql", env=env)
    assert sql.returncode == 0, sql.stderr
    assert "CREATE TABLE handoffs" in sql.stdout and "ADD COLUMN waiting" in sql.stdout
    assert not (tmp_path / "tracker.db").exists()          # --sql changes nothing
    done = _cli("migrate", "--service", "tracker", "--service", "gateway", env=env)
    assert done.returncode == 0, done.stderr
    assert f"at {migrations.heads('tracker')[0]}" in done.stdout
    again = _cli("migrate", "--service", "tracker", "--sql", env=env)
    assert "CREATE TABLE handoffs" not in again.stdout       # already at the newest

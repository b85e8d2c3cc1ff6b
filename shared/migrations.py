"""Schema migrations (Alembic) of every service database, one mechanism.

Each service keeps its revisions in ``services/<service>/migrations/versions/``; one
Alembic environment (``shared/alembic/env.py``) runs them, driven from here with the
service's metadata and connection, so there is no ``alembic.ini`` to keep in step.

* ``upgrade`` brings a database to the newest revision: each service on start
  (``Store.engine``), ``make run`` and ``liandong migrate``. On PostgreSQL it runs under
  the advisory lock that replicas starting together take turns on.
* A database made before migrations existed (tables, no ``alembic_version``) is
  recognised: it is stamped with the revision whose schema it has (tables, columns and
  their nullability, indexes) and upgraded from there; one that matches no revision is
  refused (``SchemaMismatch``), never altered.
* ``sql`` prints what ``upgrade`` would run (``liandong migrate --sql``).
* ``drift`` is autogenerate's diff between the models and the migrated database: the
  tests require it empty, so a model change without its revision fails them.
"""
from __future__ import annotations

import io
import sys
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from shared.db import advisory_lock

ROOT = Path(__file__).resolve().parent.parent
SCRIPT_LOCATION = Path(__file__).resolve().parent / "alembic"
VERSION_TABLE = "alembic_version"
LOCK = "create-schema"          # the advisory lock the services took for create_all


class SchemaMismatch(RuntimeError):
    """A database without migration history whose tables match no revision."""


def versions_dir(service: str) -> Path:
    return ROOT / "services" / service / "migrations" / "versions"


def has_migrations(service: str) -> bool:
    return versions_dir(service).is_dir()


def _config(service: str, metadata, connection=None, dialect: str | None = None,
            output=None) -> Config:
    if not has_migrations(service):
        raise LookupError(f"{service} has no migrations ({versions_dir(service)})")
    cfg = Config(output_buffer=output or sys.stdout)
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("version_locations", str(versions_dir(service)))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes.update(service=service, metadata=metadata, connection=connection,
                          dialect=dialect, output=output or sys.stdout)
    return cfg


def run_env(context) -> None:
    """The body of ``shared/alembic/env.py``."""
    attrs = context.config.attributes
    opts = {"target_metadata": attrs["metadata"], "version_table": VERSION_TABLE,
            "compare_type": True}
    if context.is_offline_mode():
        context.configure(dialect_name=attrs["dialect"], literal_binds=True,
                          output_buffer=attrs["output"], **opts)
    else:
        context.configure(connection=attrs["connection"], **opts)
    with context.begin_transaction():
        context.run_migrations()


@contextmanager
def _lock(conn):
    """PostgreSQL: one replica at a time (SQLite: one process, the file's own lock)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    with advisory_lock(conn, LOCK):
        yield


def heads(service: str) -> list[str]:
    return list(ScriptDirectory.from_config(_config(service, None)).get_heads())


def current(conn) -> str | None:
    """The revision a database is at (None: none recorded)."""
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}
                                      ).get_current_revision()


def upgrade(service: str, metadata, engine) -> str | None:
    """Bring ``engine``'s database to the newest revision (recognising and stamping one
    made before migrations). Returns the revision it was stamped with, if any."""
    with engine.connect() as conn, _lock(conn):
        stamped = _recognise(service, metadata, conn)
        command.upgrade(_config(service, metadata, conn), "head")
        conn.commit()
    return stamped


def sql(service: str, metadata, dialect: str, start: str | None = None,
        output=None) -> None:
    """Print the SQL ``upgrade`` runs from ``start`` (None: an empty database)."""
    cfg = _config(service, metadata, dialect=dialect, output=output)
    command.upgrade(cfg, f"{start}:head" if start else "head", sql=True)


def drift(metadata, conn) -> list:
    """Autogenerate's differences between the models and ``conn``'s database."""
    dialect = conn.dialect.name

    def include(obj, _name, type_, reflected, _compare_to) -> bool:
        # an index the models create on another dialect only (``ddl_if``)
        only = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return not (type_ == "index" and not reflected and only not in (None, dialect))

    ctx = MigrationContext.configure(conn, opts={
        "compare_type": True, "version_table": VERSION_TABLE, "include_object": include})
    return compare_metadata(ctx, metadata)


def _recognise(service: str, metadata, conn) -> str | None:
    tables = set(inspect(conn).get_table_names()) - {VERSION_TABLE}
    if not tables or current(conn) is not None:
        return None
    found = fingerprint(conn)
    script = ScriptDirectory.from_config(_config(service, metadata))
    known_prints = {rev.revision: _fingerprint_at(service, metadata, rev.revision)
                    for rev in script.walk_revisions()}
    known_indexes = set().union(*(p[1] for p in known_prints.values()))
    for revision, (columns, indexes) in known_prints.items():   # newest first
        if found[0] == columns and found[1] & known_indexes == indexes:
            command.stamp(_config(service, metadata, conn), revision)
            return revision
    raise SchemaMismatch(
        f"{service}: the database has tables but no migration history, and they match "
        f"no revision of {versions_dir(service).relative_to(ROOT)} (tables: "
        f"{', '.join(sorted(tables))}); it is left as it is")


def fingerprint(conn) -> tuple[dict, set]:
    """What recognition compares: each table's columns with their nullability, and the
    index names (types are left out: each dialect reflects them its own way)."""
    insp = inspect(conn)
    columns, indexes = {}, set()
    for table in insp.get_table_names():
        if table == VERSION_TABLE:
            continue
        columns[table] = {(c["name"], bool(c["nullable"])) for c in insp.get_columns(table)}
        indexes |= {ix["name"] for ix in insp.get_indexes(table) if ix.get("name")}
    return columns, indexes


def _fingerprint_at(service: str, metadata, revision: str) -> tuple[dict, set]:
    """The schema ``revision`` makes, on a scratch SQLite database in memory."""
    scratch = create_engine("sqlite://")
    try:
        with scratch.connect() as conn:
            command.upgrade(_config(service, metadata, conn, output=io.StringIO()), revision)
            conn.commit()
            return fingerprint(conn)
    finally:
        scratch.dispose()

"""Database access for a service: its own database (SQLite file by default,
PostgreSQL by ``DATABASE_URL``), cooperative under eventlet, plus the nameko
dependency that hands each worker a transactional session.

URL resolution for service ``police_handoff``:
1. ``POLICE_HANDOFF_DATABASE_URL`` if set;
2. ``DATABASE_URL`` if set — ``{service}`` in it is replaced by the service name, so one
   template gives each service its own database
   (``postgresql://postgres@127.0.0.1/liandong_{service}``);
3. ``sqlite:///<LIANDONG_DATA_DIR or ./var>/<service>.db``.
"""
from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import JSON, MetaData, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

_green_patched = False


def data_dir() -> Path:
    path = Path(os.environ.get("LIANDONG_DATA_DIR", "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(service: str) -> str:
    specific = os.environ.get(f"{service.upper()}_DATABASE_URL")
    if specific:
        return specific
    template = os.environ.get("DATABASE_URL")
    if template:
        return template.replace("{service}", service)
    return f"sqlite:///{data_dir() / (service + '.db')}"


def normalize_url(url):
    """Plain ``postgresql://`` means psycopg2 here (SQLAlchemy 2.1 would pick psycopg 3);
    psycopg2 is the driver psycogreen makes cooperative under eventlet."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def _make_cooperative(url) -> None:
    """psycopg2 blocks the whole process under eventlet unless psycogreen's wait
    callback is installed; do it once, only when eventlet has patched sockets."""
    global _green_patched
    if _green_patched or not url.drivername.startswith("postgresql"):
        return
    try:
        import eventlet.patcher
    except ImportError:  # pragma: no cover - eventlet is a dependency
        return
    if eventlet.patcher.is_monkey_patched("socket"):
        from psycogreen.eventlet import patch_psycopg
        patch_psycopg()
        _green_patched = True


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist yet."""
    parsed = normalize_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn, advisory_lock(conn, f"create-database:{parsed.database}"):
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": parsed.database}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


@contextmanager
def advisory_lock(conn, name: str):
    """A PostgreSQL session advisory lock: replicas starting together take turns
    (two CREATE DATABASE or two migrations at once fail on the catalog's unique keys)."""
    key = f"liandong:{name}"
    conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": key})
    try:
        yield
    finally:
        conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})


class MissingDatabase(LookupError):
    """A service's database does not exist (yet) where the configuration points."""


def make_engine(url: str, create: bool = True) -> Engine:
    """An engine on ``url``; ``create=False`` opens only a database that exists (raises
    ``MissingDatabase``) instead of creating an empty one."""
    parsed = normalize_url(url)
    _make_cooperative(parsed)
    if not create:
        _must_exist(parsed)
    if parsed.drivername.startswith("sqlite"):
        engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if create:
        ensure_database(url)
    # executemany of UPDATE/DELETE in pages (psycopg2's execute_batch) instead of one
    # round trip per row: the tracker's and the alert intake's batch updates (inserts
    # are multi-row VALUES already); single statements, whose rowcount the optimistic
    # updates read, are unaffected
    return create_engine(parsed, pool_size=_env_int("DB_POOL_SIZE", 10),
                         max_overflow=_env_int("DB_MAX_OVERFLOW", 10), pool_pre_ping=True,
                         **({"executemany_mode": "values_plus_batch"}
                            if parsed.drivername == "postgresql+psycopg2" else {}))


def _env_int(name: str, default: int) -> int:
    """A pool setting from the environment: every replica holds up to pool size +
    overflow PostgreSQL connections, and the server's ``max_connections`` (100 by default)
    bounds the sum over all replicas."""
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        return max(0, int(value))
    except ValueError:
        raise SystemExit(f"{name}={value!r}: a whole number of connections") from None


def _must_exist(parsed) -> None:
    if parsed.drivername.startswith("sqlite"):
        path = parsed.database
        if path and path != ":memory:" and not Path(path).exists():
            raise MissingDatabase(f"no database file {path}")
        return
    admin = create_engine(parsed.set(database="postgres"))
    try:
        with admin.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                 {"n": parsed.database}).scalar()
    finally:
        admin.dispose()
    if not found:
        raise MissingDatabase(f"no database {parsed.database!r} on "
                              f"{parsed.host or 'localhost'}:{parsed.port or 5432}")


class Store:
    """One service's database: engine, schema (its migrations, shared/migrations.py) and
    transactional sessions."""

    def __init__(self, service: str, metadata: MetaData, url: str | None = None,
                 create: bool = True):
        self.service = service
        self.metadata = metadata
        self.url = url or database_url(service)
        self.create = create
        self._engine: Engine | None = None
        self._sessions: sessionmaker | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            engine = make_engine(self.url, create=self.create)
            if self.create:   # tables come from the service's migrations (one at a time)
                from shared import migrations
                migrations.upgrade(self.service, self.metadata, engine)
            self._engine = engine
            self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        return self._engine

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def session(self) -> Session:
        self.engine  # noqa: B018 - lazily creates engine and session factory
        return self._sessions()

    @contextmanager
    def transaction(self):
        """A session in one transaction: committed on success, rolled back on error."""
        with self.session() as session, session.begin():
            yield session

    def existing(self) -> Store:
        """Another handle on this database for operator tools: opens it only if it exists
        and creates nothing in it (``Store.engine`` raises ``MissingDatabase`` if not)."""
        return Store(self.service, self.metadata, self.url, create=False)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def utc(value: datetime | None) -> datetime | None:
    """A time read from a ``DateTime(timezone=True)`` column, with its UTC offset: SQLite
    gives naive UTC back, PostgreSQL aware. Every time the API returns carries it."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def dialect_insert(session):
    """``insert`` of this session's database dialect (PostgreSQL or SQLite), whose
    statements have ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _copy_text(value, column) -> str:
    """One value in COPY's text format (tab-separated, ``\\N`` for NULL)."""
    if value is None:
        if isinstance(column.type, JSON) and not column.type.none_as_null:
            return "null"     # as an INSERT stores None: JSON null, not SQL NULL
        return "\\N"
    if isinstance(column.type, JSON):
        value = json.dumps(value)
    elif isinstance(value, bool):
        return "t" if value else "f"
    elif isinstance(value, datetime):
        value = value.isoformat()
    else:
        value = str(value)
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n") \
        .replace("\r", "\\r")


def insert_rows(session, table, rows: list[dict]) -> None:
    """INSERT ``rows`` (dicts with the same keys) into ``table`` in the caller's
    transaction. On PostgreSQL with ``COPY ... FROM STDIN`` (issue 16: a third of the
    cost of a multi-row INSERT, on the server and in SQLAlchemy's parameter handling);
    elsewhere an executemany. Under eventlet the COPY runs blocking (psycopg2 cannot
    COPY with psycogreen's wait callback), so it holds the process for its few
    milliseconds: use it for batches, not for requests."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(table.insert(), rows)
        return
    from psycopg2 import extensions
    columns = [table.c[name] for name in rows[0]]
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join(_copy_text(row[c.name], c) for c in columns))
        buf.write("\n")
    buf.seek(0)
    names = ", ".join(f'"{c.name}"' for c in columns)
    cursor = session.connection().connection.cursor()
    callback = extensions.get_wait_callback()
    extensions.set_wait_callback(None)
    try:
        cursor.copy_expert(f'COPY "{table.name}" ({names}) FROM STDIN', buf)
    finally:
        extensions.set_wait_callback(callback)
        cursor.close()

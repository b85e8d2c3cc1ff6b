"""Replicas starting at the same moment against a database that does not exist yet:
each creates what is missing, none fails on the other's CREATE DATABASE or tables
(advisory locks in shared/db.py). Needs the PostgreSQL of the machine; skipped without."""
from __future__ import annotations

import multiprocessing
import os
import socket
import uuid

import pytest
from sqlalchemy import create_engine, text

from services.tracker import store as tracker_store
from shared.db import Store, normalize_url

PG = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432")


def _pg_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        return True
    except OSError:
        return False


def _start(url: str) -> bool:
    store = Store("tracker", tracker_store.metadata, url)
    try:
        store.engine  # noqa: B018 - creates database and schema
        return True
    finally:
        store.dispose()


@pytest.mark.skipif(not _pg_up(), reason="no PostgreSQL on 127.0.0.1:5432")
def test_replicas_create_database_and_schema_once_together():
    name = f"liandong_race_{uuid.uuid4().hex[:8]}"
    url = f"{PG}/{name}"

    try:
        # processes, as replicas are (and eventlet, imported by shared.db, does not
        # mix with OS threads)
        with multiprocessing.get_context("spawn").Pool(6) as pool:
            assert pool.map(_start, [url] * 6, chunksize=1) == [True] * 6
        check = create_engine(normalize_url(url))
        with check.connect() as conn:
            tables = set(conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
        check.dispose()
        assert set(tracker_store.metadata.tables) <= tables
    finally:
        drop_database(name)


def drop_database(name: str) -> None:
    """Drop a test's own PostgreSQL database (its connections too)."""
    admin = create_engine(normalize_url(f"{PG}/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()

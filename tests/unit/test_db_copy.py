"""``shared.db.insert_rows``: on PostgreSQL a COPY in the caller's transaction, elsewhere
an executemany. Whatever the values hold (COPY's own escapes: tab, newline, backslash,
the text ``\\N``; NULLs, booleans, JSON, times with an offset), the rows read back are
the rows given — the same as an INSERT of them — and a rollback leaves nothing."""
from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    select,
    text,
)
from sqlalchemy.orm import Session

from shared.db import insert_rows, normalize_url

PG = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432")
metadata = MetaData()
things = Table(
    "things", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200)),
    Column("flag", Boolean),
    Column("score", Float),
    Column("doc", JSON),
    Column("at", DateTime(timezone=True)),
)
NASTY = ["tab\there", "line\nbreak", "cr\rhere", "back\\slash", "\\N", "\\", "",
         "温州 浙C12345 张三", 'quote " and \' both', "end\\"]


def rows(dialect: str = "postgresql") -> list[dict]:
    out = []
    for i, name in enumerate(NASTY + [None]):
        out.append({"id": i, "name": name, "flag": [True, False, None][i % 3],
                    "score": [1.5, None, -0.25][i % 3],
                    "doc": None if i % 4 == 3 else {"name": name, "n": i, "list": [name, None],
                                                    "nested": {"t": "a\tb\\c\n"}},
                    "at": None if i % 5 == 4 else datetime(2026, 3, 1, 9, i, tzinfo=UTC)
                    + timedelta(microseconds=i)})
    if dialect == "postgresql":    # SQLite keeps no offset, whatever the insert
        out[1]["at"] = datetime(2026, 3, 1, 17, 1, tzinfo=timezone(timedelta(hours=8)))
    return out


def utc(given: list[dict]) -> list[dict]:
    return [{**r, "at": r["at"] and r["at"].astimezone(UTC)} for r in given]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'copy.db'}")
        metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    name = f"copy_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_url(f"{PG}/postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:   # noqa: BLE001 - any failure: no PostgreSQL here
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    engine = create_engine(normalize_url(f"{PG}/{name}"))
    metadata.create_all(engine)
    yield engine
    engine.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def read(engine) -> list[dict]:
    with Session(engine) as s:
        found = [dict(r) for r in s.execute(select(things).order_by(things.c.id)).mappings()]
    for r in found:   # SQLite gives naive UTC back
        if r["at"] is not None:
            r["at"] = r["at"].replace(tzinfo=r["at"].tzinfo or UTC).astimezone(UTC)
    return found


def test_rows_read_back_as_given(engine):
    given = rows(engine.dialect.name)
    with Session(engine) as s, s.begin():
        insert_rows(s, things, given)
    assert read(engine) == utc(given)


def null_docs(engine) -> list[int]:
    """Rows whose JSON is SQL NULL (an INSERT stores None as JSON null)."""
    with Session(engine) as s:
        return list(s.execute(select(things.c.id).where(text("doc IS NULL"))).scalars())


def test_same_as_an_insert_and_in_the_callers_transaction(engine):
    given = rows(engine.dialect.name)
    with Session(engine) as s, s.begin():
        s.execute(things.insert(), given)
    by_insert, nulls = read(engine), null_docs(engine)
    with Session(engine) as s, s.begin():
        s.execute(things.delete())
    with Session(engine) as s, s.begin():
        insert_rows(s, things, given)
        s.rollback()
    assert read(engine) == []
    with Session(engine) as s, s.begin():
        insert_rows(s, things, given)
        insert_rows(s, things, [])
    assert read(engine) == by_insert
    assert null_docs(engine) == nulls


def test_a_duplicate_key_fails_the_transaction(engine):
    with Session(engine) as s, s.begin():
        insert_rows(s, things, rows()[:2])
    with pytest.raises(Exception), Session(engine) as s, s.begin():  # noqa: B017,PT011
        insert_rows(s, things, rows()[1:3])
    assert [r["id"] for r in read(engine)] == [0, 1]

"""Idempotency keys on a real SQLite database: one result per (caller, key), a
different request under a used key refused, the key stored with the work or not at all."""
from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import idempotency as idem
from shared.errors import InvalidInput


@pytest.fixture()
def db(tmp_path):
    metadata = MetaData()
    keys = idem.table(metadata)
    work = Table("work", metadata, Column("id", Integer, primary_key=True))
    engine = create_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    metadata.create_all(engine)
    yield engine, keys, work
    engine.dispose()


def test_table_is_added_once():
    metadata = MetaData()
    assert idem.table(metadata) is idem.table(metadata)


@pytest.mark.parametrize("key", ["x" * 201, "a\nb", "   ", 42, ["k"], "a\x00b"])
def test_malformed_keys_are_refused(key):
    with pytest.raises(InvalidInput) as err:
        idem.check_key(key)
    assert "idempotency_key" in err.value.errors


@pytest.mark.parametrize("key,expected", [(None, None), ("", None), ("k-1", "k-1"),
                                          ("x" * 200, "x" * 200), ("鹿城-1", "鹿城-1")])
def test_valid_or_absent_keys(key, expected):
    assert idem.check_key(key) == expected


def test_fingerprint_ignores_key_order_but_not_values():
    a = idem.fingerprint("create", "draft", {"a": 1, "b": [1, 2]})
    assert a == idem.fingerprint("create", "draft", {"b": [1, 2], "a": 1})
    assert a != idem.fingerprint("create", "draft", {"a": 1, "b": [2, 1]})
    assert a != idem.fingerprint("create", "open_reverse_transfer", {"a": 1, "b": [1, 2]})


def test_recall_returns_the_first_result_and_refuses_another_request(db):
    engine, keys, _ = db
    digest = idem.fingerprint("create", {"n": 1})
    with Session(engine) as s, s.begin():
        assert idem.recall(s, keys, "officer-li", "k1", digest) is None
        idem.remember(s, keys, "officer-li", "k1", digest, {"id": "abc"})
    with Session(engine) as s:
        assert idem.recall(s, keys, "officer-li", "k1", digest) == {"id": "abc"}
        # another caller's key space is separate
        assert idem.recall(s, keys, "officer-wu", "k1", digest) is None
        with pytest.raises(idem.IdempotencyConflict) as err:
            idem.recall(s, keys, "officer-li", "k1", idem.fingerprint("create", {"n": 2}))
    assert err.value.http_status == 409 and err.value.code == "idempotency_conflict"


def test_second_insert_of_a_key_rolls_back_its_work(db):
    engine, keys, work = db
    digest = idem.fingerprint("x")
    with Session(engine) as s, s.begin():
        s.execute(insert(work).values(id=1))
        idem.remember(s, keys, "u", "k", digest, {"id": 1})
    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        s.execute(insert(work).values(id=2))
        idem.remember(s, keys, "u", "k", digest, {"id": 2})
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(work)).scalar() == 1
        assert idem.recall(s, keys, "u", "k", digest) == {"id": 1}

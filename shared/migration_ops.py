"""Building blocks of the services' migrations (services/<service>/migrations/versions/).

Frozen: a revision that has run must make the same schema forever, so a function here
never changes once a revision calls it; a later schema change is a new revision (and, if
several services share it, a new function here named after what it adds)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def dialect() -> str:
    return op.get_context().dialect.name


def append_only(table: str) -> None:
    """Database triggers that refuse UPDATE and DELETE on ``table`` (shared/audit.py)."""
    if dialect() == "sqlite":
        for verb in ("update", "delete"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    elif dialect() == "postgresql":
        op.execute(
            f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{table} is append-only'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )


def messaging_tables() -> None:
    """The transactional outbox and the consumer inbox (shared/messaging.py)."""
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=120), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=120), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=120), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("routing_key", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )


def handoff_tables(service: str) -> None:
    """A handoff service's tables as of fe1f9a4 (shared/handoffs.py HandoffStore): the
    handoffs, their hash-chained append-only steps, idempotency keys, outbox and inbox."""
    op.create_table(
        "handoff_steps",
        sa.Column("handoff_id", sa.String(length=36), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("command", sa.String(length=40), nullable=False),
        sa.Column("from_state", sa.String(length=40), nullable=True),
        sa.Column("to_state", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("handoff_id", "step"),
    )
    append_only("handoff_steps")
    op.create_table(
        "handoffs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("case_number", sa.String(length=60), nullable=False),
        sa.Column("direction", sa.String(length=30), nullable=False),
        sa.Column("county", sa.String(length=20), nullable=True),
        sa.Column("owner_unit", sa.String(length=100), nullable=False),
        sa.Column("counterpart_unit", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("deadline_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(f"ix_{service}_handoffs_case_number", "handoffs", ["case_number"])
    op.create_index(f"ix_{service}_handoffs_state_due", "handoffs", ["state", "deadline_due"])
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(length=120), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key"),
    )
    messaging_tables()


def handoffs_kind_created_index(service: str) -> None:
    """A period's records (the centres' assessment) without reading every year's."""
    op.create_index(f"ix_{service}_handoffs_kind_created", "handoffs", ["kind", "created_at"])

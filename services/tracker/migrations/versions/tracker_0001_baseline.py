"""Baseline: the tracker's tables as commit fe1f9a4 made them with create_all."""

import sqlalchemy as sa
from alembic import op

from shared import migration_ops as ops

revision = "tracker_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("handoff_id", sa.String(length=64), nullable=False),
        sa.Column("deadline_id", sa.String(length=60), nullable=False),
        sa.Column("due", sa.String(length=40), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("handoff_id", "deadline_id", "due", "level"),
    )
    op.create_table(
        "handoff_units",
        sa.Column("handoff_id", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("handoff_id", "unit"),
    )
    op.create_index("ix_tracker_units_unit", "handoff_units", ["unit", "handoff_id"])
    op.create_table(
        "handoffs",
        sa.Column("handoff_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("case_number", sa.String(length=60), nullable=False),
        sa.Column("county", sa.String(length=20), nullable=True),
        sa.Column("domain", sa.String(length=40), nullable=True),
        sa.Column("owner_unit", sa.String(length=100), nullable=False),
        sa.Column("counterpart_unit", sa.String(length=100), nullable=True),
        sa.Column("counterpart_agency", sa.String(length=40), nullable=True),
        sa.Column("units", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.JSON(), nullable=True),
        sa.Column("deadline_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("search", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("handoff_id"),
    )
    op.create_index("ix_tracker_case_number", "handoffs", ["case_number"])
    op.create_index("ix_tracker_open_due", "handoffs", ["open", "deadline_due"])
    op.create_table(
        "parked",
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject", "sequence"),
    )
    op.create_table(
        "subject_locks",
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("subject"),
    )
    op.create_table(
        "timeline",
        sa.Column("handoff_id", sa.String(length=64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=120), nullable=False),
        sa.Column("command", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("actor_role", sa.String(length=40), nullable=True),
        sa.Column("actor_unit", sa.String(length=100), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("handoff_id", "step"),
        sa.UniqueConstraint("event_id"),
    )
    if ops.dialect() == "postgresql":
        # the board's first page off an index; its text search by trigrams
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_tracker_board",
            "handoffs",
            [
                sa.literal_column("deadline_due ASC NULLS LAST"),
                sa.literal_column("updated_at DESC"),
            ],
            postgresql_where=sa.text("open IS true"),
        )
        op.create_index(
            "ix_tracker_search_trgm",
            "handoffs",
            ["search"],
            postgresql_using="gin",
            postgresql_ops={"search": "gin_trgm_ops"},
        )
    ops.messaging_tables()

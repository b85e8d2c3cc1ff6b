"""Baseline: the supervision's handoff tables, penalty decisions and imports, referral index
(as create_all made them before migrations)."""

import sqlalchemy as sa
from alembic import op

from shared import migration_ops as ops

revision = "supervision_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.handoff_tables("supervision")
    ops.handoffs_kind_created_index("supervision")
    op.create_table(
        "penalty_decisions",
        sa.Column("case_number", sa.String(length=60), nullable=False),
        sa.Column("county", sa.String(length=20), nullable=False),
        sa.Column("unit", sa.String(length=100), nullable=False),
        sa.Column("decided_on", sa.String(length=10), nullable=False),
        sa.Column("plate_key", sa.String(length=20), nullable=True),
        sa.Column("party_keys", sa.JSON(), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("matches", sa.JSON(), nullable=False),
        sa.Column("suspect", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("import_id", sa.String(length=36), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_number"),
    )
    op.create_index(
        "ix_penalty_decisions_suspect_county", "penalty_decisions", ["suspect", "county"]
    )
    op.create_table(
        "penalty_imports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("filename", sa.String(length=300), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("suspects", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_penalty_imports_at", "penalty_imports", ["at"])
    op.create_table(
        "referral_index",
        sa.Column("referral_id", sa.String(length=36), nullable=False),
        sa.Column("case_number", sa.String(length=60), nullable=False),
        sa.Column("plate_key", sa.String(length=20), nullable=True),
        sa.Column("party_keys", sa.JSON(), nullable=False),
        sa.Column("county", sa.String(length=20), nullable=True),
        sa.Column("owner_unit", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("drafted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
    )
    op.create_index("ix_referral_index_case_number", "referral_index", ["case_number"])
    op.create_index("ix_referral_index_plate_key", "referral_index", ["plate_key"])

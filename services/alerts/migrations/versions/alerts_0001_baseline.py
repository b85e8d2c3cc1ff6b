"""Baseline: the alerts' handoff tables, intake and targets
(as create_all made them before migrations)."""

import sqlalchemy as sa
from alembic import op

from shared import migration_ops as ops

revision = "alerts_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.handoff_tables("alerts")
    ops.handoffs_kind_created_index("alerts")
    op.create_table(
        "alert_intake",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("alert_id", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("merged", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "alert_id"),
    )
    op.create_index("ix_alert_intake_task", "alert_intake", ["task_id"])
    op.create_table(
        "alert_targets",
        sa.Column("target_key", sa.String(length=200), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("target_key"),
    )

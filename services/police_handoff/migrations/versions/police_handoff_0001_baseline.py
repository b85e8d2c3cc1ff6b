"""Baseline: the police handoff's tables as commit fe1f9a4 made them with create_all."""

from shared import migration_ops as ops

revision = "police_handoff_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.handoff_tables("police_handoff")

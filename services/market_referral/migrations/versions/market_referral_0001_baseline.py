"""Baseline: the market referral's tables as commit fe1f9a4 made them with create_all."""

from shared import migration_ops as ops

revision = "market_referral_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.handoff_tables("market_referral")

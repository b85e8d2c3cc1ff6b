"""The handoffs' (kind, created_at) index."""

from shared import migration_ops as ops

revision = "market_referral_0002"
down_revision = "market_referral_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.handoffs_kind_created_index("market_referral")

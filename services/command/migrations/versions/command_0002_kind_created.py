"""The handoffs' (kind, created_at) index."""

from shared import migration_ops as ops

revision = "command_0002"
down_revision = "command_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.handoffs_kind_created_index("command")

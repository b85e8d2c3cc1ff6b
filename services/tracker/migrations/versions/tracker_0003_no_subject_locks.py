"""The tracker no longer serialises a subject's events with ``subject_locks`` rows."""
from alembic import op

revision = "tracker_0003"
down_revision = "tracker_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("subject_locks")

"""待办 (the ``waiting`` column), the statistics counters, criminal outcomes, the alert
clocks and the live updates' inbox index.

The new tables and column start empty on a database that has handoffs already: the
tracker says so (``tracker_meta`` has no derived version: ``liandong health`` warns,
statistics answer 503) until ``liandong rebuild-tracker`` fills them from the events."""

import sqlalchemy as sa
from alembic import op

revision = "tracker_0002"
down_revision = "tracker_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "handoffs", sa.Column("waiting", sa.String(length=2000), nullable=False, server_default="")
    )
    op.create_table(
        "alert_clocks",
        sa.Column("handoff_id", sa.String(length=64), nullable=False),
        sa.Column("deadline_id", sa.String(length=60), nullable=False),
        sa.Column("due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.JSON(), nullable=False),
        sa.Column("next_level", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("handoff_id"),
    )
    op.create_index("ix_tracker_alert_clocks", "alert_clocks", ["next_level", "due"])
    op.create_table(
        "criminal_outcomes",
        sa.Column("handoff_id", sa.String(length=64), nullable=False),
        sa.Column("county", sa.String(length=20), nullable=True),
        sa.Column("offence", sa.String(length=100), nullable=True),
        sa.Column("referred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_for_prosecution_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dropped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prosecuted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_prosecuted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("convicted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acquitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("handoff_id"),
    )
    op.create_index("ix_tracker_inbox_received", "inbox", ["received_at"])
    for unit in ((), ("unit",)):   # the city's counters, and each unit's
        prefix = "unit_" if unit else ""
        op.create_table(
            f"{prefix}stats_cases", *_day_columns(unit),
            sa.Column("state", sa.String(length=40), nullable=False),
            sa.Column("open", sa.Boolean(), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint(*unit, "day", "county", "domain", "kind", "state", "open"),
        )
        op.create_table(
            f"{prefix}stats_steps", *_day_columns(unit),
            sa.Column("command", sa.String(length=40), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.Column("timed", sa.Integer(), nullable=False),
            sa.Column("hours", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint(*unit, "day", "county", "domain", "kind", "command"),
        )
    op.create_table(
        "tracker_meta",
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def _day_columns(unit: tuple) -> list:
    """(the unit,) day, county, domain, kind: new Column objects for each table."""
    return [sa.Column(name, sa.String(length=100), nullable=False) for name in unit] + [
        sa.Column(name, sa.String(length=40), nullable=False)
        for name in ("day", "county", "domain", "kind")]

"""Past blocks of 28 days of the per-day counts in one row per labels, for /metrics.

Adds ``metric_blocks``: the counts of ``metric_days`` (family, labels, bucket)
summed over whole blocks of 28 UTC days, and moves every whole block before the
last counted day's into it (``interlock.storage.metric_days.compact_metric_days``).
Summing the history for ``/metrics`` then reads a few rows per block instead of
per day; the exposition moves later blocks as it saves its totals. Indexes
approval gates by when they were decided and incidents by when they were
resolved, so what a scrape sums since its mark is read by time, not scanned.

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-06 07:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from interlock.storage.metric_days import compact_metric_days

    op.create_table(
        "metric_blocks",
        sa.Column("family", sa.String(length=16), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("a", sa.String(length=128), nullable=False),
        sa.Column("b", sa.String(length=128), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint(
            "family", "block", "a", "b", "bucket", name=op.f("pk_metric_blocks")
        ),
    )
    compact_metric_days(op.get_bind())
    # /metrics sums what was decided or restored since its mark: by time, not a scan
    op.create_index(
        "ix_delivery_gates_finished_at",
        "delivery_gates",
        ["finished_at", "environment", "wait"],
    )
    op.create_index(
        "ix_incidents_resolved_at", "incidents", ["resolved_at", "environment", "opened_at"]
    )


def downgrade() -> None:
    from interlock.storage.metric_days import recount_metric_days

    op.drop_index("ix_incidents_resolved_at", table_name="incidents")
    op.drop_index("ix_delivery_gates_finished_at", table_name="delivery_gates")
    op.drop_table("metric_blocks")
    recount_metric_days(op.get_bind())  # every day counted again from the rows

"""Per-day counts for the Prometheus exposition, so summing its history reads few rows.

Adds ``metric_days``: per family, UTC day, labels and histogram bucket, the
count (and sum of seconds) of what ``/metrics`` sums over the whole history:
deployments by outcome, their durations and lead times, incidents opened,
restores, approval waits and step runs. Counts them from the existing rows
(set-wide statements), then creates the triggers on ``delivery_facts``,
``incidents``, ``delivery_gates`` and ``nodes`` that keep them
(``interlock.storage.metric_days``).

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-06 04:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from interlock.storage.metric_days import install_metric_days

    op.create_table(
        "metric_days",
        sa.Column("family", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("a", sa.String(length=128), nullable=False),
        sa.Column("b", sa.String(length=128), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint(
            "family", "day", "a", "b", "bucket", "shard", name=op.f("pk_metric_days")
        ),
    )
    install_metric_days(op.get_bind())  # counts what is there, then the triggers keep it


def downgrade() -> None:
    from interlock.storage.metric_days import drop_ddl

    for statement in drop_ddl(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table("metric_days")

"""Per-day sums for the Prometheus exposition, so its first scrape reads no history row.

Adds to ``delivery_days`` (one row per environment, UTC day, service and kind)
what ``/metrics`` sums over the whole history: the deployments that ended, by
outcome, and the deployment durations and lead times counted into the
histograms' buckets (``interlock.storage.metric_bounds``). The transaction that
sums a day again (``interlock.storage.facts.delivery``) keeps them in step like
the other columns. Then every day is summed again from ``delivery_facts``
(a set-wide statement: about a minute per million deployments on SQLite).

Adds ``metric_days``: per UTC day and labels, the incidents opened, the
restores, approval waits and step runs, counted from the existing rows and
then kept by triggers on ``incidents``, ``delivery_gates`` and ``nodes``
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

# The columns as 0020 made them (the schema module's list may grow later).
DURATION_BUCKETS, LEAD_BUCKETS = 12, 13
STATES = ("succeeded", "failed", "rolled_back", "cancelled", "not_reached")


def _names() -> list[str]:
    return [
        "ended",
        *(f"ended_{state}" for state in STATES),
        "durations",
        "duration_sum",
        *(f"duration_le{i}" for i in range(DURATION_BUCKETS)),
        *(f"lead_le{i}" for i in range(LEAD_BUCKETS)),
    ]


def upgrade() -> None:
    from interlock.storage.facts.delivery import sum_days_on
    from interlock.storage.metric_days import install_metric_days

    with op.batch_alter_table("delivery_days") as batch:
        for name in _names():
            kind: sa.types.TypeEngine[float] | sa.types.TypeEngine[int] = (
                sa.Float(precision=53) if name.endswith("_sum") else sa.Integer()
            )
            batch.add_column(sa.Column(name, kind, server_default=sa.text("0"), nullable=False))
    sum_days_on(op.get_bind())
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
    with op.batch_alter_table("delivery_days") as batch:
        for name in reversed(_names()):
            batch.drop_column(name)

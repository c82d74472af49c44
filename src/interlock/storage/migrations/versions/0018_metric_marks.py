"""The Prometheus exposition's totals, saved so that a new process starts from them.

``metric_marks``: per set of histogram bounds, the totals of the history up to
a mark, and a generation that grows when they go stale (docs/metrics.md).
Nothing is summed here: the first server to sum the history saves it.

Revision ID: 0018
Revises: 0012
Create Date: 2026-12-06 02:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_TS = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "metric_marks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("mark", _TS, nullable=True),
        sa.Column(
            "totals",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("saved_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_metric_marks")),
    )
    # The row exists from the start: saving is then always an update of it.
    op.execute("INSERT INTO metric_marks (name, generation) VALUES ('exposition', 0)")


def downgrade() -> None:
    op.drop_table("metric_marks")

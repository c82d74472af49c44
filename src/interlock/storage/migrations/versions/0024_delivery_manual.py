"""The manual step runs of finished deployments, for the manual-step ranking.

Adds ``delivery_manual``: one row per manual step run of a finished deployment
or runbook run that ended (its environment, runbook, service and name, when it
ended, and its sign-off time if it was signed off), indexed per step in
sign-off-time order. The ranking then sums a step's runs from that index and
takes its median by walking it, instead of joining every manual step of the
history to its deployment and numbering them (1.2 s at 1,000,000 deployments).
The rows of the deployments there are are derived here; the engine writes them
as a deployment ends (``interlock.storage.facts.delivery``).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 13:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from interlock.storage.facts.delivery import manual_runs_on

    op.create_table(
        "delivery_manual",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("runbook", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("finished_at", sa.Float(precision=53), nullable=False),
        sa.Column("wait", sa.Float(precision=53), nullable=True),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_delivery_manual")),
    )
    manual_runs_on(op.get_bind())  # the rows first, then their indexes (in bulk)
    op.create_index("ix_delivery_manual_deployment_id", "delivery_manual", ["deployment_id"])
    op.create_index(
        "ix_delivery_manual_step",
        "delivery_manual",
        ["environment", "runbook", "service", "name", "wait", "finished_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_manual_step", table_name="delivery_manual")
    op.drop_index("ix_delivery_manual_deployment_id", table_name="delivery_manual")
    op.drop_table("delivery_manual")

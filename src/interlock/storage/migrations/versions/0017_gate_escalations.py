"""Escalated approval gates: the roles and teams that may approve them too.

``gate_escalations``: one row per waiting approval gate and group it was
escalated to (``notifications.gates.escalate``); written in the transaction of
the escalation's audit event. The gate's rules count that group's approvers.

Revision ID: 0017
Revises: 0012
Create Date: 2026-12-06 02:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_escalations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("at", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_escalations")),
        sa.UniqueConstraint(
            "node_id",
            "kind",
            "group_name",
            name=op.f("uq_gate_escalations_node_id_kind_group_name"),
        ),
    )


def downgrade() -> None:
    op.drop_table("gate_escalations")

"""Indexes for delivery metrics and the Prometheus exposition.

Each metric reads what finished in a period: deployments and steps by
``finished_at`` (with the columns the counts need, so the scan stays in the
index), incidents by environment and opening time, and the incidents that
name a deployment.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 13:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_deployments_kind_finished_at",
        "deployments",
        ["kind", "finished_at", "environment", "state", "release_id", "started_at"],
    )
    op.create_index(
        "ix_nodes_kind_finished_at",
        "nodes",
        ["kind", "finished_at", "executor", "deployment_id", "started_at"],
    )
    op.create_index("ix_incidents_deployment_id", "incidents", ["deployment_id"])
    op.create_index(
        "ix_incidents_environment_opened_at",
        "incidents",
        ["environment", "opened_at", "service", "resolved_at"],
    )
    op.create_index("ix_releases_scheduled_at", "releases", ["scheduled_at"])


def downgrade() -> None:
    op.drop_index("ix_releases_scheduled_at", table_name="releases")
    op.drop_index("ix_incidents_environment_opened_at", table_name="incidents")
    op.drop_index("ix_incidents_deployment_id", table_name="incidents")
    op.drop_index("ix_nodes_kind_finished_at", table_name="nodes")
    op.drop_index("ix_deployments_kind_finished_at", table_name="deployments")

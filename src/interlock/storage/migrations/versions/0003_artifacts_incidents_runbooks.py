"""Artifacts, drift observations, incidents, runbook sign-offs; rollback and runbook columns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:57:59.076922
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=True),
        sa.Column("commit_sha", sa.String(length=64), nullable=True),
        sa.Column("repo", sa.Text(), nullable=True),
        sa.Column("build_url", sa.Text(), nullable=True),
        sa.Column("committed_at", sa.Float(precision=53), nullable=True),
        sa.Column("registered_at", sa.Float(precision=53), nullable=False),
        sa.Column("registered_by", sa.String(length=128), nullable=False),
        sa.Column("blocked_at", sa.Float(precision=53), nullable=True),
        sa.Column("blocked_by", sa.String(length=128), nullable=True),
        sa.Column("block_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
        sa.UniqueConstraint("service", "version", name=op.f("uq_artifacts_service_version")),
    )
    op.create_table(
        "observations",
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("observed_at", sa.Float(precision=53), nullable=False),
        sa.Column("observed_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("service", "environment", name=op.f("pk_observations")),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=True),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.Float(precision=53), nullable=False),
        sa.Column("opened_by", sa.String(length=128), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.Column("release_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", sa.Float(precision=53), nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_by_deployment", sa.Integer(), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_incidents_deployment_id_deployments"),
        ),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_incidents_release_id_releases")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_deployment"],
            ["deployments.id"],
            name=op.f("fk_incidents_resolved_by_deployment_deployments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_state", ["state", "environment"], unique=False)

    op.create_table(
        "signoffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("signer", sa.String(length=128), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("signed_at", sa.Float(precision=53), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_signoffs_node_id_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signoffs")),
        sa.UniqueConstraint("node_id", "signer", name=op.f("uq_signoffs_node_id_signer")),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("abort_reason", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "settings",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("runbook", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "params",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("parent_node_id", sa.Integer(), nullable=True))

    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind", sa.String(length=16), server_default=sa.text("'deploy'"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_column("kind")

    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("parent_node_id")
        batch_op.drop_column("incident_id")
        batch_op.drop_column("params")
        batch_op.drop_column("runbook")
        batch_op.drop_column("settings")
        batch_op.drop_column("abort_reason")

    op.drop_table("signoffs")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_state")

    op.drop_table("incidents")
    op.drop_table("observations")
    op.drop_table("artifacts")

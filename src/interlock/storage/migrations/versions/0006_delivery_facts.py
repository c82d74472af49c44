"""Delivery facts: the narrow rows and per-day sums the delivery metrics read.

Adds ``delivery_facts``, ``delivery_gates``, ``delivery_steps``, their
per-day sums (``delivery_days``, ``delivery_people``, ``delivery_step_days``)
and ``delivery_slips``, indexes incidents by their time to restore,
then fills them from the existing records in one pass of set-wide statements
(about 2.5 minutes per million deployments on SQLite, 6 on PostgreSQL). From then on the
transaction that changes a record keeps them in step
(``interlock.storage.facts.delivery``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TIME = sa.Float(precision=53)


def _key(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(length=64), nullable=False)


def upgrade() -> None:
    op.create_table(
        "delivery_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        _key("service"),
        _key("environment"),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("person", sa.String(length=128), nullable=True),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("finished_at", TIME, nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("commit_key", sa.String(length=128), nullable=False),
        sa.Column("committed_at", TIME, nullable=True),
        sa.Column("first", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("lead", TIME, nullable=True),
        sa.Column("rework", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rework_any", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("named", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("prev_started", TIME, nullable=True),
        sa.Column("episode", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("restored", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_facts")),
    )
    op.create_index("ix_delivery_facts_deployment_id", "delivery_facts", ["deployment_id"])
    op.create_index(
        "ix_delivery_facts_scan",
        "delivery_facts",
        [
            "environment",
            "finished_at",
            "kind",
            "state",
            "position",
            "service",
            "deployment_id",
            "release_id",
            "person",
        ],
    )
    op.create_index(
        "ix_delivery_facts_lead",
        "delivery_facts",
        ["environment", "first", "lead", "finished_at", "service"],
    )
    op.create_index(
        "ix_delivery_facts_commit", "delivery_facts", ["service", "environment", "commit_key"]
    )
    op.create_index(
        "ix_delivery_facts_pipeline",
        "delivery_facts",
        ["service", "environment", "kind", "started_at"],
    )
    op.create_index("ix_delivery_facts_day", "delivery_facts", ["environment", "day"])
    op.create_index(
        "ix_delivery_facts_episode",
        "delivery_facts",
        ["environment", "episode", "restored", "finished_at", "service"],
    )
    op.create_index(
        "ix_delivery_facts_stream", "delivery_facts", ["service", "environment", "finished_at"]
    )
    op.create_table(
        "delivery_gates",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=True),
        _key("environment"),
        sa.Column("finished_at", TIME, nullable=False),
        sa.Column("wait", TIME, nullable=False),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_delivery_gates")),
    )
    op.create_index("ix_delivery_gates_deployment_id", "delivery_gates", ["deployment_id"])
    op.create_index(
        "ix_delivery_gates_wait",
        "delivery_gates",
        ["environment", "wait", "finished_at", "release_id"],
    )
    op.create_table(
        "delivery_steps",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        _key("environment"),
        sa.Column("day", sa.Integer(), nullable=False),
        _key("service"),
        sa.Column("manual", sa.Integer(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "deployment_id",
            "environment",
            "day",
            "service",
            "manual",
            name=op.f("pk_delivery_steps"),
        ),
    )
    op.create_index("ix_delivery_steps_day", "delivery_steps", ["environment", "day"])
    counts = [
        "attempted",
        "succeeded",
        "failed",
        "rollbacks",
        "rework",
        "named",
        "named_good",
        "runs",
        "run_failures",
        "gaps",
    ]
    op.create_table(
        "delivery_days",
        _key("environment"),
        sa.Column("day", sa.Integer(), nullable=False),
        _key("service"),
        sa.Column("kind", sa.String(length=16), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in counts],
        sa.Column("gap_sum", TIME, nullable=False),
        sa.Column("gap_square", TIME, nullable=False),
        sa.Column("leads", sa.Integer(), nullable=False),
        sa.Column("lead_sum", TIME, nullable=False),
        sa.Column("lead_skewed", sa.Integer(), nullable=False),
        sa.Column("lead_unknown", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "environment", "day", "service", "kind", name=op.f("pk_delivery_days")
        ),
    )
    op.create_table(
        "delivery_people",
        _key("environment"),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("person", sa.String(length=128), nullable=False),
        sa.Column("releases", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("environment", "day", "person", name=op.f("pk_delivery_people")),
    )
    op.create_table(
        "delivery_step_days",
        _key("environment"),
        sa.Column("day", sa.Integer(), nullable=False),
        _key("service"),
        sa.Column("manual", sa.Integer(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "environment", "day", "service", "manual", name=op.f("pk_delivery_step_days")
        ),
    )
    op.create_table(
        "delivery_slips",
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", TIME, nullable=False),
        sa.Column("slip", TIME, nullable=False),
        sa.PrimaryKeyConstraint("release_id", name=op.f("pk_delivery_slips")),
    )
    op.create_index("ix_delivery_slips_scheduled_at", "delivery_slips", ["scheduled_at", "slip"])
    op.create_index(
        "ix_delivery_slips_slip", "delivery_slips", ["slip", "scheduled_at", "release_id"]
    )
    op.create_index(
        "ix_incidents_service_environment_opened_at",
        "incidents",
        ["service", "environment", "opened_at", "resolved_at"],
    )
    op.drop_index("ix_incidents_environment_opened_at", table_name="incidents")
    op.create_index(
        "ix_incidents_environment_opened_at",
        "incidents",
        ["environment", "opened_at", "service", "resolved_at", "deployment_id"],
    )
    op.drop_index("ix_nodes_kind_finished_at", table_name="nodes")
    op.create_index(
        "ix_nodes_kind_finished_at",
        "nodes",
        ["kind", "finished_at", "executor", "deployment_id", "started_at", "state"],
    )
    op.create_index(
        "ix_incidents_restore",
        "incidents",
        ["environment", sa.text("(resolved_at - opened_at)"), "opened_at", "service"],
    )
    _fill()


def _fill() -> None:
    """Derive the facts of the records already there (the code of this release does it)."""
    from interlock.storage.facts.delivery import rebuild_delivery_on

    op.execute("ANALYZE")  # the planner's statistics of the records, read in one pass below
    rebuild_delivery_on(op.get_bind())
    op.execute("ANALYZE")  # statistics for the planner on the new tables and indexes


def downgrade() -> None:
    op.drop_index("ix_nodes_kind_finished_at", table_name="nodes")
    op.create_index(
        "ix_nodes_kind_finished_at",
        "nodes",
        ["kind", "finished_at", "executor", "deployment_id", "started_at"],
    )
    op.drop_index("ix_incidents_restore", table_name="incidents")
    op.drop_index("ix_incidents_environment_opened_at", table_name="incidents")
    op.create_index(
        "ix_incidents_environment_opened_at",
        "incidents",
        ["environment", "opened_at", "service", "resolved_at"],
    )
    op.drop_index("ix_incidents_service_environment_opened_at", table_name="incidents")
    for table in (
        "delivery_slips",
        "delivery_step_days",
        "delivery_people",
        "delivery_days",
        "delivery_steps",
        "delivery_gates",
        "delivery_facts",
    ):
        op.drop_table(table)

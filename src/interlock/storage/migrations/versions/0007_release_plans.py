"""Release plans in a table of their own; the release row keeps its route.

Every step of a release moves the release's revision, an update of the
release's row: with the plan in it (some 60 KB for a hundred steps, 1 MB for
two thousand), each step went through its release's plan again. The plan is
written once, so it moves to ``release_plans``, one row per release. Lists of
releases read only ``releases.route``, the plan's environments in order.

The index of nodes by deployment and state takes the phase too, so the count
of a deployment's nodes per (phase, state), read at every step, is read from
the index alone.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "release_plans",
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("plan", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_release_plans_release_id_releases")
        ),
        sa.PrimaryKeyConstraint("release_id", name=op.f("pk_release_plans")),
    )
    op.execute("INSERT INTO release_plans (release_id, plan) SELECT id, plan FROM releases")
    op.add_column(
        "releases",
        sa.Column("route", JSON, nullable=False, server_default=sa.text("'[]'")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE releases SET route = coalesce((SELECT jsonb_agg(e->'name' ORDER BY n)"
            " FROM jsonb_array_elements(plan->'environments') WITH ORDINALITY AS x(e, n)),"
            " '[]'::jsonb)"
        )
    else:
        op.execute(
            "UPDATE releases SET route = (SELECT json_group_array(json_extract(e.value, '$.name'))"
            " FROM (SELECT value FROM json_each(releases.plan, '$.environments')"
            " ORDER BY key) AS e)"
        )
    # In place (SQLite 3.35+): a batch copy of the table would trip the foreign keys.
    op.drop_column("releases", "plan")
    op.create_index(
        "ix_nodes_deployment_id_state_phase", "nodes", ["deployment_id", "state", "phase"]
    )
    op.drop_index("ix_nodes_deployment_id_state", table_name="nodes")


def downgrade() -> None:
    op.create_index("ix_nodes_deployment_id_state", "nodes", ["deployment_id", "state"])
    op.drop_index("ix_nodes_deployment_id_state_phase", table_name="nodes")
    op.drop_column("releases", "route")
    op.add_column("releases", sa.Column("plan", JSON, nullable=True))
    op.execute(
        "UPDATE releases SET plan = coalesce((SELECT plan FROM release_plans"
        " WHERE release_plans.release_id = releases.id), '{}')"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("releases", "plan", existing_type=JSON, nullable=False)
    # (SQLite cannot add NOT NULL to a column in place; 0006 never writes a null.)
    op.drop_table("release_plans")

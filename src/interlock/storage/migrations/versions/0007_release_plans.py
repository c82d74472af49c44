"""Release plans in a table of their own.

Every step of a release moves the release's revision, and an update rewrites
the whole row: with the plan in it (some 60 KB for a hundred steps), each step
wrote its release's plan again. The plan is written once, so it moves to
``release_plans``, one row per release.

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
    op.drop_column("releases", "plan")  # SQLite 3.35+ drops a column in place


def downgrade() -> None:
    op.add_column("releases", sa.Column("plan", JSON, nullable=True))
    op.execute(
        "UPDATE releases SET plan = (SELECT plan FROM release_plans"
        " WHERE release_plans.release_id = releases.id)"
    )
    op.drop_table("release_plans")

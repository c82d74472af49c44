"""User names are unique regardless of case.

``Alice`` and ``alice`` would be two people to the approval rules (four-eyes
compares names) while a reader takes them for one. A unique index on
``lower(name)`` keeps a second spelling out, whatever writes the row.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 22:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    clashes = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT lower(name) FROM users GROUP BY lower(name) HAVING count(*) > 1 "
                "ORDER BY lower(name)"
            )
        )
        .scalars()
        .all()
    )
    if clashes:
        raise RuntimeError(
            "these user names differ only in case: "
            + ", ".join(clashes)
            + "; rename one of each (UPDATE users SET name = ... WHERE ...) and upgrade again"
        )
    op.create_index("ix_users_name_lower", "users", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_name_lower", table_name="users")

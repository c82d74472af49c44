"""Receipts of inbound events remember the digest of the signed body.

A GitHub delivery id is a header, outside the signature: a captured delivery
sent again under a new id would be acted on again. The sha256 of the raw body
(which the signature covers) is kept with the receipt, unique per source, so a
replay is recognised whatever id it carries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 22:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_receipts") as batch:
        batch.add_column(sa.Column("body_digest", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_event_receipts_source_body_digest",
        "event_receipts",
        ["source", "body_digest"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_event_receipts_source_body_digest", table_name="event_receipts")
    with op.batch_alter_table("event_receipts") as batch:
        batch.drop_column("body_digest")

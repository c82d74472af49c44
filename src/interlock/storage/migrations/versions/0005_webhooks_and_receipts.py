"""Webhook delivery cursors and receipts of inbound events.

``webhook_cursors``: per webhook, the audit sequence number delivered up to
(the audit log is the outbox), with the last success, the last error and
when to try again. ``event_receipts``: every inbound event acted on, keyed
by its source, id and type, so a sender's retry is recognised and an
incident can be matched with the event that resolves it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("delivered_seq", sa.Integer(), nullable=False),
        sa.Column("started_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(precision=53), nullable=False),
        sa.Column("updated_at", sa.Float(precision=53), nullable=False),
        sa.Column("last_success_at", sa.Float(precision=53), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.Float(precision=53), nullable=True),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.Float(precision=53), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_webhook_cursors")),
    )
    op.create_table(
        "event_receipts",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("subject_key", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.Float(precision=53), nullable=False),
        sa.Column("received_by", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_event_receipts")),
    )
    op.create_index("ix_event_receipts_subject_key", "event_receipts", ["subject_key"])


def downgrade() -> None:
    op.drop_index("ix_event_receipts_subject_key", table_name="event_receipts")
    op.drop_table("event_receipts")
    op.drop_table("webhook_cursors")

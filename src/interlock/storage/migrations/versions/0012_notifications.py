"""Notifications to people: the outbox, approval links, reminder timers.

``notify_outbox``: every message, written in the transaction of the event it
tells of, with its delivery state (the per-channel delivery log).
``approval_links``: signed, single-use approve/reject links per approver.
``notify_timers``: reminders and escalations of waiting gates (they survive
restarts). ``notify_keys``: the link-signing key. ``slack_replays``: Slack
request signatures seen, so a replay is refused.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-06 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0014"
branch_labels = None
depends_on = None

_TS = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "notify_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=True),
        sa.Column("claimed_until", _TS, nullable=True),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_outbox")),
    )
    op.create_index(
        "ix_notify_outbox_channel_state_id", "notify_outbox", ["channel", "state", "id"]
    )
    op.create_table(
        "approval_links",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("gate", sa.String(length=128), nullable=False),
        sa.Column("approver", sa.String(length=128), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("gate_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
        sa.Column("used_decision", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_links")),
    )
    op.create_table(
        "notify_timers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("fired", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("done", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_timers")),
        sa.UniqueConstraint("kind", "node_id", name=op.f("uq_notify_timers_kind_node_id")),
    )
    op.create_index("ix_notify_timers_done_due_at", "notify_timers", ["done", "due_at"])
    op.create_table(
        "notify_keys",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notify_keys")),
    )
    op.create_table(
        "slack_replays",
        sa.Column("signature", sa.String(length=80), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_slack_replays")),
    )


def downgrade() -> None:
    op.drop_table("slack_replays")
    op.drop_table("notify_keys")
    op.drop_index("ix_notify_timers_done_due_at", table_name="notify_timers")
    op.drop_table("notify_timers")
    op.drop_table("approval_links")
    op.drop_index("ix_notify_outbox_channel_state_id", table_name="notify_outbox")
    op.drop_table("notify_outbox")

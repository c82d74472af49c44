"""On PostgreSQL, the per-day counts every finishing deployment moves spread over shards.

The triggers of ``metric_days`` on ``delivery_facts`` (families ``deployments``,
``durations``, ``lead_times``) and ``delivery_gates`` (``approval_waits``) count
on ``SHARDS`` rows per key, picked by the row's id, instead of one, so workers
finishing deployments of one environment and day at once no longer wait on one
row until the other commits. Existing counts stay where they are (shard 0):
readers sum a key over its shards. SQLite (one writer) keeps one row: nothing
changes there. The downgrade adds the shards back into shard 0.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 08:30:00.000000
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

TABLES = ("delivery_facts", "delivery_gates")


def _triggers(single: tuple[str, ...]) -> None:
    from interlock.storage.metric_days import drop_ddl, trigger_ddl

    conn = op.get_bind()
    dialect = conn.dialect.name
    if dialect != "postgresql":
        return  # SQLite: one row per key, as before
    for statement in drop_ddl(dialect, TABLES) + trigger_ddl(dialect, TABLES, single):
        conn.execute(text(statement))


def upgrade() -> None:
    _triggers(())


def downgrade() -> None:
    from interlock.storage.metric_days import RESHARDED, merge_shards

    _triggers(RESHARDED)
    if op.get_bind().dialect.name == "postgresql":
        merge_shards(op.get_bind(), RESHARDED)

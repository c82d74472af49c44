"""Delivery facts: a deployment that never reached its environment counts nowhere.

A deployment that failed before its first deploy step started (rejected at an
approval, stopped by a window or a check) changed nothing in its environment.
Its facts now say so (state ``not_reached``): it is no change failure, no
rework, no failure episode, and not in any denominator, as a cancelled one.
No table changes; the facts already there are derived again with this rule.

The downgrade gives those facts back their deployment's state; run
``interlock db rebuild-metrics`` with the older version afterwards to derive
its sums.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 22:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from interlock.storage.facts.delivery import rebuild_delivery_on

    rebuild_delivery_on(op.get_bind())


def downgrade() -> None:
    op.execute(
        "UPDATE delivery_facts SET state = (SELECT d.state FROM deployments d"
        " WHERE d.id = delivery_facts.deployment_id) WHERE state = 'not_reached'"
    )

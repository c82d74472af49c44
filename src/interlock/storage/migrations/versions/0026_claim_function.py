"""On PostgreSQL, a claim locks only the node it leases; a step's run is counted at commit.

A claim was one statement: the oldest ready node, ``FOR UPDATE SKIP LOCKED``, leased.
When another worker's claim of that node committed after the statement's snapshot,
PostgreSQL locked the node's new row version, found it no longer ready and skipped it,
but kept the lock until the claim's transaction committed: the worker running that node
then waited for that commit to record its step (the largest share of the lock waits
with four worker processes).

``interlock_claim`` takes the candidates in the same order, and for each takes an
advisory lock (``CLAIM_LOCK``, the node's id; try, never wait: a node another claim
holds is skipped, as ``SKIP LOCKED`` did) and only then leases it, in a statement of
its own, so with a snapshot taken after the lock: a node another claim leased and
committed is no longer ready in it, and is neither locked nor waited for. Every claim
of a ready node takes that advisory lock (a node a transaction makes ready and leases
itself is invisible to the others until it commits). One round trip, as before.
SQLite (one writer) has no such function: nothing changes there.

Also on PostgreSQL, the trigger that counts a step's run in ``metric_days`` becomes a
deferred constraint trigger: it counts at commit (under the audit head's lock, which
the commit holds already) instead of at the step's end, early in its transaction,
after which two workers ending steps counted on one row (``id % 8``) waited for each
other's whole transaction.

Revision ID: 0026
Revises: 0024
Create Date: 2026-12-06 13:10:00.000000
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0026"
down_revision = "0024"
branch_labels = None
depends_on = None

CLAIM_LOCK = 727009  # the advisory lock class of a node being claimed (two-int4 form)

# The candidates, oldest first: the claim's search (tests/integration/
# test_postgres_claim_plan.py asserts it reads the partial index ix_nodes_ready).
CANDIDATES = (
    "SELECT id FROM nodes WHERE state = 'ready' AND not_before <= p_now"
    " AND id <> ALL (tried) ORDER BY not_before, id LIMIT 10"
)

FUNCTION = f"""
CREATE OR REPLACE FUNCTION interlock_claim(
    p_now double precision, p_worker varchar, p_expires double precision
) RETURNS SETOF nodes LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    candidate bigint;
    tried bigint[] := '{{}}';
    seen boolean;
BEGIN
    LOOP
        seen := false;
        FOR candidate IN {CANDIDATES} LOOP
            seen := true;
            tried := tried || candidate;
            -- Held to this transaction's end: another claim skips the node meanwhile.
            CONTINUE WHEN NOT pg_try_advisory_xact_lock(
                {CLAIM_LOCK}, (candidate % 2147483648)::integer);
            -- A statement of its own: its snapshot, taken after the lock, shows any
            -- other claim of the node committed, so a node no longer ready is skipped
            -- without locking its row.
            RETURN QUERY
                UPDATE nodes SET state = 'running', attempt = attempt + 1,
                    fence = fence + 1, lease_owner = p_worker, lease_expires = p_expires,
                    started_at = coalesce(started_at, p_now)
                WHERE id = candidate AND state = 'ready'
                RETURNING *;
            IF FOUND THEN
                RETURN;
            END IF;
        END LOOP;
        EXIT WHEN NOT seen;
    END LOOP;
END
$$
"""


def _step_runs_trigger(immediate: tuple[str, ...]) -> None:
    from interlock.storage.metric_days import drop_ddl, trigger_ddl

    for statement in drop_ddl("postgresql", ("nodes",)) + trigger_ddl(
        "postgresql", ("nodes",), immediate=immediate
    ):
        op.execute(text(statement))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(text(FUNCTION))
        _step_runs_trigger(())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _step_runs_trigger(("step_runs",))
        op.execute(
            text(
                "DROP FUNCTION IF EXISTS interlock_claim(double precision, varchar,"
                " double precision)"
            )
        )

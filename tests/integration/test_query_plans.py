"""Reads made at every step stay index-only however large a deployment grows (SQLite)."""

from __future__ import annotations

import pytest

from interlock.storage.nodes import _PHASE_STATE_COUNTS


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_deployments_counts_per_phase_and_state_come_from_the_index_alone(db):
    sql = str(_PHASE_STATE_COUNTS.compile(db.engine, compile_kwargs={"literal_binds": False}))
    with db.engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (1,)).all()
    detail = " | ".join(str(row[-1]) for row in plan)
    assert "COVERING INDEX ix_nodes_deployment_id_state_phase" in detail, detail

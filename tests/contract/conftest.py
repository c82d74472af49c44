"""Storage contract fixtures: records written through ``Tx`` alone, no engine.

Each contract test runs on both backends (the ``db`` fixture of tests/conftest.py
is parametrised by ``backend``): what the storage interface promises must hold
on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from interlock.domain.plan import NodePlan, ReleasePlan
from interlock.domain.records import Item
from interlock.domain.states import DeploymentState, NodeState, ReleaseState
from interlock.storage.db import Database
from interlock.storage.tx import Tx

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def seed_release(tx: Tx, *, reason: str = "CONTRACT-1: storage") -> int:
    """A running release of api@1.0 (with the config version it needs)."""
    version = tx.latest_config()
    config = (
        version.version
        if version
        else tx.add_config(
            hash="0" * 64, path="interlock.yaml", text="version: 1\n", at=NOW, by="tester"
        )
    )
    return tx.insert_release(
        reason=reason,
        created_by="ann",
        at=NOW,
        state=ReleaseState.RUNNING,
        config_version=config,
        plan=ReleasePlan(config_version=config, items=(), environments=()),
        items=[Item("api", "1.0")],
    )


def seed_running_deployment(tx: Tx) -> int:
    """A running staging deployment of a new release; its id."""
    return tx.insert_deployment(
        release_id=seed_release(tx),
        kind="deploy",
        environment="staging",
        env_index=0,
        state=DeploymentState.RUNNING,
        created_by="ann",
        at=NOW,
    )


def seed_ready_nodes(db: Database, count: int) -> list[int]:
    """One running deployment with ``count`` steps, all ready to claim now; their ids."""
    with db.transaction() as tx:
        deployment_id = seed_running_deployment(tx)
        plans = [
            NodePlan(key=f"api/s{i}", kind="step", name=f"s{i}", executor="shell", spec={})
            for i in range(count)
        ]
        tx.insert_nodes(deployment_id, plans, NOW)
        for node in tx.nodes_of(deployment_id):
            assert tx.update_node(node, NodeState.PENDING, state=NodeState.READY, not_before=NOW)
        return [n.id for n in tx.nodes_of(deployment_id)]


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads started together; their results, or raise."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a writer never finished"
    if errors:
        raise errors[0]
    return results

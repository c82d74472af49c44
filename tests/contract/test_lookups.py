"""Look-ups: ``get_*`` says a row is missing with ``None``; ``require_*`` with NotFound (404)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from interlock.domain.states import DeploymentState
from interlock.errors import NotFound
from interlock.storage.db import Database
from interlock.storage.tx import Tx
from tests.contract.conftest import NOW, seed_ready_nodes

MISSING: list[tuple[str, Callable[[Tx], Any], Callable[[Tx], Any], str]] = [
    ("release", lambda tx: tx.get_release(999), lambda tx: tx.require_release(999), "release 999"),
    (
        "deployment",
        lambda tx: tx.get_deployment(999),
        lambda tx: tx.require_deployment(999),
        "deployment 999",
    ),
    ("node", lambda tx: tx.get_node(999), lambda tx: tx.require_node(999), "step 999"),
    ("incident", lambda tx: tx.get_incident(9), lambda tx: tx.require_incident(9), "incident 9"),
    (
        "artifact",
        lambda tx: tx.get_artifact("api", "9.9"),
        lambda tx: tx.require_artifact("api", "9.9"),
        "artifact api@9.9",
    ),
    (
        "config",
        lambda tx: tx.get_config(42),
        lambda tx: tx.require_config(42),
        "configuration version 42",
    ),
    ("user", lambda tx: tx.get_user("zed"), lambda tx: tx.require_user("zed"), "user 'zed'"),
    ("token", lambda tx: tx.get_token(9), lambda tx: tx.require_token(9), "token 9"),
    ("override", lambda tx: tx.get_override(9), lambda tx: tx.require_override(9), "override 9"),
    (
        "environment lock",
        lambda tx: tx.environment_lock("staging"),
        lambda tx: tx.require_environment_lock("staging"),
        "lock on staging",
    ),
]


@pytest.mark.parametrize(("_", "get", "require", "named"), MISSING, ids=[m[0] for m in MISSING])
def test_a_missing_row_is_none_to_get_and_not_found_to_require(
    db: Database,
    _: str,
    get: Callable[[Tx], Any],
    require: Callable[[Tx], Any],
    named: str,
) -> None:
    with db.read() as tx:
        assert get(tx) is None
        with pytest.raises(NotFound) as raised:
            require(tx)
    assert raised.value.detail == f"no {named}"
    assert raised.value.http_status == 404


def test_require_returns_what_get_finds(db: Database) -> None:
    (node_id,) = seed_ready_nodes(db, 1)
    with db.read() as tx:
        node = tx.require_node(node_id)
        deployment = tx.require_deployment(node.deployment_id)
        assert deployment == tx.get_deployment(node.deployment_id)
        assert deployment.release_id is not None
        release = tx.require_release(deployment.release_id, plan=False)
        assert release.items[0].service == "api"
        assert node == tx.get_node(node_id)


def test_the_release_of_a_deployment_is_required_and_a_runbook_run_has_none(db: Database) -> None:
    (node_id,) = seed_ready_nodes(db, 1)
    with db.transaction() as tx:
        deployment = tx.require_deployment(tx.require_node(node_id).deployment_id)
        assert tx.require_release_of(deployment, plan=False).items[0].service == "api"
        run_id = tx.insert_deployment(
            release_id=None,
            kind="runbook",
            environment="staging",
            env_index=0,
            state=DeploymentState.RUNNING,
            created_by="ann",
            at=NOW,
        )
        run = tx.require_deployment(run_id)
        with pytest.raises(NotFound) as raised:
            tx.require_release_of(run)
    assert raised.value.detail == f"no release of deployment {run_id} (it is a runbook run)"


def test_a_held_environment_lock_is_required(db: Database) -> None:
    with db.transaction() as tx:
        assert tx.lock_environment("staging", "ann", "incident", NOW)
        lock = tx.require_environment_lock("staging")
    assert (lock.locked_by, lock.reason) == ("ann", "incident")

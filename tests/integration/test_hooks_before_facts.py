"""The audit hooks (the outbox) run before the delivery facts are projected.

Projecting the facts of a deployment that ended locks rows other deployments
ending at once add to (the per-day counts); those locks last to the commit. The
outbox hook reads the active config (a round trip when the transaction has not
read it) and renders its messages: run after the facts, every other deployment
ending in that environment and day waited on that work too (the ``delivery_people``
waits of bench/pg_waits.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from interlock.domain.states import ReleaseState
from tests.helpers import release_state
from tests.support.driver import EngineDriver

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy: [{name: a, run: "true", idempotent: true}]
"""


def test_the_audit_hooks_run_before_the_facts_of_an_ended_deployment(pilot: Any) -> None:
    pilot.config(CONFIG)
    seen: list[bool] = []  # per hook call with a deployment's end: were its facts still due?

    def hook(tx: Any, events: list[dict[str, Any]]) -> None:
        if any(e["action"] == "deployment.succeeded" for e in events):
            seen.append(bool(tx.stale.finished))

    pilot.engine.db.audit_hooks.append(hook)
    try:
        release = pilot.release("api@1.0")
        EngineDriver(pilot.engine).run_until_idle()
    finally:
        pilot.engine.db.audit_hooks.remove(hook)
    assert release_state(pilot.engine, release.id).state is ReleaseState.SUCCEEDED
    assert seen == [True]  # the hook ran while the facts were still to be projected
    with pilot.read() as tx:  # and they were projected all the same, in that commit
        rows = tx.conn.execute(text("SELECT count(*) FROM delivery_facts")).scalar()
    assert rows == 1

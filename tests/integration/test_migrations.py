"""Migrations carry the data across, both ways, on both backends."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from interlock.storage.migrate import _alembic_config, head_revision, upgrade

ROUTE = tuple(f"e{n}" for n in range(1, 12)) + ("production",)  # e10 after e9, not e1
CONFIG = f"""\
version: 1
environments: [{", ".join(f"{{name: {e}}}" for e in ROUTE)}]
services:
  api: {{deploy: [{{name: migrate, run: "true"}}, {{name: roll-out, run: "true"}}]}}
"""


def _downgrade(db, revision: str) -> None:
    from alembic import command

    cfg = _alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_release_plans_move_to_their_own_table_and_back(pilot):
    pilot.config(CONFIG)
    made = [pilot.release(f"api@1.{n}.0") for n in range(3)]
    with pilot.read() as tx:
        plans = {r.id: tx.get_release(r.id).plan for r in made}
    assert all(p["environments"][-1]["name"] == "production" for p in plans.values())
    db = pilot.engine.db

    _downgrade(db, "0006")  # the plan goes back into the releases row
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, plan FROM releases ORDER BY id")).all()
    back = {i: p if isinstance(p, dict) else json.loads(p) for i, p in rows}
    assert back == plans

    assert upgrade(db) == ("0006", head_revision())
    with pilot.read() as tx:
        assert {r.id: tx.get_release(r.id).plan for r in made} == plans
        assert tx.get_release(made[0].id, plan=False).plan == {}
        # Lists carry the route, derived from each plan by the migration, and no plan.
        listed = tx.list_releases()
        assert [r.route for r in listed] == [ROUTE] * 3
        assert [r.plan for r in listed] == [{}] * 3


def test_receipts_gain_the_body_digest_and_lose_it_again(pilot):
    db = pilot.engine.db
    at = pilot.engine.clock.now()

    def claim(key: str, digest: str | None) -> bool:
        with db.transaction() as tx:
            return bool(
                tx.claim_event_receipt(
                    key=key, source="github:acme", event_id=key, type="t", subject_key=None,
                    at=at, by="github", body_digest=digest,
                )
            )  # fmt: skip

    assert claim("a" * 64, "1" * 64)
    assert not claim("b" * 64, "1" * 64)  # the same body under another id
    _downgrade(db, "0007")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT key FROM event_receipts")).scalars().all() == ["a" * 64]
        assert "body_digest" not in conn.execute(text("SELECT * FROM event_receipts")).keys()
    assert upgrade(db) == ("0007", head_revision())
    with pilot.read() as tx:
        assert tx.event_receipt("a" * 64).body_digest is None
    assert claim("c" * 64, "1" * 64)
    assert not claim("d" * 64, "1" * 64)


def test_facts_of_deployments_that_never_reached_their_environment_are_derived_again(pilot):
    """0010: a deployment rejected at its gate (no deploy step ran) counts nowhere."""
    from interlock.engine.metrics import MetricsRequest, delivery_report
    from tests.integration.test_metrics_db import CONFIG as METRICS_CONFIG
    from tests.integration.test_metrics_db import Records, at

    pilot.config(METRICS_CONFIG)
    with pilot.engine.db.transaction() as tx:
        r = Records(tx)
        good = r.deployment(r.release("alice", 1, ("api", "1.0", None)), "production", *GOOD)
        r.node(good, "api/roll-out", 2, 3)
        bad = r.deployment(r.release("alice", 4, ("api", "1.1", None)), "production", *BAD)
        r.node(bad, "api/roll-out", 5, 6, state="failed")
        rejected = r.deployment(r.release("bob", 7, ("api", "1.2", None)), "production", *BAD2)
        r.node(rejected, "gate/approval", 8, 9, executor="approval", state="failed")
        tx.rebuild_delivery()
    db = pilot.engine.db

    def change_failure_rate() -> float:
        request = MetricsRequest(since=at(0).isoformat(), until=at(24).isoformat())
        found = delivery_report(pilot.engine, request).as_dict()["metrics"]
        return next(m["value"] for m in found if m["key"] == "change_failure_rate")

    assert change_failure_rate() == 1 / 2  # 1.1 failed; 1.2 was rejected before any step
    _downgrade(db, "0007")  # as the facts were before: the rejection a failed deployment
    with db.engine.connect() as conn:
        states = conn.execute(text("SELECT state FROM delivery_facts ORDER BY deployment_id"))
        assert list(states.scalars()) == ["succeeded", "failed", "failed"]
    assert upgrade(db) == ("0007", head_revision())
    with db.engine.connect() as conn:
        states = conn.execute(text("SELECT state FROM delivery_facts ORDER BY deployment_id"))
        assert list(states.scalars()) == ["succeeded", "failed", "not_reached"]
    assert change_failure_rate() == 1 / 2


GOOD = ("succeeded", 2, 3)
BAD = ("failed", 5, 6)
BAD2 = ("failed", 8, 9)


def test_user_names_one_spelling_regardless_of_case_and_back(pilot):
    db = pilot.engine.db
    _downgrade(db, "0007")  # before the case-insensitive index
    insert = text(
        "INSERT INTO users (name, kind, disabled, created_at, created_by) "
        "VALUES (:name, 'user', false, 0, 'test')"
    )
    with db.engine.begin() as conn:
        for name in ("bob", "BOB"):
            conn.execute(insert, {"name": name})
    with pytest.raises(RuntimeError, match="differ only in case: bob; rename one"):
        upgrade(db)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE users SET name = 'bob2' WHERE name = 'BOB'"))
    assert upgrade(db)[1] == head_revision()
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(insert, {"name": "Bob"})
    _downgrade(db, "0007")
    with db.engine.begin() as conn:
        conn.execute(insert, {"name": "Bob"})  # two spellings are possible again

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

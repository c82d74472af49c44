"""The last administrator cannot remove itself: 409, and the answer says what to do."""

from __future__ import annotations

import threading

import pytest

from interlock.engine.core import Engine
from interlock.engine.identity import Identity
from interlock.errors import Conflict
from interlock.storage.db import Database
from tests.helpers import wait_for, write_config
from tests.support.api import served
from tests.support.postgres import pg_query

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: roll-out, run: "true"}]}
"""
CFG_ADMIN = CONFIG.replace("version: 1", "version: 1\nroles: {admin: [cfg]}")  # by config alone


def _refused(response) -> str:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert "interlock role add admin" in detail and "interlock token create" in detail
    return detail


def test_the_last_admin_keeps_its_role_and_its_last_token(pilot):
    with served(pilot, CONFIG) as api:
        root = api.admin()
        (token,) = root.get("/api/v1/users/root/tokens").json()["items"]
        assert "last" in _refused(root.delete("/api/v1/roles/admin/members/root"))
        _refused(root.delete(f"/api/v1/tokens/{token['id']}"))
        assert root.get("/api/v1/users/me").json()["roles"] == ["admin"]
        # a second admin who can sign in: now either may go
        ann = api.user("ann", roles=["admin"])
        assert root.delete("/api/v1/roles/admin/members/root").json()["changed"] is True
        (ann_token,) = ann.get("/api/v1/users/ann/tokens").json()["items"]
        _refused(ann.delete(f"/api/v1/tokens/{ann_token['id']}"))
        spare = ann.post("/api/v1/users/ann/tokens", json={"expires_in": "1h"}).json()
        assert ann.delete(f"/api/v1/tokens/{ann_token['id']}").status_code == 200
        _refused(api.client(spare["token"]).delete(f"/api/v1/tokens/{spare['id']}"))


def test_an_admin_who_cannot_sign_in_does_not_count(pilot):
    with served(pilot, CFG_ADMIN) as api:
        root = api.admin()
        api.identity.add_user(actor="test", name="cfg")  # an admin by config, with no token
        _refused(root.delete("/api/v1/roles/admin/members/root"))
        api.user("cfg")  # now it has one
        assert root.delete("/api/v1/roles/admin/members/root").status_code == 200


@pytest.mark.parametrize("change", ["token", "membership"])
def test_two_admins_removing_each_other_at_once_on_postgresql_leave_one(pg_database_url, change):
    """Both read "the other one stays" before either commits: exactly one may win."""
    import psycopg

    engine = Engine(Database(pg_database_url))
    identity = Identity(engine)
    tokens = {}
    for name in ("ann", "bob"):
        identity.add_user(actor="test", name=name)
        identity.set_membership(actor="test", kind="role", group="admin", user=name, member=True)
        tokens[name] = identity.create_token(actor="test", user=name, name="t", expires_in=None)[0]

    def remove(actor: str, other: str) -> None:
        if change == "token":
            identity.revoke_token(actor=actor, token_id=tokens[other].id)
        else:
            identity.set_membership(
                actor=actor, kind="role", group="admin", user=other, member=False
            )

    answers: dict[str, object] = {}

    def attempt(actor: str, other: str) -> None:
        try:
            remove(actor, other)
            answers[actor] = "done"
        except Conflict as exc:
            answers[actor] = exc

    # The rows both changes write are held by another transaction, so each change
    # gets as far as it can (its reads included) before either may commit.
    blocker = psycopg.connect(pg_database_url)
    blocker.execute("SELECT 1 FROM tokens FOR UPDATE")
    blocker.execute("SELECT 1 FROM memberships FOR UPDATE")
    threads = [
        threading.Thread(target=attempt, args=pair) for pair in (("ann", "bob"), ("bob", "ann"))
    ]
    try:
        for thread in threads:
            thread.start()
        wait_for(
            lambda: (
                pg_query(
                    pg_database_url,
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'",
                )[0][0]
                == 2
            ),
            message="both changes waiting on a lock",
        )
    finally:
        blocker.rollback()
        blocker.close()
        for thread in threads:
            thread.join(30)
    try:
        assert list(answers.values()).count("done") == 1, answers
        refused = [a for a in answers.values() if isinstance(a, Conflict)]
        assert len(refused) == 1, answers
        assert refused[0].http_status == 409 and "interlock role add admin" in refused[0].detail
        admins = {name for kind, group, name in identity.memberships() if group == "admin"}
        able = [n for n in admins if any(t.revoked_at is None for t in identity.tokens(n))]
        assert len(able) == 1, able
    finally:
        engine.db.dispose()


def test_a_reload_that_drops_the_last_admin_from_the_config_is_refused(pilot):
    with served(pilot, CFG_ADMIN) as api:
        cfg = api.user("cfg")  # an admin by the config alone, once root steps down
        assert cfg.delete("/api/v1/roles/admin/members/root").status_code == 200
        write_config(pilot.dir, CONFIG)
        refused = cfg.post("/api/v1/config/reload")
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        detail = refused.json()["detail"]
        assert "`roles: admin:` no longer names cfg" in detail
        assert "interlock role add admin" in detail and "version 1) stays" in detail
        assert cfg.get("/api/v1/config").json()["version"] == 1
        assert cfg.get("/api/v1/users/me").json()["roles"] == ["admin"]
        audit = cfg.get("/api/v1/audit", params={"action": "config.rejected"}).json()["items"]
        assert [e["actor"] for e in audit] == ["cfg"]
        # with another admin who can sign in, the same file loads
        api.user("ann", roles=["admin"])
        reloaded = cfg.post("/api/v1/config/reload")
        assert reloaded.status_code == 200 and reloaded.json()["version"] == 2, reloaded.text

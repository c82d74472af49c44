"""Identity is exact: one spelling per person, role and team; on_behalf_of names a person."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from interlock.errors import ConfigError
from interlock.spec.loader import parse_config
from tests.support.api import Api, served
from tests.support.server import INTERLOCK

CONFIG = """\
version: 1
teams: {payments: [alice]}
roles: {release-managers: [alice, bob]}
permissions:
  - {role: release-managers, allow: [approve]}
  - {user: ci, allow: [release.create]}
environments:
  - name: production
    gates: {before: [{approval: {rules: [{role: release-managers}]}}]}
services:
  api: {owner: payments, deploy: [{name: roll-out, run: "true"}]}
"""


@pytest.fixture
def api(pilot) -> Iterator[Api]:
    with served(pilot, CONFIG) as api:
        yield api


def test_on_behalf_of_names_an_existing_person_as_stored(pilot, api):
    ci = api.user("ci", kind="service")
    alice = api.user("alice")
    body = {"services": ["api@1.0.0"], "reason": "CI build"}
    for nobody in ("mallory", "", "ci"):  # unknown, empty, a service account
        refused = ci.post("/api/v1/releases", json={**body, "on_behalf_of": nobody})
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "on_behalf_of"
    assert api.admin().get("/api/v1/releases").json()["items"] == []
    made = ci.post("/api/v1/releases", json={**body, "on_behalf_of": "ALICE"})
    assert made.status_code == 201, made.text
    assert made.json()["on_behalf_of"] == "alice"
    # four-eyes holds: the person it was made for does not approve it
    own = alice.post(
        f"/api/v1/releases/{made.json()['id']}/approvals", json={"decision": "approve"}
    )
    assert own.status_code == 403, own.text
    assert (
        api.user("bob")
        .post(f"/api/v1/releases/{made.json()['id']}/approvals", json={"decision": "approve"})
        .status_code
        == 201
    )


def test_user_names_are_unique_regardless_of_case_in_api_cli_and_database(pilot, api):
    admin = api.admin()
    assert admin.post("/api/v1/users", json={"name": "alice"}).status_code == 201
    again = admin.post("/api/v1/users", json={"name": "Alice"})
    assert again.status_code == 409, again.text
    assert "'alice' already exists" in again.json()["detail"]
    for bad in ("al ice", "a" * 129, "-alice", "alice\u00e9"):
        assert admin.post("/api/v1/users", json={"name": bad}).status_code == 422, bad
    env = {**os.environ, "INTERLOCK_URL": api.url, "INTERLOCK_TOKEN": api.secrets["root"]}
    cli = subprocess.run(
        [INTERLOCK, "user", "add", "ALICE"], env=env, capture_output=True, text=True
    )
    assert cli.returncode == 6 and "'alice' already exists" in cli.stderr, cli.stderr
    cli = subprocess.run(
        [INTERLOCK, "token", "create", "--user", "nobody"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 5 and "no user named 'nobody'" in cli.stderr, cli.stderr
    # the database keeps one spelling whatever writes the row
    now = datetime.now(UTC)
    with pytest.raises(IntegrityError):
        pilot.engine.db.run(lambda tx: tx.add_user(name="ALICE", kind="user", at=now, by="t"))


def test_roles_and_teams_have_one_spelling_and_members_their_stored_name(pilot, api):
    admin = api.admin()
    api.user("dave")
    for path, field in (
        ("/api/v1/roles/Release-Managers/members/dave", "role"),
        ("/api/v1/roles/ADMIN/members/dave", "role"),
        ("/api/v1/teams/pay%20ments/members/dave", "team"),
    ):
        refused = admin.put(path)
        assert refused.status_code == 422, (path, refused.text)
        assert refused.json()["field"] == field
    assert admin.put("/api/v1/teams/payments/members/DAVE").status_code == 200
    stored = admin.get("/api/v1/memberships").json()["api"]
    assert {"kind": "team", "group": "payments", "user": "dave"} in stored
    me = api.client(api.secrets["dave"]).get("/api/v1/users/me").json()
    assert me["teams"] == ["payments"]


@pytest.mark.parametrize(
    ("snippet", "where"),
    [
        ("teams: {payments: [alice, 'bob smith']}", "teams.payments[1]"),
        ("roles: {sre: ['carol;rm']}", "roles.sre[0]"),
        ("roles: {SRE: [carol]}", "roles"),
        ("permissions: [{user: 'eve/..', allow: [read]}]", "permissions[0].user"),
    ],
)
def test_the_config_names_users_roles_and_teams_as_the_api_does(snippet, where):
    text = (
        "version: 1\nenvironments: [{name: staging}]\n"
        'services: {api: {deploy: [{name: a, run: "true"}]}}\n' + snippet + "\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("interlock.yaml"))
    (error,) = info.value.errors
    assert error["field"].startswith(where) and error["line"] == 4, error

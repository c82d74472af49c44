"""What an approval is bound to, and who may give one as roles and teams change by API.

An approval counts only for the content it was given for (services, versions,
digests, the release's config version), and only while its giver is in a group
a rule names with the approve permission. Memberships changed through the API
(or the CLI) are audited and take effect at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from interlock.cli.main import cli
from interlock.engine.approvals import content_hash
from interlock.engine.releases import start_scheduled
from interlock.errors import Forbidden, NotFound
from tests.helpers import wait_for
from tests.integration.test_approvals import approve, release, show, waiting_in_production
from tests.support.api import Api

CONFIG = """\
version: 1
teams: {payments: [dave, erin], qa: [quentin]}
roles:
  release-managers: [alice, bob]
  sre: [carol]
permissions:
  - {team: payments, allow: [release.create, release.cancel], services: owned}
  - {role: release-managers, allow: [approve]}
  - {role: sre, allow: [approve]}
  - {role: testers, allow: [approve]}
environments:
  - name: staging
  - name: production
    gates:
      before:
        - approval:
            rules:
              - {role: release-managers, count: 2}
              - {role: sre}
            expires: 1h
services:
  api:
    owner: payments
    deploy: [{name: roll-out, run: "echo {{ version }} >> deployed.log"}]
  search:
    owner: payments
    deploy: [{name: roll-out, run: "echo search {{ version }} >> deployed.log"}]
"""

# The sre rule becomes "someone from team qa"; the approve permission for qa's
# people comes from the role `testers`, which only the API hands out.
QA_GATE = CONFIG.replace("- {role: sre}", "- {team: qa}")


@pytest.fixture
def api(pilot) -> Iterator[Api]:
    path = pilot.config(CONFIG)
    harness = Api(pilot.engine, pilot.configs, path, driven=True).start()
    yield harness
    harness.stop()


def succeeded(client, release_id: int) -> dict:
    return wait_for(
        lambda: (r := show(client, release_id))["state"] == "succeeded" and r,
        message=f"release {release_id} to succeed",
    )


def audit(api: Api, action: str) -> list[dict[str, Any]]:
    found = api.admin().get("/api/v1/audit", params={"action": action, "limit": 1000})
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items


def missing(gate: dict) -> list[int]:
    return [rule["missing"] for rule in gate["rules"]]


def given_by(gate: dict, rule: int = 0) -> list[str]:
    return [g["by"] for g in gate["rules"][rule]["given_by"]]


def stored_hash(pilot, release_id: int) -> str:
    with pilot.engine.db.read() as tx:
        return content_hash(tx.get_release(release_id))


# -- 1. bound to the exact content ---------------------------------------------------


def change_version(pilot, release_id: int) -> None:
    with pilot.engine.db.engine.begin() as conn:
        conn.execute(
            text("UPDATE release_items SET version = :v WHERE release_id = :r"),
            {"v": "9.9.9", "r": release_id},
        )


def add_a_service(pilot, release_id: int) -> None:
    with pilot.engine.db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO release_items (release_id, position, service, version) "
                "VALUES (:r, 1, 'search', '1.0.0')"
            ),
            {"r": release_id},
        )


@pytest.mark.parametrize("change", [change_version, add_a_service], ids=["version", "services"])
def test_a_changed_version_or_service_set_voids_the_approvals_given(api, pilot, change):
    dave, alice, bob, carol = (api.user(n) for n in ("dave", "alice", "bob", "carol"))
    made = release(dave, "api@8.0.0")
    waiting_in_production(dave, made["id"])
    approve(alice, made["id"])
    approve(bob, made["id"])
    before = stored_hash(pilot, made["id"])
    assert missing(waiting_in_production(dave, made["id"])) == [0, 1]

    change(pilot, made["id"])  # the content changes under the approvals
    assert stored_hash(pilot, made["id"]) != before
    assert approve(carol, made["id"]).json()["gate_state"] == "waiting"
    gate = waiting_in_production(dave, made["id"])
    assert missing(gate) == [2, 0] and given_by(gate) == [] and given_by(gate, 1) == ["carol"]
    assert gate["rules"][0]["can_clear"] == ["alice", "bob"]  # they may approve it again
    given = audit(api, "approval.given")
    assert [(e["actor"], e["data"]["content_hash"]) for e in given] == [
        ("alice", before),
        ("bob", before),
        ("carol", stored_hash(pilot, made["id"])),
    ]
    # Approving the new content counts: alice's second approval is a new record.
    again = approve(alice, made["id"])
    assert again.status_code == 201 and again.json()["recorded"] is True
    assert again.json()["gate_state"] == "waiting"
    assert approve(bob, made["id"]).json()["gate_state"] == "succeeded"
    succeeded(dave, made["id"])


def test_a_changed_config_version_voids_the_approvals_given(api, pilot):
    dave, alice, bob, carol = (api.user(n) for n in ("dave", "alice", "bob", "carol"))
    made = release(dave, "api@8.1.0")
    assert made["config_version"] == 1
    waiting_in_production(dave, made["id"])
    approve(alice, made["id"])
    approve(bob, made["id"])
    pilot.config(CONFIG + "# v2\n")  # a config version 2 exists now
    with pilot.engine.db.engine.begin() as conn:
        conn.execute(
            text("UPDATE releases SET config_version = 2 WHERE id = :r"), {"r": made["id"]}
        )
    assert show(dave, made["id"])["config_version"] == 2
    assert approve(carol, made["id"]).json()["gate_state"] == "waiting"
    gate = waiting_in_production(dave, made["id"])
    assert missing(gate) == [2, 0] and given_by(gate) == []


def test_a_config_reload_keeps_the_approvals_and_the_rules_of_a_waiting_gate(api, pilot):
    # A release's plan and config version are its snapshot: a reload that changes
    # the gate's rules neither voids the approvals given nor moves the goalposts.
    dave, alice, bob, carol = (api.user(n) for n in ("dave", "alice", "bob", "carol"))
    made = release(dave, "api@8.2.0")
    waiting_in_production(dave, made["id"])
    approve(alice, made["id"])
    pilot.config(CONFIG.replace("{role: release-managers, count: 2}", "{role: sre, count: 3}"))
    assert [e["after"]["version"] for e in audit(api, "config.loaded")][-1] == 2
    gate = waiting_in_production(dave, made["id"])
    assert [r["rule"] for r in gate["rules"]] == ["2 from role release-managers", "1 from role sre"]
    assert given_by(gate) == ["alice"] and missing(gate) == [1, 1]
    assert show(dave, made["id"])["config_version"] == 1
    approve(bob, made["id"])
    assert approve(carol, made["id"]).json()["gate_state"] == "succeeded"
    assert succeeded(dave, made["id"])["config_version"] == 1
    # A release made after the reload follows the new rules.
    later = release(dave, "api@8.3.0")
    assert later["config_version"] == 2
    gate = waiting_in_production(dave, later["id"])
    assert [r["rule"] for r in gate["rules"]] == ["3 from role sre", "1 from role sre"]


def test_an_approval_given_ahead_of_time_counts_only_for_that_content(api, pilot):
    dave, alice, bob, carol = (api.user(n) for n in ("dave", "alice", "bob", "carol"))
    same = release(dave, "api@9.0.0", at="2099-01-01T00:00:00Z")
    changed = release(dave, "api@9.1.0", at="2099-01-01T00:00:00Z")
    for made in (same, changed):
        for person in (alice, bob, carol):
            response = approve(person, made["id"], environment="production")
            assert response.status_code == 201, response.text
            assert response.json()["gate_state"] == "not reached yet"
    approved_hash = stored_hash(pilot, changed["id"])
    change_version(pilot, changed["id"])  # what was approved is not what will ship

    start_scheduled(pilot.engine, same["id"])
    start_scheduled(pilot.engine, changed["id"])
    api.settle()  # started outside the API: the engine runs to idle here
    # The unchanged release goes through on the approvals given ahead of time ...
    done = succeeded(dave, same["id"])
    [production] = [d["id"] for d in done["deployments"] if d["environment"] == "production"]
    [cleared] = [
        e for e in audit(api, "gate.succeeded") if e["data"].get("deployment") == production
    ]
    assert cleared["reason"] or cleared["data"]
    # ... the changed one waits, as if nobody had approved it.
    gate = waiting_in_production(dave, changed["id"])
    assert missing(gate) == [2, 1]
    assert all(rule["given_by"] == [] for rule in gate["rules"])
    assert "2 from role release-managers (2 more)" in gate["waiting_for"]
    ahead = [e for e in audit(api, "approval.given") if e["object_id"] == str(changed["id"])]
    assert {e["data"]["content_hash"] for e in ahead} == {approved_hash}
    assert stored_hash(pilot, changed["id"]) != approved_hash
    [pending] = [p for p in alice.get("/api/v1/approvals/pending").json()["items"]]
    assert pending["release"] == changed["id"] and pending["items"] == ["api@9.9.9"]


# -- 2. roles and teams by API: audited, and in effect at once ----------------------


def test_a_role_given_by_api_lets_one_approve_and_taking_it_away_undoes_that(api):
    admin = api.admin()
    dave, alice, carol = api.user("dave"), api.user("alice"), api.user("carol")
    zoe = api.user("zoe")
    made = release(dave, "api@10.0.0")
    waiting_in_production(dave, made["id"])
    assert approve(zoe, made["id"]).status_code == 404  # no role: the release is not hers to see
    assert "zoe" not in waiting_in_production(dave, made["id"])["rules"][0]["can_clear"]

    added = admin.put("/api/v1/roles/release-managers/members/zoe")
    assert added.status_code == 200, added.text
    assert added.json() == {
        "kind": "role",
        "group": "release-managers",
        "user": "zoe",
        "member": True,
        "changed": True,
    }
    assert admin.put("/api/v1/roles/release-managers/members/zoe").json()["changed"] is False
    [event] = [e for e in audit(api, "role.member_added") if e["data"]["user"] == "zoe"]
    assert event["actor"] == "root" and event["object_type"] == "role"
    assert event["object_id"] == "release-managers"
    assert "zoe" in waiting_in_production(dave, made["id"])["rules"][0]["can_clear"]
    assert zoe.get("/api/v1/users/me").json()["roles"] == ["release-managers"]

    assert approve(zoe, made["id"]).status_code == 201
    approve(carol, made["id"])
    gate = waiting_in_production(dave, made["id"])
    assert given_by(gate) == ["zoe"] and missing(gate) == [1, 0]

    removed = admin.delete("/api/v1/roles/release-managers/members/zoe")
    assert removed.status_code == 200 and removed.json()["changed"] is True
    assert admin.delete("/api/v1/roles/release-managers/members/zoe").json()["changed"] is False
    [event] = audit(api, "role.member_removed")
    assert event["actor"] == "root" and event["object_id"] == "release-managers"
    assert event["data"] == {"user": "zoe"}
    gate = waiting_in_production(dave, made["id"])
    assert given_by(gate) == [] and missing(gate) == [2, 0]  # zoe's approval stops counting
    assert "zoe" not in gate["rules"][0]["can_clear"]
    assert approve(zoe, made["id"]).status_code == 404  # out of sight again
    assert approve(alice, made["id"]).json()["gate_state"] == "waiting"  # one short still
    assert zoe.get("/api/v1/users/me").json()["roles"] == []


def test_a_team_given_by_api_lets_one_approve_and_taking_it_away_undoes_that(api, pilot):
    pilot.config(QA_GATE)
    admin = api.admin()
    dave, alice, bob = api.user("dave"), api.user("alice"), api.user("bob")
    tina = api.user("tina", roles=["testers"])  # may approve, but is in no group a rule names
    made = release(dave, "api@11.0.0")
    waiting_in_production(dave, made["id"])
    refused = approve(tina, made["id"])
    assert refused.status_code == 403 and "1 from team qa" in refused.json()["detail"]

    assert admin.put("/api/v1/teams/qa/members/tina").json()["changed"] is True
    [event] = audit(api, "team.member_added")
    assert event["actor"] == "root" and event["object_type"] == "team"
    assert event["object_id"] == "qa" and event["data"] == {"user": "tina"}
    approve(alice, made["id"])
    assert approve(tina, made["id"]).json()["gate_state"] == "waiting"
    gate = waiting_in_production(dave, made["id"])
    assert given_by(gate, 1) == ["tina"] and missing(gate) == [1, 0]

    assert admin.delete("/api/v1/teams/qa/members/tina").json()["changed"] is True
    [event] = audit(api, "team.member_removed")
    assert event["actor"] == "root" and event["object_id"] == "qa"
    assert event["data"] == {"user": "tina"}
    gate = waiting_in_production(dave, made["id"])
    assert given_by(gate, 1) == [] and missing(gate) == [1, 1]
    assert approve(tina, made["id"]).status_code == 403
    assert approve(bob, made["id"]).json()["gate_state"] == "waiting"  # qa is still missing


def test_losing_the_approve_permission_by_api_stops_an_approval_counting(api, pilot):
    # tina stays in team qa (the group the rule names) but loses the role `testers`,
    # which gave her the approve permission: "to count, an approver needs the
    # approve permission".
    pilot.config(QA_GATE)
    admin = api.admin()
    dave, alice, bob = api.user("dave"), api.user("alice"), api.user("bob")
    tina = api.user("tina", roles=["testers"], teams=["qa"])
    made = release(dave, "api@12.0.0")
    waiting_in_production(dave, made["id"])
    approve(alice, made["id"])
    approve(tina, made["id"])
    assert missing(waiting_in_production(dave, made["id"])) == [1, 0]

    assert admin.delete("/api/v1/roles/testers/members/tina").json()["changed"] is True
    assert tina.get("/api/v1/users/me").json()["teams"] == ["qa"]
    gate = waiting_in_production(dave, made["id"])
    assert given_by(gate, 1) == [] and missing(gate) == [1, 1]
    assert "tina" not in gate["rules"][1]["can_clear"]
    assert approve(tina, made["id"]).status_code == 404  # no permission left: out of sight
    assert approve(bob, made["id"]).json()["gate_state"] == "waiting"


def test_a_disabled_approver_stops_counting(api, pilot):
    dave, alice, carol = api.user("dave"), api.user("alice"), api.user("carol")
    made = release(dave, "api@13.0.0")
    waiting_in_production(dave, made["id"])
    approve(alice, made["id"])
    approve(carol, made["id"])
    assert missing(waiting_in_production(dave, made["id"])) == [1, 0]
    with pilot.engine.db.transaction() as tx:
        tx.conn.execute(text("UPDATE users SET disabled = :d WHERE name = 'carol'"), {"d": True})
    gate = waiting_in_production(dave, made["id"])
    assert given_by(gate, 1) == [] and missing(gate) == [1, 1]


def test_config_members_and_api_members_add_up(api):
    admin = api.admin()
    dave, alice, bob, carol = (api.user(n) for n in ("dave", "alice", "bob", "carol"))
    # alice is a release manager by the config: the API cannot take that away.
    gone = admin.delete("/api/v1/roles/release-managers/members/alice")
    assert gone.status_code == 200 and gone.json()["changed"] is False
    assert audit(api, "role.member_removed") == []
    made = release(dave, "api@13.0.0")
    waiting_in_production(dave, made["id"])
    approve(alice, made["id"])
    approve(bob, made["id"])
    assert approve(carol, made["id"]).json()["gate_state"] == "succeeded"


def test_only_users_managers_change_memberships_and_only_of_known_users(api):
    admin, alice = api.admin(), api.user("alice")
    assert alice.put("/api/v1/roles/release-managers/members/alice").status_code == 403
    assert alice.delete("/api/v1/teams/payments/members/dave").status_code == 403
    unknown = admin.put("/api/v1/teams/qa/members/nobody")
    assert unknown.status_code == 404 and "nobody" in unknown.json()["detail"]
    assert all(e["actor"] == "test" for e in audit(api, "role.member_added"))
    assert audit(api, "team.member_added") == []


# -- 3. the CLI ----------------------------------------------------------------------


def test_role_and_team_add_and_remove_on_the_cli(api):
    admin = api.admin()
    dave, bob, carol = api.user("dave"), api.user("bob"), api.user("carol")
    zoe = api.user("zoe")
    runner = CliRunner()

    def run(*args: str, token: str | None = None) -> Any:
        env = {"INTERLOCK_URL": api.url, "INTERLOCK_TOKEN": token or api.secrets["root"]}
        return runner.invoke(cli, list(args), env=env)

    def memberships() -> list[tuple[str, str]]:
        found = admin.get("/api/v1/memberships").json()["api"]
        return sorted((m["kind"], m["group"]) for m in found if m["user"] == "zoe")

    added = run("role", "add", "release-managers", "zoe")
    assert added.exit_code == 0, added.output
    assert added.output.strip() == "zoe is in role release-managers"
    joined = run("team", "add", "qa", "zoe")
    assert joined.exit_code == 0 and joined.output.strip() == "zoe is in team qa", joined.output
    assert memberships() == [("role", "release-managers"), ("team", "qa")]
    me = zoe.get("/api/v1/users/me").json()
    assert me["roles"] == ["release-managers"] and me["teams"] == ["qa"]
    added_events = audit(api, "role.member_added") + audit(api, "team.member_added")
    assert sorted(
        (e["action"], e["actor"], e["object_id"], e["data"]["user"])
        for e in added_events
        if e["actor"] != "test"
    ) == [
        ("role.member_added", "root", "release-managers", "zoe"),
        ("team.member_added", "root", "qa", "zoe"),
    ]

    # In effect at once: zoe, a release manager by the CLI, approves.
    made = release(dave, "api@14.0.0")
    waiting_in_production(dave, made["id"])
    assert approve(zoe, made["id"]).status_code == 201
    assert given_by(waiting_in_production(dave, made["id"])) == ["zoe"]

    left = run("role", "remove", "release-managers", "zoe")
    assert left.exit_code == 0, left.output
    assert left.output.strip() == "zoe is no longer in role release-managers (by API)"
    out = run("team", "remove", "qa", "zoe")
    assert out.exit_code == 0, out.output
    assert out.output.strip() == "zoe is no longer in team qa (by API)"
    assert memberships() == []
    removed = audit(api, "role.member_removed") + audit(api, "team.member_removed")
    assert sorted(
        (e["action"], e["actor"], e["object_id"], e["data"]["user"]) for e in removed
    ) == [
        ("role.member_removed", "root", "release-managers", "zoe"),
        ("team.member_removed", "root", "qa", "zoe"),
    ]
    assert given_by(waiting_in_production(dave, made["id"])) == []  # no longer counts
    assert approve(zoe, made["id"]).status_code == 404
    approve(bob, made["id"])
    assert approve(carol, made["id"]).json()["gate_state"] == "waiting"

    # Errors reach the person at the terminal: an unknown user, and no permission.
    unknown = run("team", "add", "qa", "nobody")
    assert isinstance(unknown.exception, NotFound) and "nobody" in str(unknown.exception)
    forbidden = run("role", "add", "sre", "zoe", token=api.secrets["zoe"])
    assert isinstance(forbidden.exception, Forbidden)
    assert "users.manage" in str(forbidden.exception)
    assert memberships() == []

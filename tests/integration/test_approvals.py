"""Approval gates through the real API: who may sign off, how many, until when, on what."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from tests.support.api import Api

CONFIG = """\
version: 1
teams: {payments: [dave, erin], search: [sam]}
roles:
  release-managers: [alice, bob, rita]
  sre: [carol, rita]
permissions:
  - {team: payments, allow: [release.create, release.cancel], services: owned}
  - {team: search, allow: [release.create], services: owned}
  - {role: release-managers, allow: [approve]}
  - {role: sre, allow: [approve, lock, freeze.override]}
  - {user: ci, allow: [release.create]}
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
    owner: search
    deploy: [{name: roll-out, run: "echo search {{ version }} >> deployed.log"}]
"""


@pytest.fixture
def api(pilot) -> Iterator[Api]:
    path = pilot.config(CONFIG)
    harness = Api(pilot.engine, pilot.configs, path, driven=True).start()
    yield harness
    harness.stop()


def release(client, *refs: str, **extra) -> dict:
    response = client.post(
        "/api/v1/releases", json={"services": list(refs), "reason": "PAY-1", **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()


def show(client, release_id: int) -> dict:
    response = client.get(f"/api/v1/releases/{release_id}")
    assert response.status_code == 200, response.text
    return response.json()


def waiting_in_production(client, release_id: int) -> dict:
    """The production approval gate, which waits (the driven engine ran to idle)."""
    found = show(client, release_id)
    gates = [
        g
        for g in found["waiting_on"]
        if g["environment"] == "production" and g["state"] == "waiting"
    ]
    assert gates, found
    return gates[0]


def ended(client, release_id: int, state: str) -> dict:
    found = show(client, release_id)
    assert found["state"] == state, found
    return found


def approve(client, release_id: int, **body):
    return client.post(
        f"/api/v1/releases/{release_id}/approvals", json={"decision": "approve", **body}
    )


def test_rules_people_and_the_release_show(api, pilot):
    dave = api.user("dave")
    alice, bob, rita, _ = (api.user(n) for n in ("alice", "bob", "rita", "carol"))
    made = release(dave, "api@1.4.2")
    gate = waiting_in_production(dave, made["id"])
    [managers, sre] = gate["rules"]
    assert managers["rule"] == "2 from role release-managers" and managers["missing"] == 2
    assert managers["can_clear"] == ["alice", "bob", "rita"]
    assert sre["can_clear"] == ["carol", "rita"]

    forbidden = approve(dave, made["id"])  # the author, and not a release manager anyway
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"] == "application/problem+json"

    assert approve(alice, made["id"], comment="looked at the diff").json()["gate_state"] == (
        "waiting"
    )
    again = approve(alice, made["id"])  # approving twice is harmless
    assert again.status_code == 201 and again.json()["recorded"] is False
    assert approve(bob, made["id"]).json()["gate_state"] == "waiting"
    gate = waiting_in_production(dave, made["id"])
    assert gate["rules"][0]["missing"] == 0 and gate["rules"][1]["missing"] == 1
    assert [g["by"] for g in gate["rules"][0]["given_by"]] == ["alice", "bob"]
    assert gate["expires_at"] is not None
    assert approve(rita, made["id"]).json()["gate_state"] == "succeeded"
    done = ended(dave, made["id"], "succeeded")
    assert done["waiting_on"] == []
    audit = api.admin().get("/api/v1/audit", params={"limit": 1000}).json()["items"]
    actions = [e["action"] for e in audit]
    assert actions.count("approval.given") == 3 and actions.count("gate.succeeded") == 1
    given = [e for e in audit if e["action"] == "approval.given"]
    assert given[0]["actor"] == "alice" and given[0]["reason"] == "looked at the diff"


def test_a_person_counts_once_even_in_two_roles(api):
    dave, alice, rita = api.user("dave"), api.user("alice"), api.user("rita")
    made = release(dave, "api@1.0.0")
    waiting_in_production(dave, made["id"])
    approve(alice, made["id"])
    assert approve(rita, made["id"]).json()["gate_state"] == "waiting"
    gate = waiting_in_production(dave, made["id"])
    assert sum(r["missing"] for r in gate["rules"]) == 1


def test_separation_of_duties_through_a_service_account(api):
    ci = api.user("ci", kind="service")
    alice = api.user("alice")
    made = release(ci, "api@2.0.0", on_behalf_of="alice")
    assert made["on_behalf_of"] == "alice"
    waiting_in_production(alice, made["id"])
    refused = approve(alice, made["id"])
    assert refused.status_code == 403 and "someone else" in refused.json()["detail"]
    assert approve(ci, made["id"]).status_code == 403  # no approve permission
    bot = api.user("bot", kind="service", roles=["release-managers"])
    bot_approves = approve(bot, made["id"])  # the permission, but not a person
    assert bot_approves.status_code == 403
    assert "service account" in bot_approves.json()["detail"]
    person = api.user("erin", teams=[])
    assert (
        person.post(
            "/api/v1/releases",
            json={"services": ["api@2.0.1"], "reason": "x", "on_behalf_of": "dave"},
        ).status_code
        == 403
    )


def test_the_author_never_approves_their_own_release_even_with_the_permission(api):
    # pat may create api releases (team payments) and approve (a release manager).
    pat = api.user("pat", teams=["payments"], roles=["release-managers"])
    alice, bob, carol = api.user("alice"), api.user("bob"), api.user("carol")
    made = release(pat, "api@5.0.0")
    gate = waiting_in_production(pat, made["id"])
    assert "pat" not in gate["rules"][0]["can_clear"]  # who can clear it: never the author
    refused = approve(pat, made["id"])
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "someone else" in refused.json()["detail"]
    gate = waiting_in_production(pat, made["id"])
    assert gate["rules"][0]["missing"] == 2 and gate["rules"][0]["given_by"] == []
    # The other release managers' approvals count: the rule is about the author only.
    approve(alice, made["id"])
    approve(bob, made["id"])
    assert approve(carol, made["id"]).json()["gate_state"] == "succeeded"


def test_a_rejection_needs_a_comment_and_ends_the_deployment(api):
    dave, bob = api.user("dave"), api.user("bob")
    made = release(dave, "api@3.0.0")
    waiting_in_production(dave, made["id"])
    no_comment = bob.post(f"/api/v1/releases/{made['id']}/approvals", json={"decision": "reject"})
    assert no_comment.status_code == 422 and no_comment.json()["field"] == "comment"
    rejected = bob.post(
        f"/api/v1/releases/{made['id']}/approvals",
        json={"decision": "reject", "comment": "fees are wrong"},
    )
    assert rejected.json()["gate_state"] == "failed"
    done = ended(dave, made["id"], "failed")
    assert "rejected by bob: fees are wrong" in done["error"]


def test_approvals_can_be_given_ahead_of_time(api):
    dave, alice, bob, carol = (api.user(n) for n in ("dave", "alice", "bob", "carol"))
    made = release(dave, "api@3.1.0", at="2099-01-01T00:00:00Z")
    for person in (alice, bob, carol):
        response = approve(person, made["id"], environment="production")
        assert response.json()["gate_state"] == "not reached yet"
    pending = alice.get("/api/v1/approvals/pending").json()["items"]
    assert pending == []


def test_what_waits_on_me(api):
    dave, alice, carol = api.user("dave"), api.user("alice"), api.user("carol")
    made = release(dave, "api@4.0.0")
    waiting_in_production(dave, made["id"])
    [mine] = alice.get("/api/v1/approvals/pending").json()["items"]
    assert mine["release"] == made["id"] and mine["environment"] == "production"
    assert mine["rules"][0]["rule"] == "2 from role release-managers"
    assert carol.get("/api/v1/approvals/pending").json()["items"][0]["rules"][0]["rule"] == (
        "1 from role sre"
    )
    assert dave.get("/api/v1/approvals/pending").json()["items"] == []
    approve(alice, made["id"])
    assert alice.get("/api/v1/approvals/pending").json()["items"] == []


def test_twenty_approvers_at_once_clear_the_gate_exactly_once(api, pilot):
    pilot.config(
        CONFIG.replace(
            "- {role: release-managers, count: 2}\n              - {role: sre}",
            "- {role: release-managers, count: 2}",
        )
    )
    dave = api.user("dave")
    people = [api.user(f"rm{i}", roles=["release-managers"]) for i in range(20)]
    made = release(dave, "api@5.0.0")
    waiting_in_production(dave, made["id"])
    barrier = threading.Barrier(len(people))
    answers: list[int] = []

    def post(client):
        barrier.wait()
        answers.append(approve(client, made["id"]).status_code)

    threads = [threading.Thread(target=post, args=(c,)) for c in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(set(answers)) in ([201], [201, 409])
    done = ended(dave, made["id"], "succeeded")
    production = [d for d in done["deployments"] if d["environment"] == "production"]
    assert len(production) == 1
    audit = api.admin().get("/api/v1/audit", params={"limit": 1000}).json()["items"]
    cleared = [
        e
        for e in audit
        if e["action"] == "gate.succeeded" and e["data"].get("deployment") == production[0]["id"]
    ]
    assert len(cleared) == 1
    assert (pilot.dir / "deployed.log").read_text().split() == ["5.0.0", "5.0.0"]


def test_another_teams_release_is_invisible(api):
    dave, sam = api.user("dave"), api.user("sam")
    theirs = release(dave, "api@6.0.0")
    assert sam.get(f"/api/v1/releases/{theirs['id']}").status_code == 404
    assert (
        sam.post(
            f"/api/v1/releases/{theirs['id']}/approvals", json={"decision": "approve"}
        ).status_code
        == 404
    )
    assert sam.post(f"/api/v1/releases/{theirs['id']}/cancel", json={}).status_code == 404
    assert sam.get("/api/v1/releases").json()["items"] == []
    assert (
        sam.post("/api/v1/releases", json={"services": ["api@1"], "reason": "x"}).status_code == 403
    )
    mine = release(sam, "search@1.0.0")
    assert [r["id"] for r in sam.get("/api/v1/releases").json()["items"]] == [mine["id"]]


@pytest.fixture
def clocked(db, tmp_path) -> Iterator[tuple[Api, ManualClock, object]]:
    from tests.conftest import FAST
    from tests.integration.conftest import Pilot

    clock = ManualClock()
    engine = Engine(db, clock=clock, settings=type(FAST)(**FAST.__dict__))
    pilot = Pilot(engine, tmp_path)
    path = pilot.config(CONFIG)
    harness = Api(engine, pilot.configs, path, driven=True).start()
    yield harness, clock, pilot
    harness.stop()


def test_approvals_expire(clocked):
    api, clock, _ = clocked
    dave = api.user("dave")
    alice, bob, rita, carol = (api.user(n) for n in ("alice", "bob", "rita", "carol"))
    made = release(dave, "api@7.0.0")
    waiting_in_production(dave, made["id"])
    approve(alice, made["id"])
    clock.advance(2 * 3600)  # alice's approval (1h) no longer counts
    approve(bob, made["id"])
    assert approve(carol, made["id"]).json()["gate_state"] == "waiting"
    gate = waiting_in_production(dave, made["id"])
    assert [g["by"] for g in gate["rules"][0]["given_by"]] == ["bob"]
    assert approve(rita, made["id"]).json()["gate_state"] == "succeeded"


def test_an_approval_is_bound_to_the_exact_content(api, pilot):
    dave, alice, bob, carol = (api.user(n) for n in ("dave", "alice", "bob", "carol"))
    made = release(dave, "api@8.0.0")
    waiting_in_production(dave, made["id"])
    approve(alice, made["id"])
    approve(bob, made["id"])
    with pilot.engine.db.engine.begin() as conn:  # the content changes under the approvals
        conn.execute(
            text("UPDATE release_items SET digest = :d WHERE release_id = :r"),
            {"d": "sha256:" + "f" * 64, "r": made["id"]},
        )
    assert approve(carol, made["id"]).json()["gate_state"] == "waiting"
    gate = waiting_in_production(dave, made["id"])
    assert gate["rules"][0]["missing"] == 2


def test_tokens_bad_expired_revoked_are_refused_and_audited(clocked):
    api, clock, pilot = clocked
    admin = api.admin()
    dave = api.user("dave", expires_in=60)
    before = len(admin.get("/api/v1/releases").json()["items"])
    for client, why in (
        (api.client(None), "no token"),
        (api.client("ilk_nope"), "unknown"),
        (api.client("Basic abc"), "unknown"),
    ):
        response = client.post("/api/v1/releases", json={"services": ["api@1"], "reason": "x"})
        assert response.status_code == 401, why
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["status"] == 401
    clock.advance(120)
    expired = dave.post("/api/v1/releases", json={"services": ["api@1"], "reason": "x"})
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    erin = api.user("erin")
    token_id = erin.get("/api/v1/users/erin/tokens").json()["items"][0]["id"]
    assert admin.delete(f"/api/v1/tokens/{token_id}").status_code == 200
    revoked = erin.post("/api/v1/releases", json={"services": ["api@1"], "reason": "x"})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert len(admin.get("/api/v1/releases").json()["items"]) == before
    failures = admin.get("/api/v1/audit", params={"action": "auth.failed"}).json()["items"]
    # One event per caller and reason a minute: the second unknown token is only logged.
    assert [e["reason"] for e in failures] == [
        "no token",
        "unknown token",
        "expired token",
        "revoked token",
    ]
    assert all(api.secrets["dave"] not in str(e) for e in failures)
    assert api.client(None).get("/healthz").status_code == 200


def test_a_rejection_given_while_a_worker_holds_the_gate_still_fails_it(pilot):
    # The gate is claimed (running) when the rejection lands; the worker that then
    # records the gate's first look must see it, not leave the gate waiting.
    from interlock.engine.steps import claim, complete, execute, prepare

    path = pilot.config(CONFIG)
    harness = Api(pilot.engine, pilot.configs, path, workers=0).start()
    try:
        dave, alice = harness.user("dave"), harness.user("alice")
        made = release(dave, "api@8.9.0")
        engine = pilot.engine
        gate = False
        while not gate:  # staging's step, then production's approval gate
            claimed = engine.db.run(lambda tx: claim(tx, engine, "w"))
            assert claimed is not None
            job = prepare(engine, *claimed)
            result = execute(engine, job)
            gate = job.node.executor == "approval"
            if gate:
                answer = alice.post(
                    f"/api/v1/releases/{made['id']}/approvals",
                    json={"decision": "reject", "environment": "production", "comment": "no"},
                )
                assert answer.status_code == 201 and answer.json()["gate_state"] == "running"
            engine.db.run(lambda tx, j=job, r=result: complete(tx, engine, j, r))
        found = show(dave, made["id"])
        assert found["state"] == "failed" and "rejected by alice: no" in found["error"]
    finally:
        harness.stop()

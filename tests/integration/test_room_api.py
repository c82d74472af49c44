"""What the web UI asks before it draws buttons: abilities, and a plan with its durations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import wait_for
from tests.support.api import Api, served

CONFIG = """\
version: 1
teams: {payments: [dave], search: [sam]}
roles: {release-managers: [manny], sre: [olga]}
permissions:
  - {team: payments, allow: [release.create, release.cancel], services: owned}
  - {role: release-managers, allow: [approve]}
  - {role: sre, allow: [lock, rollback, incident.manage], environments: [production]}
  - {user: viv, allow: [read]}
environments:
  - name: staging
  - name: production
    gates:
      before:
        - approval: {rules: [{role: release-managers}]}
      after:
        - soak: {duration: 10m, checks: []}
services:
  api: {owner: payments, deploy: [{name: roll-out, run: "true"}]}
  search: {owner: search, deploy: [{name: roll-out, run: "true"}]}
"""


@pytest.fixture
def api(pilot) -> Iterator[Api]:
    with served(pilot, CONFIG, driven=True) as api:
        yield api


def test_abilities_say_what_each_person_may_do_and_the_api_agrees(api):
    dave = api.user("dave")
    olga = api.user("olga")
    viv = api.user("viv")

    mine = dave.get("/api/v1/users/me/abilities").json()
    assert mine["user"] == "dave" and mine["teams"] == ["payments"] and not mine["admin"]
    staging = mine["environments"]["staging"]
    assert staging["services"]["api"] == ["release.create", "release.cancel"]
    assert staging["services"]["search"] == []
    assert staging["everywhere"] == []  # his rule is scoped to his services
    # What the abilities say, the API does: he may plan api, not search.
    assert dave.post("/api/v1/plans", json={"services": ["api@1"]}).status_code == 200
    assert dave.post("/api/v1/plans", json={"services": ["search@1"]}).status_code == 403

    sre = olga.get("/api/v1/users/me/abilities").json()
    assert sre["environments"]["production"]["everywhere"] == [
        "rollback",
        "lock",
        "incident.manage",
    ]
    assert sre["environments"]["staging"]["everywhere"] == []
    assert sre["services"]["api"] == []  # no rule of hers reaches every environment
    assert sre["unscoped"] == []  # nor an action that names no environment
    locked = olga.post("/api/v1/environments/production/lock", json={"reason": "incident"})
    assert locked.status_code == 200, locked.text
    refused = olga.post("/api/v1/environments/staging/lock", json={"reason": "incident"})
    assert refused.status_code == 403

    reader = viv.get("/api/v1/users/me/abilities").json()
    assert all(
        not actions
        for env in reader["environments"].values()
        for actions in [env["everywhere"], env["unscoped"], *env["services"].values()]
    )
    assert reader["server"] == []

    root = api.admin().get("/api/v1/users/me/abilities").json()
    assert root["admin"] and "audit.read" in root["server"]
    assert "runbook.run" in root["unscoped"]
    assert api.client(None).get("/api/v1/users/me/abilities").status_code == 401


def test_a_plan_gives_each_environment_and_the_total_with_gates(api):
    admin = api.admin()
    manny = api.user("manny")
    planned = admin.post("/api/v1/plans", json={"services": ["api@1.0.0"]})
    assert planned.status_code == 200, planned.text
    body = planned.json()
    assert body["route"] == ["staging", "production"]
    production = body["estimate"]["environments"][1]
    gates = {g["type"]: g for g in production["gates"]}
    # No approval was ever given there: nothing to go on; the soak counts its 10 minutes.
    assert gates["approval"]["seconds"] is None
    assert gates["approval"]["basis"] == "no approval given here before"
    assert gates["soak"]["seconds"] == 600
    assert production["seconds"] == 600
    assert body["estimate"]["total_seconds"] == 600
    assert not body["estimate"]["known"]

    # One release through: its approval's wait becomes the history a plan counts.
    made = admin.post(
        "/api/v1/releases", json={"services": ["api@1.0.0"], "reason": "first", "until": "staging"}
    )
    assert made.status_code == 201
    second = admin.post("/api/v1/releases", json={"services": ["api@1.1.0"], "reason": "r"})
    rid = second.json()["id"]
    wait_for(
        lambda: any(
            g["state"] == "waiting"
            for g in admin.get(f"/api/v1/releases/{rid}").json()["waiting_on"]
        ),
        message="the approval gate to wait",
    )
    approved = manny.post(f"/api/v1/releases/{rid}/approvals", json={"decision": "approve"})
    assert approved.status_code == 201, approved.text
    wait_for(
        lambda: admin.get("/api/v1/estimates", params={"service": "api"}).json()["gates"],
        message="the approval to count as history",
    )
    again = admin.post("/api/v1/plans", json={"services": ["api@1.2.0"]}).json()
    production = again["estimate"]["environments"][1]
    approval = next(g for g in production["gates"] if g["type"] == "approval")
    assert approval["basis"] == "median approval wait from history"
    assert approval["seconds"] is not None and approval["seconds"] >= 0
    assert again["estimate"]["known"]  # the steps ran before
    assert again["estimate"]["total_seconds"] >= 600 + approval["seconds"]


def test_a_plan_is_refused_as_creating_would_be(api):
    admin = api.admin()
    blocked = admin.post(
        "/api/v1/artifacts",
        json={"service": "api", "version": "6.6.6", "digest": "sha256:" + "a" * 64},
    )
    assert blocked.status_code == 201, blocked.text
    assert (
        admin.post(
            "/api/v1/artifacts/api/6.6.6/block", json={"reason": "corrupts the ledger"}
        ).status_code
        == 200
    )
    refused = admin.post("/api/v1/plans", json={"services": ["api@6.6.6"]})
    assert refused.status_code == 409
    assert "corrupts the ledger" in refused.json()["detail"]
    empty = admin.post("/api/v1/plans", json={"services": []})
    assert empty.status_code == 422
    assert "services" in empty.text
    unknown = admin.post("/api/v1/plans", json={"services": ["nope@1"]})
    assert unknown.status_code in (404, 422)


def test_changes_answer_a_waiting_page_as_soon_as_something_changes(api):
    import threading
    import time

    viv = api.user("viv")
    admin = api.admin()
    head = viv.get("/api/v1/changes").json()["seq"]
    assert head > 0  # creating users was audited

    # Nothing changes: the long-poll answers after its wait, with the same number.
    started = time.monotonic()
    same = viv.get("/api/v1/changes", params={"since": head, "wait": 0.5}).json()
    assert same == {"seq": head} and time.monotonic() - started >= 0.5

    # A change while a page waits: the answer comes at once, past the number it had.
    answers: list[dict[str, int]] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            viv.get("/api/v1/changes", params={"since": head, "wait": 30}).json()
        )
    )
    started = time.monotonic()
    waiting.start()
    wait_for(lambda: api.state.change_watch._waiters, message="the page's long-poll to wait")
    locked = admin.post("/api/v1/environments/staging/lock", json={"reason": "change"})
    assert locked.status_code == 200
    waiting.join(10)
    assert answers and answers[0]["seq"] > head
    assert time.monotonic() - started < 5

    assert api.client(None).get("/api/v1/changes").status_code == 401
    bad = viv.get("/api/v1/changes", params={"since": -1})
    assert bad.status_code == 422 and "since" in bad.text


def test_a_stopping_server_answers_the_waiting_pages_at_once(api):
    import threading
    import time

    from interlock.api.routers.changes import watch_of

    viv = api.user("viv")
    head = viv.get("/api/v1/changes").json()["seq"]
    answers: list[dict[str, int]] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            viv.get("/api/v1/changes", params={"since": head, "wait": 30}).json()
        )
    )
    started = time.monotonic()
    waiting.start()
    watch = watch_of(api.state)
    wait_for(lambda: watch._waiters, message="the page's long-poll to wait")
    loop = watch._loop
    assert loop is not None
    loop.call_soon_threadsafe(watch.close)  # what a stopping server does
    waiting.join(10)
    assert answers == [{"seq": head}] and time.monotonic() - started < 5
    # Closed: the next call is answered at once too, and the commit hook is gone.
    assert viv.get("/api/v1/changes", params={"since": head, "wait": 30}).json() == {"seq": head}
    assert watch.changed not in api.engine.db._release_listeners

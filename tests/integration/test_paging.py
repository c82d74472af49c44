"""Every list of the API pages with a cursor and says when there is more (never a silent cap).

More rows than one page of each list, through the real API and the `interlock`
command; pages stay stable when rows are added between them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from interlock.cli.main import cli
from tests.support.api import Api, served, waiting_at_gate

SERVICES = [f"s{n}" for n in range(7)]
CONFIG = f"""\
version: 1
roles:
  approvers: [alice]
permissions:
  - {{user: dave, allow: [release.create]}}
  - {{user: alice, allow: [release.create]}}
  - {{role: approvers, allow: [approve]}}
environments:
  - name: production
    gates:
      before:
        - approval:
            rules: [{{role: approvers}}]
services:
{"".join(f'  {s}: {{deploy: [{{name: roll-out, run: "true"}}]}}{chr(10)}' for s in SERVICES)}
runbooks:
  flush:
    steps: [{{name: flush, run: "true"}}]
"""


@pytest.fixture
def api(pilot: Any) -> Iterator[Api]:
    with served(pilot, CONFIG, driven=True) as harness:
        yield harness


def pages(client: Any, path: str, limit: int, **params: Any) -> list[list[Any]]:
    """Every page of ``path``, following ``next_cursor``; the last one says there is no more."""
    found: list[list[Any]] = []
    cursor = None
    while True:
        asked = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=asked)
        assert response.status_code == 200, response.text
        body = response.json()
        found.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return found
        assert len(found) < 50, "the cursor does not move"


def waiting(api: Api, client: Any, service: str) -> int:
    """Release ``service`` to production; its id once the approval gate waits."""
    return waiting_at_gate(client, f"{service}@1", "OPS-1")


def run_cli(api: Api, user: str, *args: str) -> tuple[list[Any], str]:
    env = {"INTERLOCK_URL": api.url, "INTERLOCK_TOKEN": api.secrets[user]}
    result = CliRunner().invoke(cli, [*args, "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_pending_approvals_page_past_the_gates_you_cannot_clear(api):
    dave, alice = api.user("dave"), api.user("alice")
    own = waiting(api, alice, "s0")  # alice's own release: she may not approve it
    ids = [waiting(api, dave, s) for s in SERVICES[1:6]]

    first = alice.get("/api/v1/approvals/pending", params={"limit": 2}).json()
    assert [p["release"] for p in first["items"]] == ids[:2]  # oldest first, s0 passed over
    assert first["next_cursor"] is not None
    late = waiting(api, dave, "s6")  # a gate that starts waiting between two pages
    rest = []
    cursor = first["next_cursor"]
    while cursor is not None:
        page = alice.get("/api/v1/approvals/pending", params={"limit": 2, "cursor": cursor}).json()
        assert len(page["items"]) == 2 or page["next_cursor"] is None
        rest += [p["release"] for p in page["items"]]
        cursor = page["next_cursor"]
    assert rest == [*ids[2:], late]  # nothing twice, nothing left out
    assert own not in rest

    shown, more = run_cli(api, "alice", "approvals", "--limit", "4")
    assert [p["release"] for p in shown] == ids[:4]
    assert "more: add --cursor" in more and "--all" in more
    cursor_given = more.split("--cursor ")[1].split()[0]
    after, none = run_cli(api, "alice", "approvals", "--limit", "4", "--cursor", cursor_given)
    assert [p["release"] for p in after] == [ids[4], late] and none == ""
    every, none = run_cli(api, "alice", "approvals", "--all", "--limit", "2")
    assert [p["release"] for p in every] == [*ids, late] and none == ""

    # the default page (100) is bounded, and so is what one may ask for (500)
    assert len(alice.get("/api/v1/approvals/pending").json()["items"]) == 6
    too_many = alice.get("/api/v1/approvals/pending", params={"limit": 501})
    assert too_many.status_code == 422
    assert too_many.headers["content-type"] == "application/problem+json"
    assert "limit" in too_many.text


def test_incidents_artifacts_runs_users_and_tokens_page_to_the_end(api):
    admin = api.admin()
    for n in range(5):
        made = admin.post(
            "/api/v1/incidents", json={"environment": "production", "summary": f"outage {n}"}
        )
        assert made.status_code == 201, made.text
    for n in range(5):
        made = admin.post(
            "/api/v1/artifacts",
            json={"service": "s1", "version": f"1.{n}", "digest": "sha256:" + f"{n}" * 64},
        )
        assert made.status_code == 201, made.text
    for _ in range(3):
        made = admin.post("/api/v1/runbooks/flush/runs", json={"reason": "OPS-2"})
        assert made.status_code == 201, made.text
    for n in range(3):
        api.user(f"user{n}")
    for n in range(2):
        assert admin.post("/api/v1/users/root/tokens", json={"name": f"t{n}"}).status_code == 201

    incidents = pages(admin, "/api/v1/incidents", 2)
    assert [len(p) for p in incidents] == [2, 2, 1]
    summaries = [i["summary"] for p in incidents for i in p]
    assert summaries == [f"outage {n}" for n in (4, 3, 2, 1, 0)]  # newest first
    artifacts = pages(admin, "/api/v1/artifacts", 2, service="s1")
    assert [a["version"] for p in artifacts for a in p] == [f"1.{n}" for n in (4, 3, 2, 1, 0)]
    runs = pages(admin, "/api/v1/runbook-runs", 2)
    assert [len(p) for p in runs] == [2, 1]
    users = pages(admin, "/api/v1/users", 2)
    assert [u["name"] for p in users for u in p] == ["root", "user0", "user1", "user2"]
    tokens = pages(admin, "/api/v1/users/root/tokens", 2)
    assert [t["name"] for p in tokens for t in p] == ["test", "t0", "t1"]

    listed, more = run_cli(api, "root", "incident", "list", "--limit", "2")
    assert [i["summary"] for i in listed] == ["outage 4", "outage 3"] and "--cursor" in more
    listed, more = run_cli(api, "root", "incident", "list", "--limit", "2", "--all")
    assert len(listed) == 5 and more == ""
    listed, more = run_cli(api, "root", "artifact", "list", "--service", "s1", "--limit", "3")
    assert len(listed) == 3 and "--cursor" in more
    listed, more = run_cli(api, "root", "runbook", "runs", "--limit", "1", "--all")
    assert len(listed) == 3 and more == ""
    listed, more = run_cli(api, "root", "user", "list", "--limit", "3")
    assert len(listed) == 3 and "--cursor" in more
    listed, more = run_cli(api, "root", "token", "list", "--limit", "2", "--all")
    assert [t["name"] for t in listed] == ["test", "t0", "t1"]


def test_overrides_page_too(api, pilot):
    admin = api.admin()
    release = waiting(api, api.user("dave"), "s1")
    with pilot.engine.db.transaction() as tx:
        for n in range(3):
            tx.add_override(
                release_id=release,
                environment="production",
                gate="window",
                actor="carol",
                reason=f"hotfix {n}",
                at=pilot.engine.clock.now(),
            )
    overrides = pages(admin, "/api/v1/overrides", 2)
    assert [o["reason"] for p in overrides for o in p] == ["hotfix 2", "hotfix 1", "hotfix 0"]
    listed, more = run_cli(api, "root", "override", "list", "--limit", "2")
    assert len(listed) == 2 and "--cursor" in more

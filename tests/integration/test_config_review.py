"""Config changes are visible and reviewed: diff, reload with why, four-eyes approval."""

from __future__ import annotations

from tests.helpers import write_config
from tests.support.api import served

CONFIG = """\
version: 1
roles: {platform: [ann, bob]}
config_changes:
  review: production_gates
  approvers: {role: platform, count: 1}
environments:
  - name: staging
  - name: production
    production: true
    gates:
      before:
        - approval: {rules: [{role: platform}]}
services:
  api: {deploy: [{name: roll-out, run: "true"}]}
"""


def _audit(client, action: str) -> list[dict]:
    return client.get("/api/v1/audit", params={"action": action}).json()["items"]


def test_diff_then_a_reload_records_the_diff_who_and_why(pilot):
    with served(pilot, CONFIG) as api:
        root = api.admin()
        write_config(
            pilot.dir,
            CONFIG.replace(
                '  api: {deploy: [{name: roll-out, run: "true"}]}',
                '  api: {deploy: [{name: roll-out, run: "true"}, {name: smoke, run: "true"}]}\n'
                '  web: {deploy: [{name: roll-out, run: "true"}]}',
            ),
        )
        diff = root.get("/api/v1/config/diff").json()
        lines = {(c["change"], c["what"], c["name"]) for c in diff["changes"]}
        assert lines == {("added", "step", "api/deploy/smoke"), ("added", "service", "web")}
        assert diff["needs_approval"] == [] and diff["active_version"] == 1
        reloaded = root.post("/api/v1/config/reload", json={"reason": "OPS-7: add web"})
        assert reloaded.status_code == 200 and reloaded.json()["version"] == 2
        event = _audit(root, "config.loaded")[-1]
        assert event["actor"] == "root" and event["reason"] == "OPS-7: add web"
        assert {c["name"] for c in event["data"]["diff"]} == {"api/deploy/smoke", "web"}


def test_a_production_gate_change_waits_for_a_second_person(pilot):
    with served(pilot, CONFIG) as api:
        root, ann, eve = api.admin(), api.user("ann"), api.user("eve")
        write_config(pilot.dir, CONFIG.replace("{role: platform}]", "{role: platform, count: 2}]"))
        diff = root.get("/api/v1/config/diff").json()
        assert [c["name"] for c in diff["needs_approval"]] == ["production/before/approval"]
        refused = root.post("/api/v1/config/reload", json={})
        assert refused.status_code == 422 and "--reason" in refused.json()["detail"]
        asked = api.user("bob").post("/api/v1/config/reload", json={"reason": "two approvers"})
        assert asked.status_code == 403  # bob may not reload at all
        asked = root.post("/api/v1/config/reload", json={"reason": "SEC-1: two approvers"})
        assert asked.status_code == 202, asked.text
        pending = asked.json()["pending"]
        assert asked.json()["version"] == 1 and pending["state"] == "pending"
        assert root.get("/api/v1/config").json()["version"] == 1  # nothing applied yet
        own = root.post(f"/api/v1/config/changes/{pending['id']}/approve", json={})
        assert own.status_code == 403 and "four-eyes" in own.json()["detail"]
        stranger = eve.post(f"/api/v1/config/changes/{pending['id']}/approve", json={})
        assert stranger.status_code == 403 and "role 'platform'" in stranger.json()["detail"]
        done = ann.post(f"/api/v1/config/changes/{pending['id']}/approve", json={"comment": "ok"})
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "applied" and done.json()["version"] == 2
        assert root.get("/api/v1/config").json()["version"] == 2
        event = _audit(root, "config.loaded")[-1]
        assert event["actor"] == "root" and event["reason"] == "SEC-1: two approvers"
        assert event["data"]["approved_by"] == ["ann"]
        assert [c["name"] for c in event["data"]["diff"]] == ["production/before/approval"]
        assert [e["actor"] for e in _audit(root, "config.change_approved")] == ["ann"]


def test_switching_the_review_off_is_itself_reviewed_and_a_stale_change_is_refused(pilot):
    with served(pilot, CONFIG) as api:
        root, ann = api.admin(), api.user("ann")
        write_config(pilot.dir, CONFIG.replace("review: production_gates", "review: none"))
        first = root.post("/api/v1/config/reload", json={"reason": "turn it off"}).json()
        assert first["pending"]["diff"][0]["name"] == "config_changes"
        # meanwhile an unreviewed change goes in: the pending one was diffed against v1
        write_config(pilot.dir, CONFIG.replace("name: staging", "name: staging\n    vars: {a: 1}"))
        assert root.post("/api/v1/config/reload", json={}).json()["version"] == 2
        late = ann.post(f"/api/v1/config/changes/{first['pending']['id']}/approve", json={})
        assert late.json()["state"] == "superseded"
        assert root.get("/api/v1/config").json()["version"] == 2
        rejected = root.post(f"/api/v1/config/changes/{first['pending']['id']}/reject", json={})
        assert rejected.status_code == 409  # no longer pending


def test_a_server_start_with_a_reviewed_change_keeps_the_active_config(pilot):
    pilot.config(CONFIG)
    path = write_config(pilot.dir, CONFIG.replace("review: production_gates", "review: all"))
    stored, changed = pilot.configs.load_file(path, actor="server")  # what a start does
    assert (stored.version, changed) == (1, False)
    [pending] = pilot.configs.changes()
    assert pending.state == "pending" and pending.requested_by == "server"
    assert pilot.configs.active().config.config_changes.review == "production_gates"

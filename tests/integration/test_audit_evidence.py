"""Evidence for auditors from real releases: two approvers, break glass, a failure, a rollback.

Every column of every change is checked, in JSON, CSV and HTML, and each
change's cited events are the chain's own (sequence and hash).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from interlock.engine import views
from interlock.engine.checkpoints import publish
from tests.helpers import wait_for
from tests.integration.test_approvals import approve, release, show
from tests.support.api import Api

DIGEST_1 = "sha256:" + "1" * 64
DIGEST_2 = "sha256:" + "2" * 64
DIGEST_3 = "sha256:" + "3" * 64
COMMIT_1 = "a" * 40
COMMIT_3 = "c" * 40
COMMIT_2 = "b" * 40


def _config() -> str:
    frozen_until = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    return f"""\
version: 1
roles:
  release-managers: [alice, bob]
  sre: [carol]
  auditors: [audrey]
permissions:
  - {{everyone: true, allow: [release.create, read]}}
  - {{role: release-managers, allow: [approve]}}
  - {{role: sre, allow: [freeze.override]}}
  - {{role: auditors, allow: [audit.read, read]}}
environments:
  - name: staging
  - name: production
    production: true
    on_failure: rollback
    gates:
      before:
        - approval:
            rules: [{{role: release-managers, count: 2}}]
        - window:
            timezone: UTC
            freeze: [{{from: 2020-01-01, to: {frozen_until}, reason: change freeze}}]
      after:
        - check: {{run: "true", interval: 0.1, timeout: 30s}}
services:
  api:
    deploy:
      - name: roll-out
        run: "test {{{{ environment }}}}-{{{{ version }}}} != production-2.0.0"
"""


@pytest.fixture
def api(pilot, tmp_path) -> Iterator[Api]:
    pilot.engine.settings.audit_checkpoints = tmp_path / "checkpoints"
    path = pilot.config(_config())
    harness = Api(pilot.engine, pilot.configs, path, driven=True).start()
    yield harness
    harness.stop()


def _through_production(api: Api, version: str, digest: str, commit: str, reason: str) -> int:
    """Register, release, approve (alice and bob), break glass (carol); wait for the end."""
    admin, dave = api.admin(), api.user("dave")
    registered = admin.post(
        "/api/v1/artifacts",
        json={"service": "api", "version": version, "digest": digest, "commit": commit},
    )
    assert registered.status_code == 201, registered.text
    made = release(dave, f"api@{version}", reason=reason)
    wait_for(
        lambda: any(
            d["environment"] == "production" for d in show(dave, made["id"])["deployments"]
        ),
        message="the production deployment",
    )
    for name in ("alice", "bob"):
        assert approve(api.user(name), made["id"], comment=f"{name} ok").status_code == 201
    broke = api.user("carol").post(
        f"/api/v1/releases/{made['id']}/overrides",
        json={"environment": "production", "reason": "hotfix during the freeze"},
    )
    assert broke.status_code == 201, broke.text
    wait_for(
        lambda: show(dave, made["id"])["state"] in ("succeeded", "failed"),
        message="the release to end",
    )
    return int(made["id"])


def test_evidence_of_production_changes(api, pilot):
    first = _through_production(api, "1.0.0", DIGEST_1, COMMIT_1, "PAY-1: first cut")
    audrey = api.user("audrey")
    [made] = audrey.get("/api/v1/overrides").json()["items"]
    assert audrey.post(
        f"/api/v1/overrides/{made['id']}/review", json={"comment": "was needed"}
    ).status_code in (200, 201)
    second = _through_production(api, "2.0.0", DIGEST_2, COMMIT_2, "PAY-2 bigger change")
    # Once, by a bug or an older version, the author's approval was recorded: it is flagged.
    with pilot.engine.db.transaction() as tx:
        tx.audit(
            at=pilot.engine.clock.now(),
            actor="dave",
            action="approval.given",
            object_type="release",
            object_id=second,
            data={"environment": "production", "gate": "approval"},
        )
    third = _through_production(api, "1.0.1", DIGEST_3, COMMIT_3, "PAY-3 small fix")
    admin = api.admin()
    back = admin.post(
        "/api/v1/rollbacks",
        json={"service": "api", "environment": "production", "to": "1.0.0", "reason": "OPS-9 slow"},
    )
    assert back.status_code == 201, back.text
    rollback = back.json()["release"]
    wait_for(
        lambda: show(admin, rollback)["state"] in ("succeeded", "failed"),
        message="the rollback to end",
    )
    published = publish(pilot.engine)

    got = audrey.get("/api/v1/audit/evidence", params={"since": "1d", "until": "now"})
    assert got.status_code == 200, got.text
    doc = got.json()
    assert doc["environments"] == ["production"]
    assert doc["generated_by"] == "audrey"
    assert doc["chain"]["verified"] is True
    assert doc["chain"]["checkpoint"]["checkpoint"] == str(published.checkpoint)
    assert doc["chain"]["head"] == str(views.audit_checkpoint(pilot.engine))
    assert got.headers["X-Interlock-Findings"] == "3"
    one, two, three, four = doc["changes"]

    assert (one["release"], one["kind"], one["environment"]) == (first, "deploy", "production")
    assert one["reason"] == "PAY-1: first cut" and one["tickets"] == ["PAY-1"]
    assert one["author"] == "dave" and one["on_behalf_of"] is None
    assert one["artifacts"] == [
        {"service": "api", "version": "1.0.0", "digest": DIGEST_1, "commit": COMMIT_1}
    ]
    assert [(g["key"], g["kind"], g["state"]) for g in one["gates"]] == [
        ("gate/approval", "approval", "succeeded"),
        ("gate/window", "window", "succeeded"),
        ("gate/check", "check", "succeeded"),
    ]
    assert [(a["by"], a["decision"], a["comment"]) for a in one["approvals"]] == [
        ("alice", "approve", "alice ok"),
        ("bob", "approve", "bob ok"),
    ]
    assert one["outcome"] == "succeeded" and one["error"] is None
    assert one["rolled_back"] == []
    [override] = one["overrides"]
    assert (override["by"], override["reason"]) == ("carol", "hotfix during the freeze")
    assert (override["reviewed_by"], override["review"]) == ("audrey", "was needed")
    assert one["findings"] == []
    assert one["started_at"] and one["finished_at"] and one["started_at"] <= one["finished_at"]

    assert (two["release"], two["reason"], two["tickets"]) == (
        second,
        "PAY-2 bigger change",
        ["PAY-2"],
    )
    assert two["artifacts"][0]["digest"] == DIGEST_2
    assert two["artifacts"][0]["commit"] == COMMIT_2
    assert two["outcome"] == "rolled_back" and "roll-out" in two["error"]
    assert two["rolled_back"] == ["api 2.0.0 -> 1.0.0"]
    assert [g["state"] for g in two["gates"]] == ["succeeded", "succeeded", "skipped"]
    assert [a["by"] for a in two["approvals"]] == ["alice", "bob", "dave"]
    assert two["overrides"][0]["reviewed_by"] is None
    assert two["findings"] == [
        "approved by its own author, dave",
        f"break-glass override {two['overrides'][0]['id']} by carol is not reviewed",
    ]

    assert (three["release"], three["outcome"], three["tickets"]) == (third, "succeeded", ["PAY-3"])
    assert three["findings"] == [
        f"break-glass override {three['overrides'][0]['id']} by carol is not reviewed"
    ]
    # A rollback by hand is a change of its own: no approval asked, so none is missing.
    assert (four["release"], four["kind"], four["author"]) == (rollback, "rollback", "root")
    assert (four["reason"], four["tickets"], four["outcome"]) == (
        "OPS-9 slow",
        ["OPS-9"],
        "succeeded",
    )
    assert four["artifacts"] == [
        {"service": "api", "version": "1.0.0", "digest": DIGEST_1, "commit": COMMIT_1}
    ]
    assert [(g["kind"], g["state"]) for g in four["gates"]] == [("check", "succeeded")]
    assert four["approvals"] == [] and four["overrides"] == [] and four["findings"] == []
    assert {"rollback.created", "service.deployed"} <= {e["action"] for e in four["events"]}

    # Every cited event is the chain's own, with its hash.
    chain = {e.seq: e for e in views.audit_events(pilot.engine, limit=10_000)}
    for change in (one, two, three):
        actions = {e["action"] for e in change["events"]}
        assert {"release.created", "approval.given", "window.overridden"} <= actions
        assert {"deployment.running", "gate.succeeded", "artifact.registered"} <= actions
    cited = [e for change in doc["changes"] for e in change["events"]]
    assert cited and all(chain[e["seq"]].hash == e["hash"] for e in cited)
    assert "override.reviewed" in {e["action"] for e in one["events"]}
    assert "service.rolled_back" in {e["action"] for e in two["events"]}

    as_csv = audrey.get("/api/v1/audit/evidence", params={"since": "1d", "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["release"] for r in rows] == [str(first), str(second), str(third), str(rollback)]
    assert rows[0]["approvals"].startswith("approve by alice at ")
    assert rows[0]["artifacts"] == f"api 1.0.0 {DIGEST_1} {COMMIT_1}"
    assert rows[1]["outcome"].startswith("rolled_back: ")
    assert "NOT REVIEWED" in rows[1]["overrides"]
    assert {r["chain_head"] for r in rows} == {doc["chain"]["head"]}
    assert {r["checkpoint"] for r in rows} == {str(published.checkpoint)}

    page = audrey.get("/api/v1/audit/evidence", params={"since": "1d", "format": "html"}).text
    assert page.startswith("<!DOCTYPE html>") and "approved by its own author, dave" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert str(published.checkpoint) in page

    # Another period, or an environment with no changes, holds none.
    before = audrey.get(
        "/api/v1/audit/evidence", params={"since": "2020-01-01", "until": "2020-02-01"}
    )
    assert before.json()["changes"] == []
    staging = audrey.get("/api/v1/audit/evidence", params={"since": "1d", "env": "staging"}).json()
    assert [c["release"] for c in staging["changes"]] == [first, second, third]


def test_evidence_needs_audit_read_and_says_what_is_wrong(api):
    assert api.user("dave").get("/api/v1/audit/evidence").status_code == 403
    audrey = api.user("audrey")
    bad = audrey.get("/api/v1/audit/evidence", params={"since": "yesterday-ish"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert "since" in bad.text
    unknown = audrey.get("/api/v1/audit/evidence", params={"env": "prod"})
    assert unknown.status_code == 422 and "no environment named 'prod'" in unknown.text
    too_long_ago = audrey.get("/api/v1/audit/evidence", params={"since": "99999999999999d"})
    assert too_long_ago.status_code == 422, too_long_ago.text
    assert too_long_ago.json()["errors"][0]["field"] == "since"
    backwards = audrey.get(
        "/api/v1/audit/evidence", params={"since": "2026-02-01", "until": "2026-01-01"}
    )
    assert backwards.status_code == 422


def test_evidence_of_a_broken_chain_says_so(api, pilot):
    audrey = api.user("audrey")
    with pilot.engine.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    got = audrey.get("/api/v1/audit/evidence")
    assert got.headers["X-Interlock-Chain-Verified"] == "false"
    chain = got.json()["chain"]
    assert chain["verified"] is False and chain["problems"][0]["seq"] == 2
    page = audrey.get("/api/v1/audit/evidence", params={"format": "html"}).text
    assert "BROKEN: event 2 was changed after it was written" in page

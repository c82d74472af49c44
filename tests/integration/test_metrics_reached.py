"""What a deployment that never reached its environment counts for, through the real engine.

A release rejected at production's approval gate deploys nothing: it is no
change failure, not in any denominator, and no incident can be blamed on it.
An incident opened while a release waits at the gate is about what already
ran there. The expected figures are worked out by hand in each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from interlock.engine import incidents
from interlock.engine.metrics import MetricsRequest, delivery_report
from tests.helpers import wait_for
from tests.integration.test_metrics_db import delivery_snapshot, rebuilt_snapshot
from tests.support.api import Api, served, waiting_at_gate

CONFIG = """\
version: 1
roles:
  approvers: [alice]
permissions:
  - {user: dave, allow: [release.create]}
  - {role: approvers, allow: [approve]}
environments:
  - name: production
    production: true
    on_failure: fail
    gates:
      before:
        - approval:
            rules: [{role: approvers}]
services:
  api:
    deploy:
      - name: roll-out
        run: "test {{ version }} != 2 && test {{ version }} != 4 && test {{ version }} != 6"
"""


@pytest.fixture
def api(pilot: Any) -> Iterator[Api]:
    with served(pilot, CONFIG, driven=True) as harness:
        yield harness


def waiting(client: Any, ref: str) -> int:
    """Release ``ref``; its id once production's approval gate waits."""
    return waiting_at_gate(client, ref, "PAY-1")


def decide(client: Any, release_id: int, decision: str) -> None:
    response = client.post(
        f"/api/v1/releases/{release_id}/approvals",
        json={"decision": decision, "comment": "read the diff"},
    )
    assert response.status_code == 201, response.text


def ended(client: Any, release_id: int) -> str:
    def probe() -> str | None:
        state = client.get(f"/api/v1/releases/{release_id}").json()["state"]
        return str(state) if state in ("succeeded", "failed", "cancelled") else None

    return wait_for(probe, timeout=30, message=f"release {release_id} to end")


def metrics(pilot: Any) -> dict[str, Any]:
    found = delivery_report(pilot.engine, MetricsRequest()).as_dict()
    return {m["key"]: m for m in found["metrics"]}


def test_a_rejected_approval_deploys_nothing_and_is_no_change_failure(api, pilot):
    dave, alice = api.user("dave"), api.user("alice")
    outcomes = []
    for version in range(1, 7):  # 2, 4 and 6 fail in their step; 1, 3 and 5 succeed
        release_id = waiting(dave, f"api@{version}")
        decide(alice, release_id, "approve")
        outcomes.append(ended(dave, release_id))
    assert outcomes == ["succeeded", "failed"] * 3
    before = metrics(pilot)["change_failure_rate"]
    assert before["value"] == pytest.approx(3 / 6)  # 50 %

    rejected = waiting(dave, "api@7")
    decide(alice, rejected, "reject")
    assert ended(dave, rejected) == "failed"

    m = metrics(pilot)
    cfr = m["change_failure_rate"]
    # Unchanged: 3 failures of the 6 deployments that reached production (it was 4 / 7).
    assert cfr["value"] == pytest.approx(3 / 6)
    assert cfr["details"]["deployments"] == 6
    assert cfr["details"]["failed_or_rolled_back"] == 3
    assert "reached the environment" in cfr["definition"]
    # 3 and 5 started while the incidents of 2 and 4 were open; 7 started during 6's
    # but changed nothing.
    assert m["rework_rate"]["n"] == 6 and m["rework_rate"]["details"]["rework"] == 2
    assert m["release_concentration"]["n"] == 6  # dave ran the 6 releases that reached it
    assert m["deployment_frequency"]["n"] == 3
    # the approval it waited for was still decided: its wait counts
    assert m["approval_wait_p50"]["n"] == 7
    # no incident for the rejection: those of 2, 4 and 6 only (6's is still open)
    opened = incidents.incidents(pilot.engine)
    assert len(opened) == 3 and [i.state for i in opened].count("open") == 1
    assert delivery_snapshot(pilot) == rebuilt_snapshot(pilot)
    scraped = api.admin().get("/metrics").text
    outcomes = {
        line.split('outcome="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in scraped.splitlines()
        if line.startswith("interlock_deployments_total{")
    }
    assert outcomes == {"succeeded": 3, "failed": 3, "not_reached": 1}


def test_an_incident_opened_while_a_release_waits_is_about_what_already_ran(api, pilot):
    dave, alice = api.user("dave"), api.user("alice")
    first = waiting(dave, "api@1")
    decide(alice, first, "approve")
    assert ended(dave, first) == "succeeded"
    second = waiting(dave, "api@3")  # waits at the gate: nothing of it has run

    opened = incidents.open_incident(
        pilot.engine, actor="carol", service="api", environment="production", summary="5xx up"
    )
    shown = dave.get(f"/api/v1/releases/{first}").json()
    [ran] = [d["id"] for d in shown["deployments"] if d["environment"] == "production"]
    assert opened.deployment_id == ran and opened.release_id == first

    decide(alice, second, "approve")
    assert ended(dave, second) == "succeeded"
    [after] = incidents.incidents(pilot.engine)
    assert after.state == "resolved" and after.resolution == "fix"  # api@3 fixed it
    shown = dave.get(f"/api/v1/releases/{second}").json()
    [fix] = [d["id"] for d in shown["deployments"] if d["environment"] == "production"]
    assert after.resolved_by_deployment == fix

    cfr = metrics(pilot)["change_failure_rate"]
    # api@1 is named by the incident: 1 change failure of 2 deployments
    assert cfr["value"] == pytest.approx(1 / 2)
    assert cfr["details"]["named_by_incident"] == 1
    assert delivery_snapshot(pilot) == rebuilt_snapshot(pilot)

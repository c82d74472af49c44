"""`interlock plan` for a train: the graph, what runs in parallel, gates, approvers, estimates."""

from __future__ import annotations

import json

from tests.acceptance.conftest import one_backend
from tests.helpers import write_config
from tests.support.server import Server

CONFIG = """\
version: 1
roles: {release-managers: [alice, bob]}
environments:
  - name: staging
  - name: production
    gates:
      before:
        - approval: {rules: [{role: release-managers, count: 2}]}
services:
  db: {deploy: [{name: migrate, run: "sleep 0.2"}]}
  api: {depends_on: [db], deploy: [{name: roll-out, run: "sleep 0.2"}]}
  worker: {depends_on: [db], deploy: [{name: roll-out, run: "sleep 0.2"}]}
  web: {depends_on: [api, worker], deploy: [{name: roll-out, run: "sleep 0.2"}]}
"""


@one_backend  # the plan's text: no database behind it (estimates: both)
def test_plan_shows_the_graph_and_who_approves(project, server):
    write_config(project, CONFIG)
    planned = server.cli("plan", "web@2", "api@2", "worker@2", "db@2", "--no-estimate")
    assert planned.returncode == 0, planned.stderr
    text = planned.stdout
    staging = text.split("2. production")[0]
    assert "wave 1\n      db/migrate" in staging
    assert "wave 2 in parallel:\n      api/roll-out" in staging and "worker/roll-out" in staging
    assert "wave 3\n      web/roll-out" in staging
    production = text.split("2. production")[1]
    assert "gate approval: approval: 2 from role release-managers (alice, bob)" in production
    as_json = json.loads(
        server.cli(
            "plan", "web@2", "api@2", "worker@2", "db@2", "--no-estimate", "--format", "json"
        ).stdout
    )
    waves = {n["key"]: n["wave"] for n in as_json["environments"][0]["nodes"]}
    assert waves == {"db/migrate": 1, "api/roll-out": 2, "worker/roll-out": 2, "web/roll-out": 3}


def test_plan_estimates_from_past_runs(project, server):
    write_config(project, CONFIG)
    no_server = server.cli("plan", "db@1")
    assert no_server.returncode == 0 and "no expected durations" in no_server.stdout
    server.start()
    # Set-up, through the API: a past run of each step.
    release_id = server.create("db@1", "api@1", "worker@1", "web@1", reason="r", until="staging")
    assert server.wait_release(release_id)["state"] == "succeeded"
    planned = server.cli("plan", "web@2", "api@2", "worker@2", "db@2")
    assert "expected durations: medians of past runs (4 steps)" in planned.stdout
    assert "1. staging  (expected " in planned.stdout and "usually " in planned.stdout
    as_json = json.loads(
        server.cli("plan", "db@2", "api@2", "worker@2", "web@2", "--format", "json").stdout
    )
    expected = as_json["environments"][0]["expected_seconds"]
    assert 0.6 <= expected < 3  # db, then api and worker side by side, then web


def test_plan_without_a_server_says_which_url_and_why(project):
    """`plan` works offline (exit 0); the note names the whole URL it tried and the reason."""
    write_config(project, CONFIG)
    planned = Server(project).cli("plan", "db@1", INTERLOCK_URL="http://127.0.0.1:9")
    assert planned.returncode == 0, planned.stderr
    assert (
        "no expected durations (cannot reach the Interlock server at http://127.0.0.1:9: "
        "nothing is listening)\n" in planned.stdout
    ), planned.stdout
    assert "1. staging" in planned.stdout


GATED = """\
version: 1
roles: {release-managers: [alice]}
environments:
  - name: staging
    gates:
      after:
        - soak: {duration: 10m}
  - name: production
    gates:
      before:
        - approval: {rules: [{role: release-managers}]}
services:
  db: {deploy: [{name: migrate, run: "true"}]}
"""


@one_backend  # the plan's text: no database behind it (estimates: both)
def test_plan_counts_the_gates_in_each_environment_and_the_total(project, server):
    write_config(project, GATED)
    server.start()
    planned = server.cli("plan", "db@1")
    assert planned.returncode == 0, planned.stderr
    text = planned.stdout
    # No run yet: the soak still counts its ten minutes; the approval has no history.
    assert "expected total: 10m" in text
    assert "1. staging  (expected 10m, 1 steps never ran before)" in text
    assert "expected wait 10m (the soak's duration)" in text
    assert "expected wait unknown (no approval given here before)" in text
    as_json = json.loads(server.cli("plan", "db@1", "--format", "json").stdout)
    assert as_json["expected_total_seconds"] == 600
    gates = as_json["environments"][1]["gates_expected"]
    assert gates == [
        {
            "key": "gate/approval",
            "type": "approval",
            "seconds": None,
            "basis": "no approval given here before",
        }
    ]

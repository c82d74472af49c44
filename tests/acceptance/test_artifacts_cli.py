"""Artifacts from the command line: pinned by digest, immutable, and drift shown in status."""

from __future__ import annotations

import httpx

from tests.acceptance.conftest import one_backend
from tests.helpers import write_config

# the CLI's artifact commands (artifacts on both: tests/integration)
pytestmark = one_backend

CONFIG = """\
version: 1
environments:
  - name: production
    production: true
services:
  api:
    deploy:
      - {name: roll-out, run: "true"}
"""

BUILT = "sha256:" + "1a" * 32
OTHER = "sha256:" + "2b" * 32


def test_a_version_is_immutable_and_drift_shows_in_status(project, server):
    write_config(project, CONFIG)
    server.start()
    registered = server.cli(
        "artifact", "register", "api", "1.0.0", "--digest", BUILT, "--commit", "c0ffee1"
    )
    assert registered.returncode == 0, registered.stderr
    # The same build again is the same artifact; another digest for the version is refused.
    assert server.cli("artifact", "register", "api", "1.0.0", "--digest", BUILT).returncode == 0
    refused = server.cli("artifact", "register", "api", "1.0.0", "--digest", OTHER)
    assert refused.returncode == 6, (refused.returncode, refused.stderr)
    assert "1.0.0" in refused.stderr and "Traceback" not in refused.stderr
    token = (project / ".interlock" / "admin.token").read_text().strip()
    answer = httpx.post(
        f"{server.url}/api/v1/artifacts",
        json={"service": "api", "version": "1.0.0", "digest": OTHER},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == 409
    shown = server.json("artifact", "show", "api", "1.0.0")
    assert shown["digest"] == BUILT and shown["commit"] == "c0ffee1"
    events = server.api("GET", "/audit")["items"]
    conflicts = [e for e in events if e["action"] == "artifact.conflict"]
    assert len(conflicts) == 2  # the CLI's and the API's attempt, each on the record

    created = server.wait_release(server.create("api@1.0.0", reason="PAY-1"))  # set-up
    assert created["state"] == "succeeded", created
    (entry,) = server.json("status")["entries"]
    assert (entry["version"], entry["digest"], entry["drift"]) == ("1.0.0", BUILT, False)

    # Someone changed production by hand: what runs is not what Interlock deployed.
    observed = server.cli("artifact", "observed", "api", "production", "0.9.0")
    assert observed.returncode == 0, observed.stderr
    (entry,) = server.json("status")["entries"]
    assert entry["drift"] is True and entry["observed_version"] == "0.9.0"
    assert entry["version"] == "1.0.0"  # the record of what was deployed is unchanged
    table = server.cli("status")
    assert table.returncode == 0 and "DRIFT: 0.9.0 observed" in table.stdout, table.stdout

    # Reporting the deployed version again clears the drift.
    assert server.cli("artifact", "observed", "api", "production", "1.0.0").returncode == 0
    (entry,) = server.json("status")["entries"]
    assert entry["drift"] is False

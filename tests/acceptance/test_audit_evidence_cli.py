"""`interlock audit evidence` against a real server: the files an auditor receives."""

from __future__ import annotations

import csv
import json

from tests.acceptance.conftest import one_backend
from tests.helpers import write_config

# the evidence files' formats (the audit on both: test_tamper, tests/integration)
pytestmark = one_backend

CONFIG = """\
version: 1
environments:
  - name: staging
  - name: production
    production: true
services:
  api:
    deploy:
      - {name: one, uses: noop}
"""


def test_evidence_files_for_an_auditor(project, server):
    write_config(project, CONFIG)
    server.start("--audit-checkpoints", str(project / "checkpoints"))
    registered = server.cli(
        "artifact", "register", "api", "1.0", "--digest", "sha256:" + "c" * 64, "--commit", "d" * 40
    )
    assert registered.returncode == 0, registered.stderr
    release_id = server.create("api@1.0", reason="OPS-7 first")  # set-up: through the API
    assert server.wait_release(release_id)["state"] == "succeeded"
    checkpoint = server.json("audit", "checkpoint", "--publish")["checkpoint"]

    out = project / "evidence.json"
    made = server.cli("audit", "evidence", "--since", "1d", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert "wrote 1 changes to" in made.stderr and "audit chain verified; 1 findings" in made.stderr
    doc = json.loads(out.read_text())
    assert doc["changes"][0]["findings"] == ["deployed with no approval by anyone but its author"]
    assert doc["chain"]["checkpoint"]["checkpoint"] == checkpoint
    [change] = doc["changes"]
    assert (change["release"], change["reason"], change["tickets"]) == (
        int(release_id),
        "OPS-7 first",
        ["OPS-7"],
    )
    assert change["artifacts"][0]["commit"] == "d" * 40 and change["outcome"] == "succeeded"

    as_csv = server.cli("audit", "evidence", "--since", "1d", "--format", "csv")
    [row] = list(csv.DictReader(as_csv.stdout.splitlines()))
    assert row["reason"] == "OPS-7 first" and row["checkpoint"] == checkpoint

    page = project / "evidence.html"
    html = server.cli("audit", "evidence", "--format", "html", "--out", str(page))
    assert html.returncode == 0 and "<table>" in page.read_text()

    bad = server.cli("audit", "evidence", "--since", "last tuesday")
    assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr

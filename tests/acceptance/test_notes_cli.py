"""Release notes, diffs and the calendar with the real command and a real server process.

The api repository is the one of tests/integration/test_notes.py, built inside the
project (``repo: ./api-repo``): 1.0.0 is tag v1.0.0 (commit A); 1.2.0 is registered
by CI with --commit D; B, C and D are the commits in between.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
from icalendar import Calendar

from tests.acceptance.conftest import one_backend
from tests.helpers import write_config
from tests.integration.test_notes import build_api_repository

# the CLI's notes, diff and calendar texts (the queries on both: tests/integration)
pytestmark = one_backend

CONFIG = """\
version: 1
environments:
  - name: staging
  - name: production
    gates:
      before:
        - window:
            timezone: UTC
            freeze: [{{from: "{start}", to: "{end}", reason: year-end freeze}}]
services:
  api:
    repo: ./api-repo
    deploy: [{{name: roll-out, run: "true"}}]
  worker:
    deploy: [{{name: roll-out, run: "true"}}]
tickets:
  url: https://jira.example.com/browse/{{ticket}}
"""
DIGEST = "sha256:" + "cd" * 32
NOTES = (
    "import sys; from interlock.cli.output import run; from interlock.cli.insight import notes; "
    "run(notes, sys.argv[1:])"
)


def release_notes(server, *args: str) -> subprocess.CompletedProcess[str]:
    """``interlock release notes``; until the command is attached to ``release``, the same
    click command run directly (it is exported as ``interlock.cli.insight:notes``)."""
    found = server.cli("release", "notes", *args)
    if found.returncode == 2 and "No such command" in found.stderr:
        found = subprocess.run(
            [sys.executable, "-c", NOTES, *args],
            cwd=server.workdir,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    return found


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_notes_diff_and_calendar_from_the_command_line(project, server):
    sha = build_api_repository(project / "api-repo")
    today = datetime.now(UTC).date()
    write_config(
        project,
        CONFIG.format(start=today + timedelta(days=20), end=today + timedelta(days=22)),
    )
    server.start()
    ok(server.cli("artifact", "register", "api", "1.2.0", "--digest", DIGEST, "--commit", sha["D"]))
    # Set-up through the API: what the notes are of.
    first = server.wait_release(server.create("api@1.0.0", "worker@1.0.0", reason="PAY-1"))
    assert first["state"] == "succeeded"
    at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    scheduled = server.release(
        server.create(
            "api@1.2.0",
            "worker@1.1.0",
            reason="PAY-7: faster checkout",
            at=at.isoformat().replace("+00:00", "Z"),
        )
    )
    assert scheduled["state"] == "scheduled"
    release_id = str(scheduled["id"])

    # Markdown: a heading per service, exactly B, C and D (newest first), the tickets.
    shown = ok(release_notes(server, release_id))
    text = shown.stdout
    assert text.startswith(f"# Release {release_id} → production\n")
    assert "## api: 1.0.0 → 1.2.0" in text and "## worker: 1.0.0 → 1.1.0" in text
    api_part = text.split("## api:")[1].split("## worker:")[0]
    listed = re.findall(r"^- `([0-9a-f]{7})` (.*) \((.*)\)$", api_part, re.MULTILINE)
    assert listed == [
        (sha["D"][:7], "PAY-5 faster checkout", "Dev One"),
        (sha["C"][:7], "fix rounding (PAY-4)", "Erin Example"),
        (sha["B"][:7], "PAY-2 add refunds", "Dev One"),
    ]
    assert f"3 commits `{sha['A'][:7]}..{sha['D'][:7]}`" in api_part
    assert "[PAY-4](https://jira.example.com/browse/PAY-4)" in api_part
    assert "PAY-1 initial" not in text and "docs: readme" not in text  # A and E are not in it
    assert "no repository configured for worker" in text
    assert "warning: no repository configured for worker" in shown.stderr

    as_json = json.loads(ok(release_notes(server, release_id, "--format", "json")).stdout)
    api = as_json["services"][0]
    assert [c["sha"] for c in api["added"]["commits"]] == [sha["B"], sha["C"], sha["D"]]
    assert [t["key"] for t in as_json["tickets"]] == ["PAY-2", "PAY-3", "PAY-4", "PAY-5"]
    staging = ok(release_notes(server, release_id, "--env", "staging")).stdout
    assert "## api: 1.0.0 → 1.2.0" in staging
    missing = release_notes(server, "999")
    assert missing.returncode == 5 and "no release 999" in missing.stderr

    # Diff: after 1.2.0 reached staging only, staging is ahead of production by B, C, D.
    staged = server.wait_release(server.create("api@1.2.0", until="staging", reason="r"))
    assert staged["state"] == "succeeded"
    table = ok(server.cli("diff", "staging", "production")).stdout
    assert "staging is ahead by 3 commits" in table and "same" in table
    assert f"{sha['B'][:7]} PAY-2 add refunds (Dev One)" in table
    diff = server.json("diff", "staging", "production")
    assert [(s["service"], s["ahead"], s["same"]) for s in diff["services"]] == [
        ("api", "staging", False),
        ("worker", None, True),
    ]
    markdown = ok(server.cli("diff", "production", "staging", "--format", "markdown")).stdout
    assert "| api | 1.0.0 | 1.2.0 | staging is ahead by 3 commits |" in markdown
    assert "Only in staging (3 commits):" in markdown
    assert server.cli("diff", "staging", "qa").returncode == 5

    # Calendar: the scheduled release and the freeze, as a table, JSON and iCalendar.
    listed = ok(server.cli("calendar"))
    assert "api@1.2.0 worker@1.1.0" in listed.stdout and "year-end freeze" in listed.stdout
    assert "/api/v1/calendar.ics?token=" in listed.stderr
    cal = server.json("calendar")
    assert [r["id"] for r in cal["releases"]] == [scheduled["id"]]
    assert [f["environments"] for f in cal["freezes"]] == [["production"]]
    token = (project / ".interlock" / "admin.token").read_text().strip()
    feed = httpx.get(f"{server.url}/api/v1/calendar.ics", params={"token": token}, timeout=10)
    assert feed.status_code == 200, feed.text
    events = {str(e["UID"]): e for e in Calendar.from_ical(feed.content).walk("VEVENT")}
    release = events[f"release-{release_id}@interlock"]
    assert release.decoded("DTSTART") == at
    assert "freeze" in " ".join(str(e["SUMMARY"]) for e in events.values())
    assert len(events) == 2

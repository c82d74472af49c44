"""Someone edits the audit table behind Interlock's back: `interlock audit verify` says where."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from interlock.storage.db import normalize_url
from tests.helpers import write_config
from tests.support.server import Server

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: one, uses: noop}
"""


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq = 2",
    ],
)
def test_verify_names_the_broken_event(project, server, database_url, statement):
    write_config(project, CONFIG)
    server.start()
    assert server.wait_release(server.create("api@1.0", reason="r"))["state"] == "succeeded"
    assert server.api("GET", "/audit/verify")["ok"]  # before: intact
    sql = create_engine(normalize_url(database_url))
    with sql.begin() as conn:
        conn.execute(text(statement))
    sql.dispose()
    result = server.cli("audit", "verify")
    assert result.returncode == 1
    assert "audit log BROKEN" in result.stderr
    assert "event 2:" in result.stderr or "event 3:" in result.stderr
    as_json = server.cli("audit", "verify", "--format", "json")
    assert as_json.returncode == 1 and '"ok": false' in as_json.stdout


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("/dev/zero", None, "longer than"),  # endless, no line end
        ("binary.gz", b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4, "not UTF-8"),
        ("huge-line.jsonl", b"x" * (9 * 1024 * 1024), "longer than"),
        ("blank-lines.jsonl", b"\n" * 1000 + b'{"seq": 1}\n', "empty line"),
        ("not-events.jsonl", b'{"hello": "world"}\n', "not an exported audit event"),
    ],
)
def test_verify_refuses_a_file_that_is_not_an_export(project, name, content, why):
    """`audit verify --file /dev/zero` used to read forever; any non-export fails at once."""
    path = Path(name)
    if content is not None:
        path = project / name
        path.write_bytes(content)
    result = Server(project).cli("audit", "verify", "--file", str(path), timeout=30)
    assert result.returncode == 2, result.stderr
    assert f"{path}:1: not an exported audit event" in result.stderr
    assert why in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_checks_against_the_published_checkpoint(project, server, database_url):
    """A cut tail with a fixed head passes the chain alone; the published checkpoint fails it."""
    write_config(project, CONFIG)
    directory = project / "checkpoints"
    server.start("--audit-checkpoints", str(directory))
    assert server.wait_release(server.create("api@1.0", reason="r"))["state"] == "succeeded"
    assert f"audit checkpoints are published to {directory}" in server.log()
    published = server.json("audit", "checkpoint", "--publish")
    assert published["file"] == str(directory / "audit-checkpoints.jsonl")
    ok = server.cli("audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert f"checked against the server's published checkpoint {published['checkpoint']}" in (
        ok.stdout
    )
    sql = create_engine(normalize_url(database_url))
    with sql.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq > 3"))
        conn.execute(
            text(
                "UPDATE audit_head SET seq = 3, "
                "hash = (SELECT hash FROM audit_events WHERE seq = 3)"
            )
        )
    sql.dispose()
    assert server.cli("audit", "verify", "--no-published").returncode == 0  # the chain alone
    cut = server.cli("audit", "verify")
    assert cut.returncode == 1
    assert "cut off the end" in cut.stderr and published["checkpoint"] in cut.stderr
    offline = server.cli("audit", "verify", "--no-published", "--checkpoint-file", str(directory))
    assert offline.returncode == 1 and "cut off the end" in offline.stderr
    refused = server.cli("audit", "checkpoint", "--publish")
    assert refused.returncode == 6 and "no longer holds event" in refused.stderr

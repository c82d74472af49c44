"""`audit verify`, `export` and `evidence` of a large log wait as long as `--timeout` says.

A log of a million events takes the server about 30 s to verify, as long as
the CLI used to wait for any answer: the verify failed with "did not answer in
time". Here a log of 10,000 events (built fast, as bench/audit.py does, into
the test's fresh, migrated database) and a tiny `--timeout` stand in for a
million events and the old 30 s: the server takes several times 0.01 s to verify
it even on an idle machine (an export of it is most of the test's CPU: 30,000
events cost three times as much for no more coverage).
"""

from __future__ import annotations

from sqlalchemy import create_engine

from interlock.errors import EXIT_UNREACHABLE
from interlock.storage.db import normalize_url
from tests.helpers import write_config
from tests.support.audit_chain import build

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: one, uses: noop}
"""
EVENTS = 10_000


def test_long_calls_wait_as_long_as_timeout_says(project, server, database_url):
    write_config(project, CONFIG)
    sql = create_engine(normalize_url(database_url))
    build(sql, EVENTS)
    sql.dispose()
    server.start()
    for command in (
        ["audit", "verify"],
        ["audit", "export", "--out", str(project / "cut.jsonl")],
        ["audit", "evidence", "--out", str(project / "cut.json")],
    ):
        short = server.cli(*command, "--timeout", "0.01")
        assert short.returncode == EXIT_UNREACHABLE, (command, short.stderr)
        assert "did not answer in time (within 0.01 s); give it longer with --timeout" in (
            short.stderr
        )
        assert "Traceback" not in short.stderr
    verified = server.cli("audit", "verify", "--timeout", "600")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("audit log intact: ")
    assert int(verified.stdout.split()[3]) > EVENTS
    exported = project / "audit.jsonl"
    done = server.cli("audit", "export", "--out", str(exported), "--timeout", "0")  # no limit
    assert done.returncode == 0, done.stderr
    assert len(exported.read_text().splitlines()) > EVENTS
    evidence = server.cli("audit", "evidence", "--out", str(project / "evidence.json"))
    assert evidence.returncode == 0, evidence.stderr
    assert "audit chain verified" in evidence.stderr

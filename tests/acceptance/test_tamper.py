"""Someone edits the audit table behind Interlock's back: `interlock audit verify` says where."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from interlock.storage.db import normalize_url
from tests.helpers import write_config

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
    release_id = server.cli("release", "create", "api@1.0", "--reason", "r").stdout.strip()
    assert server.cli("release", "watch", release_id).returncode == 0
    assert server.cli("audit", "verify").returncode == 0
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

"""`release list` and `audit log` page like every other list: --cursor, --all, --limit."""

from __future__ import annotations

import json

from tests.acceptance.conftest import one_backend
from tests.helpers import write_config

# the CLI's paging options; the API's paging on both backends: tests/integration/test_paging.py
pytestmark = one_backend

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: one, uses: noop}
"""


def test_release_list_and_audit_log_take_cursor_all_and_limit(project, server):
    write_config(project, CONFIG)
    server.start()
    ids = [int(server.create(f"api@1.{n}", reason="r")) for n in range(3)]  # set-up: the API

    def releases(*args: str) -> tuple[list[int], str]:
        result = server.cli("release", "list", "--format", "json", *args)
        assert result.returncode == 0, result.stderr
        return [r["id"] for r in json.loads(result.stdout)["items"]], result.stderr

    first, hint = releases("--limit", "1")
    assert first == [ids[2]]
    assert f"--cursor {ids[2]}" in hint
    assert releases("--limit", "1", "--cursor", str(ids[2]))[0] == [ids[1]]
    assert releases("--limit", "1", "--before", str(ids[2]))[0] == [ids[1]]  # the old name
    every, hint = releases("--limit", "1", "--all")
    assert every == ids[::-1] and hint == ""

    def events(*args: str) -> tuple[list[int], str]:
        result = server.cli("audit", "log", "--format", "json", *args)
        assert result.returncode == 0, result.stderr
        return [e["seq"] for e in json.loads(result.stdout)], result.stderr

    newest, hint = events("--limit", "2")
    assert len(newest) == 2 and f"--cursor {newest[0]}" in hint
    older, _ = events("--limit", "2", "--cursor", str(newest[0]))
    assert older == [newest[0] - 2, newest[0] - 1]
    assert events("--limit", "2", "--before", str(newest[0]))[0] == older
    everything, hint = events("--limit", "2", "--all")
    # every event, in order (the releases may still be adding some)
    assert everything == list(range(1, len(everything) + 1)) and hint == ""
    assert len(everything) >= newest[-1]

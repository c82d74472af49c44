"""`interlock audit log` shows the newest events, and says so when there are more."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result

from interlock.cli.main import cli
from tests.support.api import Api

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, uses: noop}]}
"""

TOTAL = 179


def _fill(engine: Any, total: int) -> None:
    """Append test events until the log holds ``total`` of them."""
    with engine.db.read() as tx:
        head = tx.audit_head()
    with engine.db.transaction() as tx:
        for n in range((head.seq if head else 0) + 1, total + 1):
            tx.audit(
                at=datetime.now(UTC),
                actor="tester",
                action="test.event",
                object_type="test",
                object_id=n,
            )


@pytest.fixture
def audit_log(pilot):
    pilot.config(CONFIG)
    api = Api(pilot.engine, pilot.configs, workers=0).start()
    try:
        api.admin()
        _fill(pilot.engine, TOTAL)
        env = {"INTERLOCK_URL": api.url, "INTERLOCK_TOKEN": api.secrets["root"]}

        def run(*args: str) -> Result:
            result = CliRunner().invoke(cli, ["audit", "log", *args], env=env)
            assert result.exit_code == 0, result.output
            return result

        yield run
    finally:
        api.stop()


def _seqs(result: Result) -> list[int]:
    return [e["seq"] for e in json.loads(result.stdout)]


def test_the_default_is_the_newest_events_with_a_hint_on_stderr(audit_log):
    shown = audit_log("--format", "json")
    assert _seqs(shown) == list(range(TOTAL - 99, TOTAL + 1))  # 80..179, oldest first
    assert "showing the newest 100 of 179 events" in shown.stderr
    assert "--cursor 80" in shown.stderr
    table = audit_log()
    rows = table.stdout.strip().splitlines()
    assert rows[-1].split()[0] == str(TOTAL) and len(rows) == 101  # header + 100
    assert "showing the newest 100 of 179 events" in table.stderr
    assert "showing" not in table.stdout


def test_before_pages_back_and_the_last_page_needs_no_hint(audit_log):
    older = audit_log("--before", "80", "--format", "json")
    assert _seqs(older) == list(range(1, 80))
    assert older.stderr == ""
    window = audit_log("--before", "80", "--limit", "10", "--format", "json")
    assert _seqs(window) == list(range(70, 80))
    assert "showing the newest 10 events" in window.stderr and "--cursor 70" in window.stderr


def test_after_reads_forward(audit_log):
    forward = audit_log("--after", "100", "--limit", "50", "--format", "json")
    assert _seqs(forward) == list(range(101, 151))
    assert "showing the first 50 events after 100" in forward.stderr
    assert "--after 150" in forward.stderr
    rest = audit_log("--after", "150", "--format", "json")
    assert _seqs(rest) == list(range(151, TOTAL + 1)) and rest.stderr == ""
    between = audit_log("--after", "10", "--before", "20", "--format", "json")
    assert _seqs(between) == list(range(11, 20))


def test_everything_fits_so_no_hint(audit_log):
    for args in (["--all"], ["--limit", "1000"]):
        shown = audit_log(*args, "--format", "json")
        assert _seqs(shown) == list(range(1, TOTAL + 1)) and shown.stderr == ""
    paged = audit_log("--all", "--limit", "7", "--format", "json")
    assert _seqs(paged) == list(range(1, TOTAL + 1)) and paged.stderr == ""
    paged_back = audit_log("--all", "--before", "50", "--limit", "7", "--format", "json")
    assert _seqs(paged_back) == list(range(1, 50))


def test_filtered_shows_the_newest_matching_events(audit_log):
    shown = audit_log("--action", "test.event", "--limit", "5", "--format", "json")
    assert _seqs(shown) == list(range(TOTAL - 4, TOTAL + 1))
    assert "showing the newest 5 events" in shown.stderr and "--cursor 175" in shown.stderr


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_following_next_cursor_over_the_api_reads_every_event_once(pilot, newest_first):
    pilot.config(CONFIG)
    api = Api(pilot.engine, pilot.configs, workers=0).start()
    try:
        admin = api.admin()
        _fill(pilot.engine, 47)
        seen: list[int] = []
        params: dict[str, Any] = {"limit": 10, "newest_first": newest_first}
        while True:
            page = admin.get("/api/v1/audit", params=params).json()
            seen += [e["seq"] for e in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        expected = list(range(1, len(seen) + 1))
        assert seen == (expected[::-1] if newest_first else expected)
        assert len(seen) >= 47
    finally:
        api.stop()

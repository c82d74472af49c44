"""Acceptance fixtures: a project directory with interlock.yaml and a real server process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import Server

LOG_LINES = 150


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    return directory


@pytest.fixture
def server(project: Path, database_url: str) -> Iterator[Server]:
    """A server (not yet started) on the test's backend; stopped after the test."""
    found = Server(project, database_url)
    yield found
    found.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """A failed test shows the end of its server's log (what CI keeps of a flaky run)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    found = getattr(item, "funcargs", {}).get("server")
    if report.when == "call" and report.failed and isinstance(found, Server):
        if found.log_path.exists():
            tail = found.log().splitlines()[-LOG_LINES:]
            report.sections.append((f"server log (last {LOG_LINES} lines)", "\n".join(tail)))

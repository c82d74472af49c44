"""Acceptance fixtures: a project directory with interlock.yaml and a real server process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Server


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

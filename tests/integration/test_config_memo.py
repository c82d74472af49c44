"""The active config is read once per transaction, and a config loaded in it is seen at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from tests.helpers import write_config

FIRST = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: a, run: "true"}]}
"""
SECOND = FIRST.replace("staging", "production")


@pytest.fixture
def reads(pilot: Any) -> Iterator[list[str]]:
    """The statements sent that read the stored configs."""
    found: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "config_versions" in statement and statement.lstrip().upper().startswith("SELECT"):
            found.append(statement)

    event.listen(pilot.engine.db.engine, "before_cursor_execute", listen)
    yield found
    event.remove(pilot.engine.db.engine, "before_cursor_execute", listen)


def test_a_transaction_reads_the_active_config_once(pilot, reads):
    pilot.config(FIRST)
    reads.clear()
    with pilot.engine.db.transaction():
        names = [[e.name for e in pilot.configs.active().config.environments] for _ in range(5)]
    assert names == [["staging"]] * 5
    assert len(reads) == 1  # an approval asked for it 8 times, 8 reads of its whole text


def test_a_config_loaded_in_the_transaction_is_the_one_it_reads_next(pilot, tmp_path):
    pilot.config(FIRST)
    with pilot.engine.db.transaction():
        assert [e.name for e in pilot.configs.active().config.environments] == ["staging"]
        path = write_config(tmp_path, SECOND, name="second.yaml")
        pilot.configs.load_file(path, actor="tester")
        assert [e.name for e in pilot.configs.active().config.environments] == ["production"]
    assert [e.name for e in pilot.configs.active().config.environments] == ["production"]


def test_only_the_newest_parsed_config_is_kept(pilot, tmp_path):
    """A server keeps the config it runs by; each reload's older one was kept for good."""
    for n in range(4):
        path = write_config(tmp_path, FIRST.replace("api", f"api{n}"), name=f"{n}.yaml")
        pilot.configs.load_file(path, actor="tester")
    assert list(pilot.configs.active().config.services) == ["api3"]
    assert len(pilot.configs._parsed) == 1  # was 4: one per version loaded

"""Integration fixtures: an engine with its config holder, on a fresh database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import write_config


class Pilot:
    """An engine, a config file in a temporary directory, and shortcuts to use them."""

    def __init__(self, engine: Any, directory: Path) -> None:
        self.engine = engine
        self.dir = directory
        self.configs = engine.configs

    def config(self, text: str) -> Path:
        path = write_config(self.dir, text)
        self.configs.load_file(path, actor="tester")
        return path

    def release(self, *refs: str, reason: str = "TEST-1: testing", **kwargs: Any) -> Any:
        from interlock.domain.names import parse_ref
        from interlock.domain.records import Item
        from interlock.engine.releases import create_release

        items = [Item(r.service, r.version) for r in map(parse_ref, refs)]
        return create_release(
            self.engine, self.configs, actor="alice", items=items, reason=reason, **kwargs
        )

    def read(self) -> Any:
        return self.engine.db.read()


@pytest.fixture
def pilot(engine: Any, tmp_path: Path) -> Pilot:
    return Pilot(engine, tmp_path)

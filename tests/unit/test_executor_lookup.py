"""Plug-in executors are looked up in the installed distributions once per process."""

from __future__ import annotations

from typing import Any

import pytest

from interlock.errors import InvalidInput
from interlock.executors import registry


def test_the_plug_ins_are_looked_up_once_not_at_each_new_executors_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = registry.entry_points
    scans: list[str] = []

    def counted(**kwargs: Any) -> Any:
        scans.append(kwargs.get("group", ""))
        return real(**kwargs)

    monkeypatch.setattr(registry, "entry_points", counted)
    monkeypatch.setattr(registry, "_instances", {})
    registry.plugins.cache_clear()
    try:
        assert "noop" in registry.plugin_names()
        assert scans == [registry.GROUP]
        noop = registry.get_executor("noop")
        assert registry.get_executor("noop") is noop
        with pytest.raises(InvalidInput, match="no executor named 'nothing'"):
            registry.get_executor("nothing")
        assert scans == [registry.GROUP]  # (a worker pool's start made that one look-up)
    finally:
        registry.plugins.cache_clear()

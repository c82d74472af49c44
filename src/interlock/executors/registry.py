"""Find an executor by name: the built-ins, then the ``interlock.executors`` entry points."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from interlock.errors import InvalidInput
from interlock.executors.base import Executor

GROUP = "interlock.executors"
BUILT_IN = ("shell", "http")


@cache
def plugin_names() -> tuple[str, ...]:
    """Names of the installed plug-in executors."""
    return tuple(sorted(ep.name for ep in entry_points(group=GROUP)))


_instances: dict[str, Executor] = {}


def get_executor(name: str) -> Executor:
    """The executor called ``name``; plug-ins are loaded on first use."""
    if name in _instances:
        return _instances[name]
    executor: Executor
    if name == "shell":
        from interlock.executors.shell import ShellExecutor

        executor = ShellExecutor()
    elif name == "http":
        from interlock.executors.http import HttpExecutor

        executor = HttpExecutor()
    else:
        found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
        if not found:
            raise InvalidInput(
                f"no executor named {name!r}; installed plug-ins: "
                + (", ".join(plugin_names()) or "none")
            )
        executor = found[0].load()()
    _instances[name] = executor
    return executor

"""Find an executor by name: the built-ins, then the ``interlock.executors`` entry points."""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from interlock.errors import InvalidInput
from interlock.executors.base import Executor

GROUP = "interlock.executors"
BUILT_IN = ("shell", "http")


@cache
def plugins() -> dict[str, EntryPoint]:
    """The installed plug-in executors' entry points by name, looked up once per process.

    The look-up reads the metadata of every installed distribution (tens of
    milliseconds); a worker pool does it as it starts, not its first step.
    """
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    return found


def plugin_names() -> tuple[str, ...]:
    """Names of the installed plug-in executors."""
    return tuple(sorted(plugins()))


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
        found = plugins().get(name)
        if found is None:
            raise InvalidInput(
                f"no executor named {name!r}; installed plug-ins: "
                + (", ".join(plugin_names()) or "none")
            )
        executor = found.load()()
    _instances[name] = executor
    return executor

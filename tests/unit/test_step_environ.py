"""A step's environment variables are gathered only when an executor reads them."""

from __future__ import annotations

from interlock.executors.base import LazyEnviron


def test_nothing_is_gathered_until_read_and_then_only_once():
    calls = []

    def gather() -> dict[str, str]:
        calls.append(1)
        return {"PATH": "/usr/bin", "INTERLOCK_SERVICE": "api"}

    environ = LazyEnviron(gather)
    assert calls == []  # an HTTP or plug-in step that never looks costs nothing
    assert environ["INTERLOCK_SERVICE"] == "api"
    assert {**environ} == {"PATH": "/usr/bin", "INTERLOCK_SERVICE": "api"}
    assert dict(environ.items()) == {"PATH": "/usr/bin", "INTERLOCK_SERVICE": "api"}
    assert len(environ) == 2 and "PATH" in environ and environ.get("HOME") is None
    assert calls == [1]


def test_it_can_be_changed_and_copied_as_the_dict_it_replaced():
    environ = LazyEnviron(lambda: {"A": "1"})
    environ["B"] = "2"
    del environ["A"]
    copied = environ.copy()
    copied["C"] = "3"
    assert dict(environ) == {"B": "2"} and copied == {"B": "2", "C": "3"}

"""A release's waits as `release show` prints them (the API's ``waits``, docs/waits.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

QUEUED = ("lock", "queue", "paused")
_INDENT = " " * 12


def wait_lines(wait: dict[str, Any], when: Callable[[str | None], str]) -> list[str]:
    """The lines of one wait: its sentence, then what a person acts on, times in local time."""
    label = "queued:" if wait["kind"] in QUEUED else "waiting:"
    lines = [f"  {label:<9} {wait['summary']}"]
    if wait["kind"] == "approval":
        for rule in wait.get("rules", []):
            given = (
                ", ".join(
                    f"{g['by']} at {when(g['at'])}"
                    + (f" (expires {when(g['expires_at'])})" if g["expires_at"] else "")
                    for g in rule["given_by"]
                )
                or "nobody yet"
            )
            who = ", ".join(rule["can_clear"]) or "nobody (check roles and permissions)"
            lines.append(
                f"{_INDENT}{rule['rule']}: given by {given}; {rule['missing']} more from: {who}"
            )
    elif wait["kind"] in ("window", "freeze") and wait.get("opens_at"):
        lines.append(f"{_INDENT}opens at {when(wait['opens_at'])}")
    elif wait["kind"] == "check" and wait.get("next_try"):
        lines.append(f"{_INDENT}next try at {when(wait['next_try'])}")
    return lines

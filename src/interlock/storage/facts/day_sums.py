"""The change a refresh makes to the sums of its days, added to them in place.

A refresh of some deployments' delivery facts tallies what their rows added
to ``delivery_days``, ``delivery_people`` and ``delivery_step_days`` before it
changes them (taken away) and after (added), and adds the difference to the
sums: one ``INSERT ... ON CONFLICT DO UPDATE SET x = x + excluded.x`` per
table, as its last statements. No day is summed again from its rows, so a
refresh costs the same on a busy day as on a quiet one, and on PostgreSQL two
deployments that finish at once on the same day add to it side by side: the
row of a sum that both change is locked by the first to write it until its
commit, and the second then adds to what the first left (it never read it).

A group whose last row left it is deleted, as a rebuild would not have it:
``delivery_people`` and ``delivery_step_days`` count their rows (a zero is
empty, and the delete of a zero row waits for, and then sees, a concurrent
addition); ``delivery_days``' groups, which have a service in their key, are
only changed under that (service, environment)'s lock, so whether rows
remain is read directly.

Sums of floats moved by additions and subtractions may differ from a fresh
sum in their last bits; counts are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Float

from interlock.storage.facts.delivery_sql import SUMMED
from interlock.storage.schema import delivery_days

DayKey = tuple[str, int, str, str]  # environment, day, service, kind
PersonKey = tuple[str, int, str]  # environment, day, person ('' for nobody recorded)
StepKey = tuple[str, int, str, int]  # environment, day, service, manual
_FLOATS = frozenset(name for name in SUMMED if isinstance(delivery_days.c[name].type, Float))
_ATTEMPTED = SUMMED.index("attempted")


class DaySums:
    """Differences to the day sums, gathered from tallies (``sign`` -1 before, 1 after)."""

    def __init__(self) -> None:
        self.days: dict[DayKey, list[Any]] = {}  # the rows, then SUMMED
        self.people: dict[PersonKey, int] = {}
        self.steps: dict[StepKey, int] = {}

    def facts(self, rows: Iterable[Any], sign: int) -> None:
        """Rows of the ``tally_facts`` / ``tally_rows`` statements."""
        for row in rows:
            environment, day, service, kind, who, count, *sums = row
            key = (str(environment), int(day), str(service), str(kind))
            found = self.days.setdefault(key, [0] * (len(SUMMED) + 1))
            found[0] += sign * int(count)
            for i, (name, value) in enumerate(zip(SUMMED, sums, strict=True), 1):
                found[i] += sign * (float(value) if name in _FLOATS else int(value))
            person = (key[0], key[1], str(who))
            self.people[person] = self.people.get(person, 0) + sign * int(sums[_ATTEMPTED])

    def step_rows(self, rows: Iterable[Any], sign: int) -> None:
        """Rows of the ``tally_steps`` statement."""
        for environment, day, service, manual, runs in rows:
            key = (str(environment), int(day), str(service), int(manual))
            self.steps[key] = self.steps.get(key, 0) + sign * int(runs)

    def add(self, run_many: Callable[[str, list[dict[str, Any]]], None]) -> None:
        """Add the differences to the sums (``run_many``: runs the refresh's statement of a
        name once per row given, nothing for none)."""
        days: list[dict[str, Any]] = []
        emptied: list[dict[str, Any]] = []
        for (environment, day, service, kind), values in sorted(self.days.items()):
            if not any(values):
                continue
            key = {"environment": environment, "day": day, "service": service, "kind": kind}
            days.append({**key, **dict(zip(SUMMED, values[1:], strict=True))})
            if values[0] < 0:
                emptied.append(key)
        people: list[dict[str, Any]] = [
            {"environment": environment, "day": day, "person": person, "releases": change}
            for (environment, day, person), change in sorted(self.people.items())
            if change
        ]
        steps: list[dict[str, Any]] = [
            {"environment": environment, "day": day, "service": service, "manual": manual}
            | {"runs": change}
            for (environment, day, service, manual), change in sorted(self.steps.items())
            if change
        ]
        # A person's row last: deployments of every service add to it (the others'
        # rows are mostly one service's), and its lock is held until commit.
        for name, rows in (("add_days", days), ("add_steps", steps), ("add_people", people)):
            run_many(name, rows)
        for name, rows in (
            ("drop_days", emptied),
            ("drop_people", [row for row in people if row["releases"] < 0]),
            ("drop_steps", [row for row in steps if row["runs"] < 0]),
        ):
            run_many(name, [_key(row) for row in rows])


def _key(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name not in ("releases", "runs")}

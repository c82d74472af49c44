"""The approval gate's arithmetic: which approvals count, for which rule, and what is missing.

Approvers are distinct people: one approval fills one slot of one rule, and
the slots are assigned by a maximum matching, so a person who is both a release
manager and an SRE counts once, wherever they are needed most.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from interlock.domain.records import Approval


@dataclass(frozen=True)
class Slot:
    """One requirement: ``count`` people from ``group`` (``kind`` role, team or owners)."""

    kind: str
    group: str
    count: int

    def describe(self) -> str:
        source = {"role": "role", "team": "team", "owners": "owning team"}[self.kind]
        return f"{self.count} from {source} {self.group}"


@dataclass
class SlotStatus:
    slot: Slot
    given_by: list[str] = field(default_factory=list)
    eligible: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return max(0, self.slot.count - len(self.given_by))

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.slot.describe(),
            "kind": self.slot.kind,
            "group": self.slot.group,
            "needed": self.slot.count,
            "given_by": self.given_by,
            "missing": self.missing,
            "can_clear": self.eligible,
        }


def slots(rules: Sequence[dict[str, Any]], owners: Iterable[str]) -> list[Slot]:
    """The slots of a gate's rules; an ``owners`` rule needs each owning team."""
    found = []
    for rule in rules:
        count = int(rule.get("count", 1))
        if rule.get("role"):
            found.append(Slot("role", rule["role"], count))
        elif rule.get("team"):
            found.append(Slot("team", rule["team"], count))
        elif rule.get("owners"):
            teams = sorted(set(owners))
            found += [Slot("owners", team, count) for team in teams]
            if not teams:
                found.append(Slot("owners", "(no service in the release has an owner)", count))
    return found


def counting(
    approvals: Sequence[Approval], *, content_hash: str, now: datetime, authors: set[str]
) -> list[Approval]:
    """Approvals that still count: right content, not expired, not by an author."""
    return [
        a
        for a in approvals
        if a.decision == "approve"
        and a.content_hash == content_hash
        and (a.expires_at is None or a.expires_at > now)
        and a.approver not in authors
    ]


def assign(
    gate_slots: Sequence[Slot], approvers: Sequence[str], members: Callable[[Slot], set[str]]
) -> list[SlotStatus]:
    """Give each approver at most one slot, filling as many slots as possible."""
    seats = [(i, n) for i, s in enumerate(gate_slots) for n in range(s.count)]
    eligible = {
        p: [k for k, (i, _) in enumerate(seats) if p in members(gate_slots[i])] for p in approvers
    }
    taken: dict[int, str] = {}

    def place(person: str, seen: set[int]) -> bool:
        for seat in eligible[person]:
            if seat in seen:
                continue
            seen.add(seat)
            if seat not in taken or place(taken[seat], seen):
                taken[seat] = person
                return True
        return False

    for person in approvers:
        place(person, set())
    status = [SlotStatus(slot) for slot in gate_slots]
    order = {person: i for i, person in enumerate(approvers)}
    for seat, person in sorted(taken.items(), key=lambda item: order[item[1]]):
        status[seats[seat][0]].given_by.append(person)
    return status


def satisfied(status: Sequence[SlotStatus]) -> bool:
    return all(s.missing == 0 for s in status)

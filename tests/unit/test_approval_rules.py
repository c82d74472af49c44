"""Approval arithmetic: distinct people, several rules, owners, expiry, authors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from interlock.domain.records import Approval
from interlock.gates.approval import Slot, assign, counting, satisfied, slots

MEMBERS = {
    ("role", "rm"): {"alice", "bob", "rita"},
    ("role", "sre"): {"carol", "rita"},
    ("team", "payments"): {"dave", "erin"},
    ("team", "search"): {"sam"},
}


def members(slot: Slot) -> set[str]:
    kind = "role" if slot.kind == "role" else "team"
    return MEMBERS.get((kind, slot.group), set())


RULES = [{"role": "rm", "count": 2}, {"role": "sre", "count": 1}]


def test_two_managers_and_an_sre():
    status = assign(slots(RULES, []), ["alice", "bob", "carol"], members)
    assert satisfied(status)
    assert [s.given_by for s in status] == [["alice", "bob"], ["carol"]]


def test_one_person_fills_one_slot_wherever_it_helps_most():
    # rita is both; the matching puts her where nobody else can go.
    status = assign(slots(RULES, []), ["rita", "alice", "bob"], members)
    assert satisfied(status)
    assert status[1].given_by == ["rita"]
    status = assign(slots(RULES, []), ["rita", "alice"], members)
    assert not satisfied(status)
    assert sum(s.missing for s in status) == 1


def test_people_outside_every_group_do_not_count():
    status = assign(slots(RULES, []), ["mallory", "alice"], members)
    assert [s.given_by for s in status] == [["alice"], []]


def test_owners_means_each_owning_team():
    gate = slots([{"owners": True, "count": 1}], ["payments", "search"])
    assert [s.group for s in gate] == ["payments", "search"]
    assert not satisfied(assign(gate, ["dave", "erin"], members))
    assert satisfied(assign(gate, ["dave", "sam"], members))
    assert slots([{"owners": True}], [])[0].group.startswith("(no service")


def approval(who: str, **overrides) -> Approval:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    values = dict(
        id=1,
        release_id=1,
        environment="production",
        gate="gate/approval",
        approver=who,
        decision="approve",
        comment=None,
        content_hash="h",
        created_at=now,
        expires_at=now + timedelta(hours=1),
    )
    values.update(overrides)
    return Approval(**values)


def test_only_current_unexpired_approvals_by_non_authors_count():
    now = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    given = [
        approval("alice"),
        approval("bob", expires_at=datetime(2026, 1, 1, 0, 10, tzinfo=UTC)),
        approval("carol", content_hash="older"),
        approval("dave"),
        approval("erin", decision="reject"),
        approval("sam", expires_at=None),
    ]
    kept = counting(given, content_hash="h", now=now, authors={"dave"})
    assert [a.approver for a in kept] == ["alice", "sam"]

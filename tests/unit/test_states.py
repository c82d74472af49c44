"""The transition tables: every legal move allowed, every other move refused."""

from __future__ import annotations

import itertools

import pytest

from interlock.domain.states import (
    DEPLOYMENT_TRANSITIONS,
    NODE_TRANSITIONS,
    RELEASE_TRANSITIONS,
    TERMINAL_DEPLOYMENT,
    TERMINAL_NODE,
    TERMINAL_RELEASE,
    DeploymentState,
    NodeState,
    ReleaseState,
    can_move,
    check,
)
from interlock.errors import IllegalTransition

TABLES = [
    (ReleaseState, RELEASE_TRANSITIONS),
    (DeploymentState, DEPLOYMENT_TRANSITIONS),
    (NodeState, NODE_TRANSITIONS),
]


@pytest.mark.parametrize(("enum", "table"), TABLES)
def test_every_state_has_a_row(enum, table):
    assert set(table) == set(enum)


@pytest.mark.parametrize(("enum", "table"), TABLES)
def test_legal_and_illegal_moves(enum, table):
    for current, target in itertools.product(enum, enum):
        if target in table[current]:
            check("x", current, target)
            assert can_move(current, target)
        else:
            with pytest.raises(IllegalTransition) as info:
                check("thing 7", current, target)
            assert f"thing 7 cannot go from {current.value} to {target.value}" in str(info.value)
            assert info.value.http_status == 409


def test_terminal_states_are_final():
    assert TERMINAL_RELEASE == {ReleaseState.SUCCEEDED, ReleaseState.FAILED, ReleaseState.CANCELLED}
    assert TERMINAL_DEPLOYMENT == {
        DeploymentState.SUCCEEDED,
        DeploymentState.FAILED,
        DeploymentState.ROLLED_BACK,
        DeploymentState.CANCELLED,
    }
    assert TERMINAL_NODE == {
        NodeState.SUCCEEDED,
        NodeState.FAILED,
        NodeState.SKIPPED,
        NodeState.CANCELLED,
    }


def test_specific_rules_users_rely_on():
    # A finished step never runs again.
    assert not can_move(NodeState.SUCCEEDED, NodeState.READY)
    # A step that lost its worker may be retried or handed to a person.
    assert can_move(NodeState.RUNNING, NodeState.READY)
    assert can_move(NodeState.RUNNING, NodeState.NEEDS_ATTENTION)
    # Skipping a step nobody ran is possible; skipping a running one is not.
    assert can_move(NodeState.PENDING, NodeState.SKIPPED)
    assert not can_move(NodeState.RUNNING, NodeState.SKIPPED)
    # A cancelled release stays cancelled.
    assert not can_move(ReleaseState.CANCELLED, ReleaseState.RUNNING)


def test_mixing_kinds_is_a_programming_error():
    with pytest.raises(TypeError):
        check("x", NodeState.READY, ReleaseState.RUNNING)

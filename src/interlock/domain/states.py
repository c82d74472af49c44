"""States of releases, deployments and nodes, and the one table of legal moves.

A transition not listed here raises :class:`IllegalTransition`; the engine
never writes a state without asking :func:`check` first.
"""

from __future__ import annotations

from enum import StrEnum

from interlock.errors import IllegalTransition


class ReleaseState(StrEnum):
    SCHEDULED = "scheduled"  # waits for its --at time
    RUNNING = "running"  # a deployment is queued, running or waiting on a gate
    NEEDS_ATTENTION = "needs_attention"  # a person must decide (paused, lost step)
    SUCCEEDED = "succeeded"  # reached the last environment
    FAILED = "failed"
    CANCELLED = "cancelled"


class DeploymentState(StrEnum):
    QUEUED = "queued"  # waits for the service/environment lock
    RUNNING = "running"
    NEEDS_ATTENTION = "needs_attention"
    ROLLING_BACK = "rolling_back"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"


class NodeState(StrEnum):
    PENDING = "pending"  # waits on the nodes it needs
    READY = "ready"  # claimable by a worker once not_before has passed
    RUNNING = "running"  # leased by a worker
    WAITING = "waiting"  # a gate waiting on an event (an approval, a sign-off)
    NEEDS_ATTENTION = "needs_attention"  # a person must decide: retry, skip, fail
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # never ran: an earlier node failed, or a person skipped it
    CANCELLED = "cancelled"


RELEASE_TRANSITIONS: dict[ReleaseState, frozenset[ReleaseState]] = {
    ReleaseState.SCHEDULED: frozenset(
        {ReleaseState.RUNNING, ReleaseState.CANCELLED, ReleaseState.FAILED}
    ),
    ReleaseState.RUNNING: frozenset(
        {
            ReleaseState.NEEDS_ATTENTION,
            ReleaseState.SUCCEEDED,
            ReleaseState.FAILED,
            ReleaseState.CANCELLED,
        }
    ),
    ReleaseState.NEEDS_ATTENTION: frozenset(
        {ReleaseState.RUNNING, ReleaseState.FAILED, ReleaseState.CANCELLED}
    ),
    ReleaseState.SUCCEEDED: frozenset(),
    ReleaseState.FAILED: frozenset(),
    ReleaseState.CANCELLED: frozenset(),
}

DEPLOYMENT_TRANSITIONS: dict[DeploymentState, frozenset[DeploymentState]] = {
    DeploymentState.QUEUED: frozenset(
        {DeploymentState.RUNNING, DeploymentState.CANCELLED, DeploymentState.FAILED}
    ),
    DeploymentState.RUNNING: frozenset(
        {
            DeploymentState.NEEDS_ATTENTION,
            DeploymentState.ROLLING_BACK,
            DeploymentState.SUCCEEDED,
            DeploymentState.FAILED,
            DeploymentState.CANCELLED,
        }
    ),
    DeploymentState.NEEDS_ATTENTION: frozenset(
        {
            DeploymentState.RUNNING,
            DeploymentState.ROLLING_BACK,
            DeploymentState.FAILED,
            DeploymentState.CANCELLED,
        }
    ),
    DeploymentState.ROLLING_BACK: frozenset(
        {
            DeploymentState.ROLLED_BACK,
            DeploymentState.FAILED,
            DeploymentState.NEEDS_ATTENTION,
        }
    ),
    DeploymentState.SUCCEEDED: frozenset(),
    DeploymentState.FAILED: frozenset(),
    DeploymentState.ROLLED_BACK: frozenset(),
    DeploymentState.CANCELLED: frozenset(),
}

NODE_TRANSITIONS: dict[NodeState, frozenset[NodeState]] = {
    NodeState.PENDING: frozenset({NodeState.READY, NodeState.SKIPPED, NodeState.CANCELLED}),
    NodeState.READY: frozenset(
        {NodeState.RUNNING, NodeState.WAITING, NodeState.SKIPPED, NodeState.CANCELLED}
    ),
    NodeState.RUNNING: frozenset(
        {
            NodeState.READY,  # retry after a failure, or an idempotent step's lost lease
            NodeState.WAITING,  # a gate that must wait for an event
            NodeState.NEEDS_ATTENTION,
            NodeState.SUCCEEDED,
            NodeState.FAILED,
            NodeState.CANCELLED,
        }
    ),
    NodeState.WAITING: frozenset(
        {
            NodeState.READY,
            NodeState.SUCCEEDED,
            NodeState.FAILED,
            NodeState.SKIPPED,
            NodeState.CANCELLED,
        }
    ),
    NodeState.NEEDS_ATTENTION: frozenset(
        {
            NodeState.READY,
            NodeState.SUCCEEDED,
            NodeState.FAILED,
            NodeState.SKIPPED,
            NodeState.CANCELLED,
        }
    ),
    NodeState.SUCCEEDED: frozenset(),
    NodeState.FAILED: frozenset(),
    NodeState.SKIPPED: frozenset(),
    NodeState.CANCELLED: frozenset(),
}

_TABLES = {
    ReleaseState: RELEASE_TRANSITIONS,
    DeploymentState: DEPLOYMENT_TRANSITIONS,
    NodeState: NODE_TRANSITIONS,
}

TERMINAL_RELEASE = frozenset(s for s, nxt in RELEASE_TRANSITIONS.items() if not nxt)
TERMINAL_DEPLOYMENT = frozenset(s for s, nxt in DEPLOYMENT_TRANSITIONS.items() if not nxt)
TERMINAL_NODE = frozenset(s for s, nxt in NODE_TRANSITIONS.items() if not nxt)
# A node in one of these states still holds its deployment open.
OPEN_NODE = frozenset(NodeState) - TERMINAL_NODE


def can_move(current: StrEnum, target: StrEnum) -> bool:
    """True when the transition table allows ``current`` → ``target``."""
    table = _TABLES[type(current)]
    return target in table[current]  # type: ignore[index]


def check(what: str, current: StrEnum, target: StrEnum) -> None:
    """Raise :class:`IllegalTransition` unless ``current`` → ``target`` is legal."""
    if type(current) is not type(target):
        raise TypeError(f"cannot compare {type(current).__name__} with {type(target).__name__}")
    if not can_move(current, target):
        raise IllegalTransition(
            f"{what} cannot go from {current.value} to {target.value}",
            current=current.value,
            target=target.value,
        )

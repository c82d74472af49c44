"""What a deployment does next, decided from its state and its node counts alone.

Pure: no database, no clock. :func:`interlock.engine.progress.advance` reads the
counts, asks :func:`next_action`, and carries the answer out, so the rules of
"stop what cannot run, finish what is done" are unit-tested without a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from interlock.domain.states import DeploymentState, NodeState

STOPPABLE = (NodeState.PENDING, NodeState.READY, NodeState.WAITING)


@dataclass(frozen=True)
class Wait:
    """Nothing to do until a node moves."""


@dataclass(frozen=True)
class EndQueued:
    """A queued deployment that never started ends: cancelled, or failed for ``error``."""

    state: DeploymentState
    error: str | None = None


@dataclass(frozen=True)
class StopForCancel:
    """Cancel the nodes in ``stop``; with steps ``running``, ask them to stop, else end."""

    stop: tuple[NodeState, ...]
    running: bool


@dataclass(frozen=True)
class StopForFailure:
    """Skip the nodes in ``stop`` (of ``phase``); once nothing runs, follow the failure."""

    stop: tuple[NodeState, ...]
    phase: str | None
    running: bool
    rolling: bool


@dataclass(frozen=True)
class Pause:
    """A node needs a person: the deployment (and its release) wait for them."""


@dataclass(frozen=True)
class Settle:
    """Resume from a pause into ``resume`` (if set), then finish if every node is done."""

    resume: DeploymentState | None
    finish: bool
    rolling: bool


Action = Wait | EndQueued | StopForCancel | StopForFailure | Pause | Settle


def next_action(
    state: DeploymentState,
    *,
    cancel_requested: bool,
    abort_reason: str | None,
    by_phase: Mapping[tuple[str, NodeState], int],
) -> Action:
    """The one thing ``advance`` does next for a deployment not yet finished.

    ``by_phase`` counts the deployment's nodes per (phase, state); the nodes of
    the ``rollback`` phase, once there are any, are the ones that matter.
    """
    if state is DeploymentState.QUEUED:
        if cancel_requested:
            return EndQueued(DeploymentState.CANCELLED)
        if abort_reason:
            return EndQueued(DeploymentState.FAILED, abort_reason)
        return Wait()
    counts: dict[NodeState, int] = {}
    rolling: dict[NodeState, int] = {}
    for (phase, node_state), number in by_phase.items():
        counts[node_state] = counts.get(node_state, 0) + number
        if phase == "rollback":
            rolling[node_state] = number
    running = bool(counts.get(NodeState.RUNNING, 0))
    if cancel_requested and state is not DeploymentState.ROLLING_BACK:
        # (A rollback under way is never stopped half-way: it finishes first.)
        stop = tuple(s for s in (*STOPPABLE, NodeState.NEEDS_ATTENTION) if counts.get(s))
        return StopForCancel(stop, running)
    mine = rolling or counts
    if mine.get(NodeState.FAILED) or (abort_reason and not rolling):
        stop = tuple(s for s in STOPPABLE if mine.get(s))
        return StopForFailure(stop, "rollback" if rolling else None, running, bool(rolling))
    attention = mine.get(NodeState.NEEDS_ATTENTION, 0)
    paused = state is DeploymentState.NEEDS_ATTENTION
    if attention and not paused:
        return Pause()
    resume = None
    if not attention and paused:
        resume = DeploymentState.ROLLING_BACK if rolling else DeploymentState.RUNNING
    done = mine.get(NodeState.SUCCEEDED, 0) + mine.get(NodeState.SKIPPED, 0)
    finish = done == sum(mine.values())
    if resume is None and not finish:
        return Wait()
    return Settle(resume, finish, bool(rolling))

"""What a deployment does next, from its state and node counts alone (no database)."""

from __future__ import annotations

from interlock.domain.states import DeploymentState as D
from interlock.domain.states import NodeState as N
from interlock.engine.next_action import (
    EndQueued,
    Pause,
    Settle,
    StopForCancel,
    StopForFailure,
    Wait,
    next_action,
)


def decide(
    state: D,
    counts: dict[tuple[str, N], int],
    *,
    cancel: bool = False,
    abort: str | None = None,
) -> object:
    return next_action(state, cancel_requested=cancel, abort_reason=abort, by_phase=counts)


def test_a_queued_deployment_waits_until_cancelled_or_aborted() -> None:
    assert decide(D.QUEUED, {}) == Wait()
    assert decide(D.QUEUED, {}, cancel=True) == EndQueued(D.CANCELLED)
    assert decide(D.QUEUED, {}, abort="api@1 is blocked") == EndQueued(D.FAILED, "api@1 is blocked")


def test_a_running_deployment_with_steps_left_waits() -> None:
    counts = {("deploy", N.SUCCEEDED): 1, ("deploy", N.RUNNING): 1, ("deploy", N.PENDING): 2}
    assert decide(D.RUNNING, counts) == Wait()


def test_every_step_done_or_skipped_finishes_the_deployment() -> None:
    counts = {("deploy", N.SUCCEEDED): 3, ("deploy", N.SKIPPED): 1}
    assert decide(D.RUNNING, counts) == Settle(resume=None, finish=True, rolling=False)


def test_a_cancel_stops_what_has_not_run_and_ends_once_nothing_runs() -> None:
    counts = {("deploy", N.RUNNING): 1, ("deploy", N.PENDING): 2, ("deploy", N.WAITING): 1}
    assert decide(D.RUNNING, counts, cancel=True) == StopForCancel(
        (N.PENDING, N.WAITING), running=True
    )
    idle = {("deploy", N.SUCCEEDED): 1, ("deploy", N.NEEDS_ATTENTION): 1}
    assert decide(D.NEEDS_ATTENTION, idle, cancel=True) == StopForCancel(
        (N.NEEDS_ATTENTION,), running=False
    )


def test_a_rollback_under_way_is_not_cancelled_half_way() -> None:
    counts = {("deploy", N.FAILED): 1, ("rollback", N.RUNNING): 1, ("rollback", N.PENDING): 1}
    assert decide(D.ROLLING_BACK, counts, cancel=True) == Wait()


def test_a_failed_step_skips_the_rest_of_its_phase() -> None:
    counts = {("deploy", N.FAILED): 1, ("deploy", N.READY): 1, ("deploy", N.PENDING): 2}
    assert decide(D.RUNNING, counts) == StopForFailure(
        (N.PENDING, N.READY), phase=None, running=False, rolling=False
    )


def test_an_abort_stops_running_steps_even_without_a_failure() -> None:
    counts = {("deploy", N.RUNNING): 1, ("deploy", N.PENDING): 1}
    assert decide(D.RUNNING, counts, abort="its deadline passed") == StopForFailure(
        (N.PENDING,), phase=None, running=True, rolling=False
    )


def test_once_rolling_back_only_the_rollback_steps_count() -> None:
    # The deploy phase's failure is what started the rollback: it no longer decides.
    counts = {("deploy", N.FAILED): 1, ("rollback", N.SUCCEEDED): 2}
    assert decide(D.ROLLING_BACK, counts) == Settle(resume=None, finish=True, rolling=True)
    failing = {("deploy", N.FAILED): 1, ("rollback", N.FAILED): 1, ("rollback", N.PENDING): 1}
    assert decide(D.ROLLING_BACK, failing) == StopForFailure(
        (N.PENDING,), phase="rollback", running=False, rolling=True
    )


def test_a_step_needing_a_person_pauses_and_its_resolution_resumes() -> None:
    counts = {("deploy", N.NEEDS_ATTENTION): 1, ("deploy", N.PENDING): 1}
    assert decide(D.RUNNING, counts) == Pause()
    assert decide(D.NEEDS_ATTENTION, counts) == Wait()
    resolved = {("deploy", N.SUCCEEDED): 1, ("deploy", N.READY): 1}
    assert decide(D.NEEDS_ATTENTION, resolved) == Settle(
        resume=D.RUNNING, finish=False, rolling=False
    )
    rolling = {("deploy", N.FAILED): 1, ("rollback", N.SUCCEEDED): 1}
    assert decide(D.NEEDS_ATTENTION, rolling) == Settle(
        resume=D.ROLLING_BACK, finish=True, rolling=True
    )

"""Which ended steps count as stopped with the server rather than failed."""

from __future__ import annotations

import signal

from interlock.engine.worker import _stopped_by_signal
from interlock.executors.base import StepResult


def test_a_stop_signal_from_outside_counts_but_not_one_the_executor_sent():
    term = -signal.SIGTERM
    assert _stopped_by_signal(StepResult(ok=False, exit_code=term))
    assert _stopped_by_signal(StepResult(ok=False, exit_code=128 + signal.SIGTERM))
    # a timeout or a cancellation: the executor's own signal, a failure or a cancel
    assert not _stopped_by_signal(StepResult(ok=False, exit_code=term, stopped=True))
    assert not _stopped_by_signal(StepResult(ok=False, exit_code=1))
    assert not _stopped_by_signal(StepResult(ok=True, exit_code=0))

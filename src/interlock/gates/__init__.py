"""Gates: approval, check, metric, soak, window, promotion."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlock.executors.base import StepResult

if TYPE_CHECKING:
    from interlock.engine.core import Engine
    from interlock.engine.steps import Job


def evaluate(engine: Engine, job: Job) -> StepResult:
    """Evaluate a gate node once (see the gate types in this package)."""
    return StepResult(ok=False, error=f"unknown gate type {job.node.executor!r}")

"""A plug-in executor that does nothing (or waits): for pilots, drills and benchmarks.

``uses: noop`` with ``with: {seconds: 2, fail: false, message: "…"}``.
It is registered through the ``interlock.executors`` entry point group like
any third-party plug-in.
"""

from __future__ import annotations

from typing import Any

from interlock.executors.base import StepContext, StepResult


class NoopExecutor:
    def run(self, spec: dict[str, Any], ctx: StepContext) -> StepResult:
        settings = spec.get("with", {})
        seconds = float(settings.get("seconds", 0))
        message = settings.get("message")
        if message:
            ctx.log.write(f"{message}\n")
        if seconds > 0 and ctx.cancelled.wait(min(seconds, ctx.timeout)):
            return StepResult(ok=False, error="cancelled")
        if seconds > ctx.timeout:
            return StepResult(ok=False, error=f"timed out after {ctx.timeout:g}s")
        if settings.get("fail"):
            return StepResult(ok=False, exit_code=1, error="failed on purpose (fail: true)")
        return StepResult(ok=True, exit_code=0)

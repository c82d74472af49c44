"""Run a shell command in its own process group; a timeout kills the whole group.

The command comes from interlock.yaml (trusted); every value put into it
through ``{{ placeholders }}`` is shell-quoted, so a version or a name is one
shell word whatever it contains.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any

from interlock.domain.templating import render_shell
from interlock.executors.base import StepContext, StepResult


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group, then SIGKILL it after ``grace`` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class ShellExecutor:
    def run(self, spec: dict[str, Any], ctx: StepContext) -> StepResult:
        try:
            command = render_shell(spec["run"], ctx.variables)
        except KeyError as exc:
            return StepResult(ok=False, error=f"no value for placeholder {{{{ {exc.args[0]} }}}}")
        env = {**ctx.environ, **spec.get("env", {})}
        ctx.log.write(f"$ {command}\n")
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                cwd=ctx.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole
            )
        except OSError as exc:
            return StepResult(ok=False, error=f"cannot start the command: {exc}")
        assert proc.stdout is not None
        out = proc.stdout

        def pump() -> None:
            fd = out.fileno()
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                ctx.log.write(chunk.decode("utf-8", "replace"))

        reader = threading.Thread(target=pump, name="step-output", daemon=True)
        reader.start()
        deadline = time.monotonic() + ctx.timeout
        reason: str | None = None
        while True:
            try:
                proc.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            if ctx.cancelled.is_set():
                reason = "cancelled"
            elif time.monotonic() >= deadline:
                reason = f"timed out after {ctx.timeout:g}s"
            if reason:
                ctx.log.write(f"\n[interlock: {reason}; stopping the process group]\n")
                _kill_group(proc, ctx.kill_grace)
                break
        # Output still buffered in the pipe is read; a detached background child
        # that keeps the pipe open does not hold the step forever.
        reader.join(timeout=2.0)
        out.close()
        code = proc.returncode
        if reason:
            return StepResult(ok=False, exit_code=code, error=reason)
        if code != 0:
            error = f"exited with status {code}" if code > 0 else f"killed by signal {-code}"
            return StepResult(ok=False, exit_code=code, error=error)
        return StepResult(ok=True, exit_code=0)

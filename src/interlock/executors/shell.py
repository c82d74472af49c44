"""Run a shell command in its own process group; a timeout kills the whole group.

The command comes from interlock.yaml (trusted); the values of its
``{{ placeholders }}`` (a release reason, a commit, runbook params: not trusted)
never enter the script's text. Each one reaches the process as an
``INTERLOCK_ARG_*`` environment variable that the script refers to, and a shell
does not parse the value of a variable it expands (see ``render_shell``).
"""

from __future__ import annotations

import codecs
import os
import select
import signal
import subprocess
import threading
import time
from typing import Any

from interlock.domain.templating import render_shell, render_with_env
from interlock.executors.base import StepContext, StepResult
from interlock.executors.supervisor import supervised, supervisor_fds

# How long the pipe of an ended step must stay empty before its output is complete.
_DRAIN_POLL_MS = 20


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


def _step_env(declared: dict[str, str], ctx: StepContext) -> dict[str, str]:
    """A step's `env`, its ``{{ placeholders }}`` and ``${VARS}`` filled in (values as they are:
    an environment variable's value is never parsed by the shell). Secrets are masked in
    the log."""
    out: dict[str, str] = {}
    for name, template in declared.items():
        out[name], secrets = render_with_env(template, ctx.variables, ctx.env_for_references())
        ctx.log.add_secrets(secrets)
    return out


class ShellExecutor:
    def run(self, spec: dict[str, Any], ctx: StepContext) -> StepResult:
        try:
            command = render_shell(spec["run"], ctx.variables)
        except KeyError as exc:
            return StepResult(ok=False, error=f"no value for placeholder {{{{ {exc.args[0]} }}}}")
        except ValueError as exc:
            return StepResult(ok=False, error=f"cannot run the command: {exc}")
        try:
            extra = _step_env(spec.get("env", {}), ctx)
        except KeyError as exc:
            return StepResult(
                ok=False,
                error=f"no value for ${{{exc.args[0]}}} in the step's env: set the environment "
                "variable on the worker",
            )
        except ValueError as exc:  # a ${file:/path} that cannot be read
            return StepResult(ok=False, error=f"in the step's env: {exc}")
        # The references win over a step's `env` of the same name: they must hold the values.
        env = {**ctx.environ, **extra, **command.arguments}
        ctx.log.write(command.shown() + "\n")
        try:
            proc = subprocess.Popen(
                supervised(["/bin/sh", "-c", command.script], ctx.kill_grace),
                cwd=ctx.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole
                pass_fds=supervisor_fds(),  # the group also dies with this process
            )
        except OSError as exc:
            return StepResult(ok=False, error=f"cannot start the command: {exc}")
        assert proc.stdout is not None
        out = proc.stdout

        exited = threading.Event()  # the step's process has ended
        drained = threading.Event()  # all it wrote is in the log
        abandoned = threading.Event()  # a detached child kept writing: stop logging

        def pump() -> None:
            fd = out.fileno()
            # A character split across two reads is put back together, not replaced.
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            poller = select.poll()
            poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)

            def done() -> None:
                text = decoder.decode(b"", final=True)
                if text:
                    ctx.log.write(text)
                drained.set()

            try:
                while True:
                    if not drained.is_set():
                        ended = exited.is_set()  # read before the pipe is found empty
                        if not poller.poll(_DRAIN_POLL_MS):
                            if ended:
                                # The step ended before the pipe was found empty: all it
                                # wrote was read. A detached child may still hold the pipe.
                                done()
                            continue
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:
                        chunk = b""
                    if drained.is_set() or abandoned.is_set():
                        # What a leftover child writes later is not the step's; it is
                        # still read (and dropped) so the child is not killed by SIGPIPE.
                        if not chunk:
                            return
                        continue
                    text = decoder.decode(chunk, final=not chunk)
                    if text:
                        ctx.log.write(text)
                    if not chunk:
                        drained.set()
                        return
            finally:
                drained.set()
                # Closed here, by the only reader: closed under a blocked read, the
                # descriptor's number could be reused and the read take someone else's data.
                out.close()

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
        # that keeps the pipe open does not hold the step: once the pipe is empty the
        # step is done (and a child that keeps writing holds it 2 s at most).
        exited.set()
        if not drained.wait(timeout=2.0):
            abandoned.set()
        code = proc.returncode
        if reason:
            return StepResult(ok=False, exit_code=code, error=reason, stopped=True)
        if code != 0:
            error = f"exited with status {code}" if code > 0 else f"killed by signal {-code}"
            return StepResult(ok=False, exit_code=code, error=error)
        return StepResult(ok=True, exit_code=0)

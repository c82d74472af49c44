"""The leader of a shell step's process group: the group dies with the process that started it.

``python -I -S supervisor.py LIFELINE GRACE COMMAND…`` runs COMMAND as its
child, in the process group it leads, and waits for whichever comes first:

- COMMAND ends: the supervisor ends the same way (the same exit status, or
  killed by the same signal), so the executor sees what it would have seen;
- LIFELINE (the read end of a pipe whose write end only the server holds)
  reaches end-of-file: the server is gone, however it went (``kill -9``, the
  OOM killer, a crash). The supervisor sends SIGTERM to its whole group, then
  SIGKILL after GRACE seconds (or as soon as COMMAND has ended), itself
  included.

Why a process and not ``prctl(PR_SET_PDEATHSIG)`` in a ``preexec_fn``: the
death signal reaches only the direct child, not the commands a step's shell
starts; it fires when the forking *thread* ends, not the process; it is
Linux-only; and a ``preexec_fn`` runs Python between ``fork`` and ``exec`` in
a multi-threaded server, which the ``subprocess`` documentation warns can
deadlock. The lifeline has no race either: if the server is already dead when
the supervisor starts, the pipe is at end-of-file at once.

Signals sent to the group (a timeout, a cancellation, the server's shutdown)
reach COMMAND directly; the supervisor itself only waits for it to end. It
imports nothing of Interlock, so it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from types import FrameType

# -- in the server ----------------------------------------------------------------
_SCRIPT = os.path.abspath(__file__)
_lifeline: tuple[int, int] | None = None  # (read, write); the write end is never written
_lifeline_lock = threading.Lock()


def _forget_lifeline() -> None:
    """In a child forked without exec: its copy must not keep the server's steps alive."""
    global _lifeline, _lifeline_lock
    _lifeline_lock = threading.Lock()  # another thread may have held it at the fork
    if _lifeline is not None:
        for fd in _lifeline:
            try:
                os.close(fd)
            except OSError:
                pass
        _lifeline = None


def lifeline() -> int:
    """The read end of this process's lifeline: at end-of-file once the process is gone.

    Both ends are close-on-exec, so no other child inherits them; the read end
    goes to each supervisor through ``pass_fds``.
    """
    global _lifeline
    with _lifeline_lock:
        if _lifeline is None:
            _lifeline = os.pipe()
            os.register_at_fork(after_in_child=_forget_lifeline)
        return _lifeline[0]


def _can_supervise() -> bool:
    # An embedded interpreter, or a frozen or zipped application, cannot run this
    # file with ``python -I -S``: its steps run unsupervised, as before.
    return bool(sys.executable) and not getattr(sys, "frozen", False) and os.path.isfile(_SCRIPT)


def supervised(argv: list[str], grace: float) -> list[str]:
    """``argv`` run under a supervisor (with ``pass_fds=supervisor_fds()``)."""
    if not _can_supervise():
        return argv
    return [sys.executable, "-I", "-S", _SCRIPT, str(lifeline()), f"{grace:g}", *argv]


def supervisor_fds() -> tuple[int, ...]:
    """The descriptors a supervised command must be given."""
    return (lifeline(),) if _can_supervise() else ()


# -- in the supervisor ------------------------------------------------------------
# Signals meant for the step: the supervisor catches them (a handler, not
# SIG_IGN, which the command would inherit) and waits for the step to end.
_FOR_THE_STEP = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
_IGNORED_BY_PYTHON = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD)


def _nothing(signum: int, frame: FrameType | None) -> None:
    """A handler that only interrupts the wait (through the wake-up pipe)."""


def _end_like(status: int) -> int:
    """End this process as the child ended: by the same signal, or with its exit code."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the child's core, not ours
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), sig)
        return 128 + sig  # a signal that does not end a process: an exit code says which
    return os.waitstatus_to_exitcode(status)


def supervise(lifeline: int, grace: float, command: list[str]) -> int:
    """Run ``command`` until it ends or ``lifeline`` closes; return its exit status."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, _nothing)
    for sig in _FOR_THE_STEP:
        signal.signal(sig, _nothing)
    try:
        # Python ignores SIGPIPE and SIGXFSZ; an ignored signal stays ignored across
        # exec, so put them back, or `yes | head -1` would complain of a broken pipe.
        child = os.posix_spawnp(
            command[0], command, os.environ, setsigdef=(*_IGNORED_BY_PYTHON, *_FOR_THE_STEP)
        )
    except OSError as exc:
        os.write(2, f"interlock: cannot start {command[0]}: {exc.strerror}\n".encode())
        return 127
    try:
        return _wait(child, lifeline, wake_read, grace)
    except BaseException:  # never leave the step running unsupervised
        os.killpg(0, signal.SIGKILL)
        raise


def _wait(child: int, lifeline: int, wake_read: int, grace: float) -> int:
    # poll(2), not select(2): the lifeline's number may be past select's 1024.
    poller = select.poll()
    poller.register(wake_read, select.POLLIN)
    poller.register(lifeline, select.POLLIN)
    deadline: float | None = None  # set once the server is gone
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid == child:
            if deadline is not None:
                os.killpg(0, signal.SIGKILL)  # what the step left behind, and this process
            return _end_like(status)
        timeout: float | None = None
        if deadline is not None:
            timeout = max(0.0, deadline - time.monotonic())
            if not timeout:
                os.killpg(0, signal.SIGKILL)  # the grace is over: the group, this process too
        ready = {fd for fd, _ in poller.poll(None if timeout is None else timeout * 1000)}
        if wake_read in ready:
            os.read(wake_read, 512)
        if lifeline in ready:  # no one ever writes to it: end-of-file, the server is gone
            poller.unregister(lifeline)
            deadline = time.monotonic() + grace
            os.killpg(0, signal.SIGTERM)


def main(argv: list[str]) -> int:
    lifeline, grace, command = int(argv[0]), float(argv[1]), argv[2:]
    os.set_inheritable(lifeline, False)  # the step's own processes do not need it
    return supervise(lifeline, grace, command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

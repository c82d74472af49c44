"""The supervisor that leads a shell step's process group: it ends as the step ends, and
takes the whole group down when the process that started it is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from interlock.executors import supervisor
from interlock.executors.supervisor import supervised, supervisor_fds
from tests.helpers import process_alive, wait_for

SCRIPT = supervisor.__file__


def _run(script: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        supervised(["/bin/sh", "-c", script], 1.0),
        pass_fds=supervisor_fds(),
        start_new_session=True,
    )


def _on_lifeline(fd: int, grace: str, script: str) -> subprocess.Popen[bytes]:
    """A supervisor watching ``fd`` as its lifeline, running ``script``."""
    return subprocess.Popen(
        [sys.executable, "-I", "-S", SCRIPT, str(fd), grace, "/bin/sh", "-c", script],
        pass_fds=(fd,),
        start_new_session=True,
    )


def test_it_ends_as_the_command_ends():
    assert _run("exit 3").wait(10) == 3
    assert _run("true").wait(10) == 0
    assert _run("kill -TERM $$").wait(10) == -signal.SIGTERM


def test_a_command_that_cannot_start_exits_127():
    proc = subprocess.Popen(
        supervised(["/nonexistent/command"], 1.0),
        pass_fds=supervisor_fds(),
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 127 and b"cannot start /nonexistent/command" in err


def test_a_signal_to_the_group_reaches_the_command_and_its_handler(tmp_path):
    ready = tmp_path / "ready"
    proc = _run(f"trap 'echo term > {tmp_path}/got; exit 9' TERM; touch {ready}; sleep 30 & wait")
    wait_for(ready.exists, 10, 0.01, message="the trap to be set")
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(10) == 9
    assert (tmp_path / "got").read_text() == "term\n"


def test_the_group_dies_when_the_lifeline_closes(tmp_path):
    """The server's death, seen as the end of a pipe only it could write to."""
    read, write = os.pipe()
    proc = _on_lifeline(read, "1", f"sleep 30 & echo $$ $! > {tmp_path}/pids; wait")
    os.close(read)
    pids = wait_for(
        lambda: (tmp_path / "pids").exists() and (tmp_path / "pids").read_text().split(),
        message="the command to start",
    )
    os.close(write)
    assert proc.wait(10) == -signal.SIGKILL
    wait_for(lambda: not [p for p in pids if process_alive(int(p))], 5, message="the group to die")


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    read, write = os.pipe()
    proc = _on_lifeline(
        read, "0.5", f"trap '' TERM; echo $$ > {tmp_path}/pid; while :; do sleep 0.1; done"
    )
    os.close(read)
    pid = int(wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text()))
    started = time.monotonic()
    os.close(write)
    assert proc.wait(10) == -signal.SIGKILL
    assert 0.4 < time.monotonic() - started < 5
    wait_for(lambda: not process_alive(pid), 5, message="the command to die")


def test_a_step_gets_default_signal_dispositions(tmp_path):
    """Python ignores SIGPIPE; a step must not inherit that (`yes | head -1` stays quiet)."""
    out = tmp_path / "out"
    script = f"grep -E '^SigIgn' /proc/self/status > {out}; yes | head -n1 >> {out} 2>&1"
    assert _run(script).wait(10) == 0
    ignored, first = out.read_text().splitlines()[:2]
    mask = int(ignored.split()[1], 16)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD):
        assert not mask & (1 << (sig - 1)), (sig, ignored)
    assert first == "y" and "Broken pipe" not in out.read_text()


def test_a_lifeline_past_descriptor_1024_still_watches(tmp_path):
    """The server may hold thousands of descriptors; select() stops at 1024, poll() does not."""
    high = 1500
    read, write = os.pipe()
    os.dup2(read, high)
    os.close(read)
    try:
        pid = tmp_path / "pid"
        proc = _on_lifeline(high, "0.5", f"echo $$ > {pid}.new; mv {pid}.new {pid}; sleep 30")
        wait_for(pid.exists, 10, 0.01, message="the step to start")
        assert proc.poll() is None  # it did not crash on the descriptor's number
        os.close(write)  # the "server" is gone
        proc.wait(10)
        step = int(pid.read_text())
        wait_for(lambda: not process_alive(step), 5, message="the step to die with it")
    finally:
        os.close(high)
        try:
            os.close(write)
        except OSError:
            pass

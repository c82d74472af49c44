"""Stopping the server (SIGTERM, SIGINT, kill -9) while a step runs: no orphans, no double runs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS
from tests.helpers import process_alive, wait_for, write_config
from tests.support.server import INTERLOCK, Server

# The first run starts a `sleep 30` in the background (a grandchild of the step's
# process group leader) and waits for it; later runs are quick. Every run is
# counted in runs.log; the PIDs of the shell and its sleep go to pids.
CONFIG = """\
version: 1
environments: [{{name: staging}}]
services:
  slow:
    deploy:
      - name: wait
        run: >-
          echo run >> runs.log;
          if [ "$(wc -l < runs.log)" -eq 1 ]; then
          sleep {seconds} & echo "$$ $!" >> pids; wait; echo end >> runs.log; fi
        idempotent: {idempotent}
"""


def _runs(project: Path) -> list[str]:
    path = project / "runs.log"
    return path.read_text().splitlines() if path.exists() else []


def _pids(project: Path) -> list[int]:
    path = project / "pids"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _start_step(project: Path, server: Server, *, idempotent: bool, seconds: int = 30) -> str:
    write_config(
        project,
        CONFIG.format(idempotent="true" if idempotent else "false", seconds=seconds),
    )
    server.env.setdefault("INTERLOCK_DRAIN", "1")
    server.start()
    release_id = server.create("slow@3.0.0", reason="shutdown test")  # set-up: no CLI run
    wait_for(lambda: len(_pids(project)) == 2, message="the step to start")
    return release_id


def _stop(server: Server, sig: int) -> float:
    """Send ``sig`` to the server; return how long it took to exit."""
    assert server.process is not None
    started = time.monotonic()
    server.process.send_signal(sig)
    server.process.wait(30)
    return time.monotonic() - started


def _step(server: Server, release_id: str) -> Any:
    return server.release(release_id)["deployments"][0]["steps"][0]


# SIGINT (Ctrl-C) is handled as SIGTERM is, whatever the database: on the first backend
# only (the recovery after the restart, which does depend on it, runs on each with SIGTERM).
@pytest.mark.parametrize(
    ("sig", "backend"),
    [(signal.SIGTERM, b) for b in BACKENDS] + [(signal.SIGINT, b) for b in BACKENDS[:1]],
    indirect=["backend"],
)
def test_a_stopped_server_kills_its_steps_and_runs_an_idempotent_one_once_more(
    project, server, sig
):
    release_id = _start_step(project, server, idempotent=True)
    # A client long-polling the release must not hold the shutdown up.
    watch = subprocess.Popen(
        [INTERLOCK, "release", "watch", release_id, "--timeout", "60"],
        cwd=project,
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        took = _stop(server, sig)
        # Its long-poll is answered as the server stops (not cut off with a 500), and
        # its next one finds no server: exit 3, "cannot reach".
        _, watched = watch.communicate(timeout=20)
    finally:
        watch.kill()
        watch.wait()
    # (refused, or cut as the server closed: either way "cannot reach/talk to", exit 3)
    assert watch.returncode == 3 and "Traceback" not in watched, watched
    assert "Traceback" not in server.log() and "CancelledError" not in server.log()
    # The watch's request gets 2 s, the step 1 s (INTERLOCK_DRAIN), then it is stopped at
    # once (sleep ends on SIGTERM). It used to take 20 s, with the step left running.
    assert took < 8, f"the server took {took:.1f}s to stop:\n{server.log()}"
    assert server.process is not None and server.process.returncode == 0
    assert not [p for p in _pids(project) if process_alive(p)], server.log()
    assert "stopped slow/wait at shutdown: now ready" in server.log()

    server.start()
    done = server.cli("release", "watch", release_id, "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr + server.log()
    assert _runs(project) == ["run", "run"]  # once more, and only once
    assert [a["outcome"] for a in _step(server, release_id)["attempts"]] == ["lost", "succeeded"]
    assert server.cli("audit", "verify").returncode == 0


def test_a_stopped_server_leaves_a_non_idempotent_step_for_a_person(project, server):
    release_id = _start_step(project, server, idempotent=False)
    took = _stop(server, signal.SIGTERM)
    assert took < 6, f"the server took {took:.1f}s to stop:\n{server.log()}"
    assert not [p for p in _pids(project) if process_alive(p)], server.log()

    server.start()
    watch = server.cli("release", "watch", release_id, "--timeout", "60")
    assert watch.returncode == 7, watch.stdout + watch.stderr + server.log()
    step = _step(server, release_id)
    assert step["state"] == "needs_attention" and "not idempotent" in step["error"]
    assert _runs(project) == ["run"]


def test_a_step_signalled_with_the_server_is_stopped_not_failed(project, server):
    """systemd's default KillMode=control-group sends SIGTERM to every process of the
    unit at once: the step dies during the drain, and must not count as a failure."""
    server.env["INTERLOCK_DRAIN"] = "5"
    release_id = _start_step(project, server, idempotent=False)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    for pid in _pids(project):  # the step's shell and its sleep, as the service manager does
        os.kill(pid, signal.SIGTERM)
    server.process.wait(30)
    assert not [p for p in _pids(project) if process_alive(p)], server.log()

    server.start()
    watch = server.cli("release", "watch", release_id, "--timeout", "60")
    assert watch.returncode == 7, watch.stdout + watch.stderr + server.log()
    step = _step(server, release_id)
    assert step["state"] == "needs_attention", step  # not failed (and no rollback)
    assert [a["outcome"] for a in step["attempts"]] == ["lost"]


def test_a_step_that_ends_within_the_drain_time_completes(project, server):
    write_config(project, CONFIG.format(idempotent="false", seconds=2))
    server.start("--drain", "20")
    release_id = server.create("slow@3.0.0", reason="drain")
    wait_for(lambda: len(_pids(project)) == 2, message="the step to start")
    took = _stop(server, signal.SIGTERM)
    assert took < 10, server.log()
    assert _runs(project) == ["run", "end"]

    server.start()
    shown = server.release(release_id)
    assert shown["state"] == "succeeded", shown
    assert [a["outcome"] for a in shown["deployments"][0]["steps"][0]["attempts"]] == ["succeeded"]


@pytest.mark.parametrize("idempotent", [True, False])
def test_kill_9_of_the_server_kills_its_steps(project, server, idempotent):
    release_id = _start_step(project, server, idempotent=idempotent)
    pids = _pids(project)
    server.kill()
    # The step's shell and its background sleep (not only the group's leader).
    wait_for(
        lambda: not [p for p in pids if process_alive(p)], 10, message="the step's processes to die"
    )

    server.start()
    watch = server.cli("release", "watch", release_id, "--timeout", "60")
    if idempotent:
        assert watch.returncode == 0, watch.stdout + watch.stderr + server.log()
        assert _runs(project) == ["run", "run"]
    else:
        assert watch.returncode == 7, watch.stdout + watch.stderr + server.log()
        time.sleep(1)
        assert _runs(project) == ["run"]  # the first run never reached its end


def test_the_drain_time_is_shown_in_the_help():
    shown = subprocess.run(
        [INTERLOCK, "server", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--drain" in shown and "INTERLOCK_DRAIN" in shown


def test_a_second_signal_cuts_the_drain_short(project, server):
    server.env["INTERLOCK_DRAIN"] = "60"
    release_id = _start_step(project, server, idempotent=True)
    assert server.process is not None
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    wait_for(lambda: "waiting up to 60s" in server.log(), message="the drain to start")
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(30)
    assert time.monotonic() - started < 8, server.log()
    assert not [p for p in _pids(project) if process_alive(p)], server.log()
    server.start()
    done = server.cli("release", "watch", release_id, "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr + server.log()
    assert _runs(project) == ["run", "run"]

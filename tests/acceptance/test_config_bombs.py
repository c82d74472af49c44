"""A reload with a hostile interlock.yaml keeps the old config; the server answers and stops."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import one_backend
from tests.helpers import wait_for, write_config
from tests.support.server import INTERLOCK, Server, free_port

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "true"}]}
"""

LAUGHS = ['    l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'] + [
    f"    l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 10)
]
# Valid but for its aliases: ~390 million values once expanded (used to take 2 GiB and end
# in "MemoryError ... this is a bug").
BOMB = CONFIG.replace(
    '{deploy: [{name: one, run: "true"}]}',
    "\n    deploy:\n      - name: one\n        uses: noop\n        with:\n"
    + "\n".join("      " + line for line in LAUGHS)
    + "\n          all: *l9",
)
RECURSIVE = "version: 1\nenvironments: &e [*e]\n"


def peak_memory_mib(server: Server) -> int:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    [line] = [row for row in status.splitlines() if row.startswith("VmHWM:")]
    return int(line.split()[1]) // 1024


@one_backend  # a YAML parser's limits: no database in it
def test_a_bomb_reload_by_api_or_sighup_keeps_the_config_and_the_server(project, server):
    path = write_config(project, CONFIG)
    server.start()
    assert server.json("config", "show")["version"] == 1

    path.write_text(BOMB)
    refused = server.cli("config", "reload")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "interlock.yaml:" in refused.stderr and "alias bomb" in refused.stderr
    assert "Traceback" not in refused.stderr and "this is a bug" not in refused.stderr

    path.write_text(RECURSIVE)
    server.process.send_signal(signal.SIGHUP)
    wait_for(
        lambda: "recursive alias" in server.log(), timeout=30, message="the refused SIGHUP reload"
    )
    path.write_text(BOMB)
    server.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "alias bomb" in server.log(), timeout=30, message="the second refusal")

    assert server.json("config", "show")["version"] == 1  # the old config stays active
    rejected = server.json("audit", "log", "--action", "config.rejected")
    assert len(rejected) == 3
    assert peak_memory_mib(server) < 400
    created = server.release(server.create("api@1.0.0", reason="T-1: still works"))
    assert created["environments"] == ["staging"]

    server.stop()
    assert server.process.returncode == 0
    assert "Traceback" not in server.log() and "MemoryError" not in server.log()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            CONFIG.replace("staging", "stag\x00ing").encode(),
            "interlock.yaml:2:27: (top level): the character U+0000",
        ),
        (
            CONFIG.encode().replace(b"api", b"\xe9pi"),
            "interlock.yaml:4:3: (top level): this is not UTF-8 text",
        ),
        (b"", "interlock.yaml:1:1: (top level): the file is empty"),
        (b"- version: 1\n", "interlock.yaml:1:1: (top level): the top level must be a mapping"),
        (RECURSIVE.encode(), "interlock.yaml:2:15: environments[0]: a recursive alias"),
        (BOMB.encode(), "alias bomb"),
    ],
)
def test_validate_names_the_place_of_a_hostile_file(project, data, message):
    (project / "interlock.yaml").write_bytes(data)
    for command in (["validate"], ["server", "--port", str(free_port())]):
        done = subprocess.run(
            [INTERLOCK, *command],
            cwd=project,
            env={**os.environ, "INTERLOCK_HOME": str(project / ".interlock")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr
        assert "this is a bug" not in done.stderr and "Traceback" not in done.stderr


def test_validate_refuses_a_directory(project):
    (project / "interlock.yaml").mkdir()
    done = subprocess.run(
        [INTERLOCK, "validate"], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "is a directory" in done.stderr, done.stderr

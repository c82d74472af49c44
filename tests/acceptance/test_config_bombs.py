"""A reload with a hostile interlock.yaml keeps the old config; the server answers and stops."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.helpers import wait_for, write_config
from tests.support.server import Server

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
    created = server.json("release", "create", "api@1.0.0", "--reason", "T-1: still works")
    assert created["environments"] == ["staging"]

    server.stop()
    assert server.process.returncode == 0
    assert "Traceback" not in server.log() and "MemoryError" not in server.log()

"""An operator cannot lock everyone out by editing interlock.yaml: reload, SIGHUP, start."""

from __future__ import annotations

import signal

from tests.acceptance.conftest import one_backend
from tests.helpers import wait_for, write_config

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: roll-out, run: "true"}]}
"""


@one_backend  # config validation against the roles: no database behaviour in it
def test_a_reload_that_removes_the_only_admin_keeps_the_old_config(project, server):
    write_config(project, CONFIG.replace("version: 1", "version: 1\nroles: {admin: [ops]}"))
    server.start()
    ops = server.user("ops")  # set-up: through the API
    # the first start's admin steps down: ops, an admin by the config alone, is the last
    assert server.cli("role", "remove", "admin", "admin", INTERLOCK_TOKEN=ops).returncode == 0
    write_config(project, CONFIG)

    refused = server.cli("config", "reload", INTERLOCK_TOKEN=ops)
    assert refused.returncode == 6, refused.stderr  # a conflict
    assert "no longer names ops" in refused.stderr and "interlock role add admin" in refused.stderr
    assert "Traceback" not in refused.stderr

    server.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reload refused" in server.log(), message="the refusal logged")
    assert "no longer names ops" in server.log() and "Traceback" not in server.log()
    assert server.json("config", "show", INTERLOCK_TOKEN=ops)["version"] == 1
    assert server.json("user", "me", INTERLOCK_TOKEN=ops)["roles"] == ["admin"]

    # nor does a server start with it
    server.stop()
    server.start(wait=False)
    assert server.process.wait(120) == 6  # an upper bound: it exits at start
    assert server.log().count("no longer names ops") == 2 and "Traceback" not in server.log()
    write_config(project, CONFIG.replace("version: 1", "version: 1\nroles: {admin: [ops]}"))
    server.start()

    # another admin first, as the answer says: then the same file loads on SIGHUP
    assert server.cli("role", "add", "admin", "admin", INTERLOCK_TOKEN=ops).returncode == 0
    write_config(project, CONFIG)
    server.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded: version 2" in server.log(), message="the reload")
    assert server.json("config", "show")["version"] == 2

"""Several API servers on one PostgreSQL database, and the schema check at start-up."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from interlock.storage.db import Database
from interlock.storage.migrate import head_revision, upgrade
from tests.helpers import write_config
from tests.support.server import INTERLOCK, Server, free_port
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.postgres

CONFIG = """\
version: 1
environments: [{name: staging}, {name: production}]
services:
  api:
    deploy:
      - {name: build, run: "echo api {{ version }} {{ environment }} >> ran.log", idempotent: true}
      - {name: roll-out, run: "echo rolled >> ran.log"}
  db:
    deploy:
      - {name: migrate, run: "echo db {{ version }} {{ environment }} >> ran.log"}
"""

WEB = """\
  web:
    deploy:
      - {name: publish, run: "echo web {{ version }} {{ environment }} >> ran.log"}
"""


def _servers(tmp_path: Path, url: str) -> list[Server]:
    servers = []
    for name in ("a", "b"):
        directory = tmp_path / name
        directory.mkdir()
        write_config(directory, CONFIG)
        servers.append(Server(directory, url))
    return servers


def _share_admin_token(*servers: Server) -> None:
    """The first server to start wrote the admin token in its home; every CLI uses it."""
    found = [s.workdir / ".interlock" / "admin.token" for s in servers]
    [token] = [p.read_text().strip() for p in found if p.exists()]
    for server in servers:
        server.env["INTERLOCK_TOKEN"] = token


def test_two_servers_share_releases_and_the_active_config(tmp_path, pg_database_url):
    a, b = _servers(tmp_path, pg_database_url)
    try:
        # Started together on an empty config table: both store the same file.
        a.start("--workers", "2", wait=False)
        b.start("--workers", "2", wait=False)
        a.wait_ready()
        b.wait_ready()
        _share_admin_token(a, b)
        assert a.api("GET", "/config")["version"] == 1
        assert b.api("GET", "/config")["version"] == 1

        ids = []
        for i, (here, ref) in enumerate([(a, "api@1.0"), (b, "db@1.0"), (a, "api@1.1")]):
            ids.append(here.create(ref, reason=f"T-{i}"))  # set-up: through the API
        for i, release_id in enumerate(ids):
            other = (b, a)[i % 2]  # watch it on the server that did not create it
            watch = other.cli("release", "watch", release_id, "--timeout", "60")
            assert watch.returncode == 0, watch.stdout + watch.stderr + a.log() + b.log()
        listed = {r["id"] for r in b.api("GET", "/releases")["items"]}
        assert {int(i) for i in ids} <= listed

        # A reload on one server is the active config of every server.
        (a.workdir / "interlock.yaml").write_text(CONFIG + WEB)
        reloaded = a.json("config", "reload")
        assert reloaded["version"] == 2 and reloaded["changed"] is True
        assert b.json("config", "show")["version"] == 2
        created = b.cli("release", "create", "web@2.0", "--reason", "T-web")
        assert created.returncode == 0, created.stderr
        watch = a.cli("release", "watch", created.stdout.strip(), "--timeout", "60")
        assert watch.returncode == 0, watch.stdout + watch.stderr

        assert a.api("GET", "/audit/verify")["ok"] and b.api("GET", "/audit/verify")["ok"]
        runs = (a.workdir / "ran.log").read_text().splitlines() + (
            (b.workdir / "ran.log").read_text().splitlines()
            if (b.workdir / "ran.log").exists()
            else []
        )
    finally:
        a.stop()
        b.stop()
    # Every step ran once, on one server or the other (each runs steps in its own directory).
    assert sorted(runs).count("rolled") == 4
    assert sum(1 for r in runs if r.startswith("web 2.0")) == 2
    assert "loaded as version 1 (unchanged)" in a.log() + b.log()


def _run(*args: str, url: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "INTERLOCK_DATABASE_URL": url, "INTERLOCK_HOME": str(cwd / ".il")}
    return subprocess.run(
        [INTERLOCK, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_server_and_worker_refuse_an_out_of_date_schema_and_say_what_to_run(
    tmp_path, empty_pg_database_url
):
    url = empty_pg_database_url
    write_config(tmp_path, CONFIG)
    db = Database(url)
    try:
        upgrade(db, "0001")
    finally:
        db.dispose()
    head = head_revision()
    assert head != "0001", "this test needs a migration after 0001"

    port = str(free_port())
    refused = _run("server", "--port", port, url=url, cwd=tmp_path)
    assert refused.returncode == 1, refused.stderr
    assert "at revision 0001" in refused.stderr and head in refused.stderr
    assert "interlock db upgrade" in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("error: the schema of the database")
    assert "Traceback" not in refused.stderr

    worker = _run("worker", url=url, cwd=tmp_path)
    assert worker.returncode == 1, worker.stderr
    assert "interlock db upgrade" in worker.stderr and "Traceback" not in worker.stderr

    upgraded = _run("db", "upgrade", url=url, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"to {head}" in upgraded.stdout

    server = Server(tmp_path, url)
    try:
        server.start("--workers", "0")
        assert httpx.get(f"{server.url}/readyz").json()["database"] == "postgresql"
        started = WorkerProcess(tmp_path, url, "--concurrency", "1").start()
        started.stop()
    finally:
        server.stop()


def test_a_worker_refuses_an_empty_database(tmp_path, empty_pg_database_url):
    refused = _run("worker", url=empty_pg_database_url, cwd=tmp_path)
    assert refused.returncode == 1
    assert "no Interlock schema" in refused.stderr and "interlock db upgrade" in refused.stderr

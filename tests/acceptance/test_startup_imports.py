"""`interlock server` loads only what serving needs: every acceptance test pays its start-up.

The server runs as a user runs it, in its own process; on its way out it writes the
names of the modules it loaded, and the test reads them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import write_config
from tests.support.server import Server

CONFIG = """\
version: 1
environments:
  - name: staging
services:
  api:
    deploy:
      - name: roll-out
        run: echo "deploying {{ service }} {{ version }}"
"""

# Run `interlock server` in this interpreter; at exit, list sys.modules in the file argv[1].
SERVER_LISTING_MODULES = (
    "import atexit, sys; "
    "out = sys.argv.pop(1); "
    "atexit.register(lambda: open(out, 'w').write('\\n'.join(sorted(sys.modules)))); "
    "from interlock.cli.main import cli; cli(prog_name='interlock')"
)


def modules_of_a_server(project: Path, database_url: str) -> set[str]:
    write_config(project, CONFIG)
    listing = project / "modules.txt"
    server = Server(project, database_url)
    with server.log_path.open("ab") as log:
        server.process = subprocess.Popen(
            [sys.executable, "-c", SERVER_LISTING_MODULES, str(listing)]
            + ["server", "--port", str(server.port), "--lease-ttl", "3"],
            cwd=project,
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        server.wait_ready()
        assert server.json("status") is not None  # it serves the API, not just /readyz
    finally:
        server.stop()
    assert server.process.returncode == 0, server.log()
    return set(listing.read_text().split())


def test_a_server_without_sso_loads_no_oidc_or_crypto_library(project, database_url):
    loaded = modules_of_a_server(project, database_url)

    assert "interlock.api.app" in loaded  # the listing is of a real server
    assert not {m for m in loaded if m.split(".")[0] in ("authlib", "joserfc", "cryptography")}
    # Without a freeze calendar, nor a calendar feed asked for, no iCalendar parser.
    assert "icalendar" not in loaded
    # The schema's head revision is read without loading Alembic or the migrations.
    assert not {m for m in loaded if m.split(".")[0] == "alembic"}


def test_server_help_and_a_refused_option_load_no_web_or_database_library(tmp_path):
    """`interlock server --help`, `worker --help` and a bad option answer without loading
    what serving needs (it was half a CPU second of imports, paid by every such answer)."""
    heavy = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "pydantic")
    for args in (["server", "--help"], ["worker", "--help"], ["server", "--port", "0"]):
        listing = tmp_path / "modules.txt"
        done = subprocess.run(
            [sys.executable, "-c", SERVER_LISTING_MODULES, str(listing), *args],
            cwd=tmp_path,
            env={**os.environ, "INTERLOCK_HOME": str(tmp_path / "home")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == (2 if "--port" in args else 0), done.stderr
        loaded = set(listing.read_text().split())
        assert "interlock.cli.serve" in loaded  # the listing is of the command's module
        assert not {m for m in loaded if m.split(".")[0] in heavy}, args

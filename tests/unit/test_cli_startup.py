"""`interlock --help` stays fast: the heavy libraries load only in the commands that use them."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("fastapi", "sqlalchemy", "httpx", "pydantic", "uvicorn", "rich", "yaml", "psycopg")


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from interlock.cli.main import cli; "
        "cli.main(['--help'], standalone_mode=False); "
        f"print('heavy:', ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "heavy:"
    assert "release" in out.stdout and "approve" in out.stdout


def test_a_command_that_calls_the_server_loads_no_module_it_does_not_use():
    # httpx's own CLI (pygments, rich.syntax, rich.progress) is a third of its import time;
    # annotated_types (the bounds of config and API models) takes 25 ms more.
    code = (
        "import sys; from interlock.cli.main import cli; "
        "import interlock.cli.releases, interlock.cli.insight, interlock.cli.status; "
        "from interlock.domain.durations import format_duration; format_duration(90); "
        "print('loaded:', ','.join(m for m in "
        "('pygments', 'rich.syntax', 'rich.progress', 'annotated_types') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "loaded:"


def test_a_client_of_an_http_server_reads_no_ca_bundle(monkeypatch):
    from interlock.cli.client import Client

    # httpx reads the CA bundle named here for every verifying client it builds.
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca-bundle.pem")
    Client("http://127.0.0.1:9").close()  # no bundle read: nothing to fail
    with pytest.raises(OSError):
        Client("https://127.0.0.1:9")  # https:// still verifies with the bundle


def test_the_collector_runs_again_once_a_command_is_imported(monkeypatch):
    import gc

    import click

    from interlock.cli import main

    assert gc.isenabled()
    group = main.cli
    assert isinstance(group, click.Group)
    ctx = click.Context(group)
    assert group.get_command(ctx, "status") is not None
    assert gc.isenabled()
    monkeypatch.setitem(main.COMMANDS, "broken", ("interlock.cli.no_such_module:x", "-"))
    with pytest.raises(ModuleNotFoundError):
        group.get_command(ctx, "broken")
    assert gc.isenabled()

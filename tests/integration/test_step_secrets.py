"""Secrets in a step's output, read through the API's views and from the database file.

A secret is masked however the pipe cuts the output (one write larger than
the pipe's buffer, a progress bar's few characters at a time), and a
variable named in ``secrets:`` is masked when a step prints it natively.
"""

from __future__ import annotations

import sys

from interlock.domain.states import ReleaseState
from interlock.engine import views
from tests.helpers import running, wait_release_end

SECRET = "zq-Secret-7f3a9c2e51"
PY = sys.executable


def _logs(pilot, release_id: int) -> str:
    nodes = views.release_view(pilot.engine, release_id).deployments[0].nodes
    return "\n".join(views.step_log(pilot.engine, node.id)[2] for node in nodes)


def _run(pilot, steps: str, **config: str) -> tuple[object, str]:
    extra = "".join(f"{key}: {value}\n" for key, value in config.items())
    pilot.config(
        "version: 1\nenvironments: [{name: staging}]\n" + extra + "services:\n  api:\n"
        "    deploy:\n" + steps
    )
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, pilot.release("api@1.0").id)
    return done, _logs(pilot, done.id)


def _database_holds(pilot, value: str) -> bool:
    """The value in any row of any table (logs, errors, results, audit events)."""
    from interlock.storage.schema import metadata

    with pilot.engine.db.read() as tx:
        rows = [row for table in metadata.sorted_tables for row in tx.conn.execute(table.select())]
    return any(value in str(cell) for row in rows for cell in row)


def test_a_secret_after_a_write_larger_than_the_pipe_buffer_is_masked(pilot, monkeypatch):
    monkeypatch.setenv("DEPLOY_KEY", SECRET)
    write = "import os; os.write(1, ('x' * 65533 + os.environ['KEY'] + ' done\\n').encode())"
    done, log = _run(
        pilot,
        f'      - name: big\n        run: {PY} -c "{write}"\n'
        '        env: {KEY: "${DEPLOY_KEY}"}\n',
    )
    assert done.state is ReleaseState.SUCCEEDED
    assert "*** done" in log and SECRET not in log and SECRET[:8] not in log
    assert not _database_holds(pilot, SECRET[3:11])


def test_a_secret_printed_a_few_characters_at_a_time_is_masked(pilot, monkeypatch):
    monkeypatch.setenv("DEPLOY_KEY", SECRET)
    # A progress-style printf with pauses: each piece is its own read, heartbeats in between.
    script = (
        "import os, sys, time\n"
        "s = os.environ['DEPLOY_KEY']\n"
        "for i in range(0, len(s), 3):\n"
        "    sys.stdout.write(s[i:i + 3]); sys.stdout.flush(); time.sleep(0.06)\n"
        "print(' ok')\n"
    )
    (pilot.dir / "progress.py").write_text(script)
    done, log = _run(
        pilot, f"      - {{name: progress, run: {PY} progress.py}}\n", secrets="[DEPLOY_KEY]"
    )
    assert done.state is ReleaseState.SUCCEEDED
    assert "*** ok" in log and SECRET[:6] not in log and SECRET[-6:] not in log
    assert not _database_holds(pilot, SECRET[-6:])


def test_a_variable_named_in_secrets_is_inherited_and_masked_when_printed(pilot, monkeypatch):
    monkeypatch.setenv("DEPLOY_KEY", SECRET)
    monkeypatch.setenv("TEAM_SETTING", "kept")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("UNRELATED_TOKEN", "not-for-steps-0b7")
    done, log = _run(
        pilot,
        '      - name: env\n        run: echo "key=$DEPLOY_KEY"; echo "region=$AWS_REGION"; '
        'echo "team=$TEAM_SETTING"; echo "other=$UNRELATED_TOKEN"; exit 3\n',
        secrets="[DEPLOY_KEY]",
        inherit_env="[AWS_*]",
    )
    assert done.state is ReleaseState.FAILED
    assert "key=***" in log and SECRET not in log
    assert "region=eu-central-1" in log  # inherit_env: AWS_*
    assert "team=\n" in log and "other=\n" in log  # not named: not inherited
    assert not _database_holds(pilot, SECRET)


def test_a_plugins_settings_get_their_vars_and_an_error_is_masked(pilot, monkeypatch):
    monkeypatch.setenv("PLUGIN_KEY", SECRET)
    done, log = _run(
        pilot,
        "      - name: hello\n        uses: noop\n"
        '        with: {message: "key ${PLUGIN_KEY} for {{ version }}"}\n'
        "      - {name: boom, run: 'echo failing with $PLUGIN_KEY >&2; exit 1'}\n",
        secrets="[PLUGIN_KEY]",
    )
    assert done.state is ReleaseState.FAILED
    assert "key *** for 1.0" in log and "failing with ***" in log and SECRET not in log

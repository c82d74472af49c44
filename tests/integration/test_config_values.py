"""Values per environment and secrets from files, as a step gets them when it runs."""

from __future__ import annotations

import sys

import yaml

from interlock.domain.states import ReleaseState
from interlock.engine import views
from tests.helpers import running, wait_release_end

PY = sys.executable
SECRET = "zq-FileSecret-91c4d7"
# Prints each argument and the TOKEN variable, one per line.
ECHO = f"{PY} -c \"import os, sys; print(sys.argv[1:]); print('token=' + os.environ.get('T', ''))\""


def _yaml(environments: list[dict], service: dict) -> str:
    return yaml.safe_dump(
        {"version": 1, "environments": environments, "services": {"api": service}}
    )


def _run(pilot, text: str, *refs: str) -> tuple[object, dict[str, str]]:
    pilot.config(text)
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, pilot.release(*refs).id)
    view = views.release_view(pilot.engine, done.id)
    logs = {}
    for deployment in view.deployments:
        for node in deployment.nodes:
            env = deployment.deployment.environment
            logs[f"{env}/{node.key}"] = views.step_log(pilot.engine, node.id)[2]
            if node.error:
                logs[f"{env}/{node.key}:error"] = node.error
    return done, logs


def _database_holds(pilot, value: str) -> bool:
    from interlock.storage.schema import metadata

    with pilot.engine.db.read() as tx:
        rows = [row for table in metadata.sorted_tables for row in tx.conn.execute(table.select())]
    return any(value in str(cell) for row in rows for cell in row)


def test_each_environment_gives_its_values_quoted_like_every_placeholder(pilot):
    hostile = "a b; touch pwned; $(touch pwned2) 'q\" `x`"
    done, logs = _run(
        pilot,
        _yaml(
            [
                {"name": "staging", "vars": {"url": "https://stg.example", "note": hostile}},
                {"name": "production", "vars": {"url": "https://example.com", "note": "n"}},
            ],
            {
                "overrides": {"production": {"vars": {"note": "prod-note"}}},
                "deploy": [{"name": "show", "run": ECHO + " {{ vars.url }} {{ vars.note }}"}],
            },
        ),
        "api@1.0",
    )
    assert done.state is ReleaseState.SUCCEEDED, logs
    assert repr(["https://stg.example", hostile]) in logs["staging/api/show"]
    assert repr(["https://example.com", "prod-note"]) in logs["production/api/show"]
    assert not (pilot.dir / "pwned").exists() and not (pilot.dir / "pwned2").exists()


def test_a_secret_file_is_read_when_the_step_runs_masked_and_never_stored(pilot, tmp_path):
    secret_file = tmp_path / "run-secrets" / "api_token"
    secret_file.parent.mkdir()
    secret_file.write_text("not-yet\n")
    reference = f"${{file:{secret_file}}}"
    text = _yaml(
        [{"name": "staging", "vars": {"db_password": reference}}],
        {
            "deploy": [
                {"name": "show", "run": ECHO + " {{ vars.db_password }}", "env": {"T": reference}}
            ]
        },
    )
    pilot.config(text)
    secret_file.write_text(SECRET + "\n")  # rotated after the reload: read at run time
    release = pilot.release("api@1.0")
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, release.id)
    assert done.state is ReleaseState.SUCCEEDED
    node = views.release_view(pilot.engine, done.id).deployments[0].nodes[0]
    log = views.step_log(pilot.engine, node.id)[2]
    assert "['***']" in log and "token=***" in log and SECRET not in log
    assert not _database_holds(pilot, SECRET)
    assert _database_holds(pilot, reference)  # the reference, in the config


def test_a_secret_file_that_cannot_be_read_fails_the_step_saying_which(pilot, tmp_path):
    missing = tmp_path / "nope"
    done, logs = _run(
        pilot,
        _yaml(
            [{"name": "staging"}],
            {"deploy": [{"name": "show", "run": "true", "env": {"T": f"${{file:{missing}}}"}}]},
        ),
        "api@1.0",
    )
    assert done.state is not ReleaseState.SUCCEEDED
    error = logs["staging/api/show:error"]
    assert f"cannot read the secret file {missing}" in error and "No such file" in error


def test_a_check_gate_gets_its_environments_values(pilot):
    probe = f"{PY} -c \"import sys; sys.exit(sys.argv[1] != 'stg-ok')\" {{{{ vars.health }}}}"
    done, logs = _run(
        pilot,
        yaml.safe_dump(
            {
                "version": 1,
                "environments": [
                    {
                        "name": "staging",
                        "vars": {"health": "stg-ok"},
                        "gates": {"before": [{"check": {"run": probe, "timeout": "20s"}}]},
                    }
                ],
                "services": {"api": {"deploy": [{"name": "d", "run": "true"}]}},
            }
        ),
        "api@1.0",
    )
    assert done.state is ReleaseState.SUCCEEDED, logs
    assert "INTERLOCK_ARG_VARS_HEALTH=stg-ok" in logs["staging/gate/check"]


def test_a_plug_in_gets_the_values_and_secret_files_in_its_settings(pilot, tmp_path):
    secret_file = tmp_path / "hook_token"
    secret_file.write_text(SECRET)
    done, logs = _run(
        pilot,
        _yaml(
            [{"name": "staging", "vars": {"channel": "#releases-stg"}}],
            {
                "deploy": [
                    {
                        "name": "notify",
                        "uses": "noop",
                        "with": {
                            "message": "to {{ vars.channel }} with "
                            f"${{file:{secret_file}}} for {{{{ version }}}}"
                        },
                    }
                ]
            },
        ),
        "api@3.1",
    )
    assert done.state is ReleaseState.SUCCEEDED, logs
    assert "to #releases-stg with *** for 3.1" in logs["staging/api/notify"]
    assert not _database_holds(pilot, SECRET)

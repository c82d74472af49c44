"""``secrets:`` and ``inherit_env:``: validated where they are written; what a step inherits."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from interlock.engine.environ import inherited, own_secret_values, secret_names
from interlock.errors import ConfigError
from interlock.spec.loader import parse_config

BASE = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - name: go
        run: echo "${HOME} $DEPLOY_KEY"
        env: {TOKEN: "${API_TOKEN}", LITERAL: "$${NOT_A_SECRET}"}
"""


def _parse(extra: str):
    return parse_config(BASE + textwrap.dedent(extra), Path("interlock.yaml"))


def test_secrets_and_inherit_env_load():
    config = _parse("secrets: [DEPLOY_KEY, aws_secret]\ninherit_env: ['AWS_*', KUBECONFIG]\n")
    assert config.secrets == ["DEPLOY_KEY", "aws_secret"]
    assert config.inherit_env == ["AWS_*", "KUBECONFIG"]


@pytest.mark.parametrize(
    ("extra", "field", "line", "message"),
    [
        ("secrets: [DEPLOY-KEY]\n", "secrets[0]", 9, "is not"),
        ("secrets:\n  - OK_NAME\n  - 1ABC\n", "secrets[1]", 11, "is not"),
        ("secrets: [INTERLOCK_TOKEN]\n", "secrets[0]", 9, "INTERLOCK_* variables"),
        ("inherit_env: ['AWS_*', 'a b']\n", "inherit_env[1]", 9, "is not"),
        ("inherit_env: ['INTERLOCK_*']\n", "inherit_env[0]", 9, "Interlock's own"),
        ("secrets: DEPLOY_KEY\n", "secrets", 9, "valid list"),
    ],
)
def test_a_bad_name_is_an_error_at_its_place(extra, field, line, message):
    with pytest.raises(ConfigError) as info:
        _parse(extra)
    [error] = info.value.errors
    assert error["field"] == field and error["line"] == line and error["column"] > 0
    assert message in error["message"]
    assert f"interlock.yaml:{line}:" in info.value.detail


def test_a_step_inherits_the_basics_the_named_secrets_and_the_patterns_only():
    worker = {
        "PATH": "/usr/bin",
        "HOME": "/home/deploy",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "https_proxy": "http://proxy:3128",
        "DEPLOY_KEY": "k-1",
        "AWS_REGION": "eu-central-1",
        "DATABASE_PASSWORD": "hunter22",
        "INTERLOCK_TOKEN": "server-token",
    }
    seen = inherited(
        worker,
        secrets=["DEPLOY_KEY", "INTERLOCK_TOKEN"],
        inherit=["AWS_*"],
        withheld=["INTERLOCK_TOKEN"],
    )
    assert set(seen) == {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TZ",
        "https_proxy",
        "DEPLOY_KEY",
        "AWS_REGION",
    }


def test_the_secrets_of_a_config_are_its_list_and_every_var_it_fills_not_shell_references():
    config = _parse("secrets: [DEPLOY_KEY]\n")
    assert secret_names(config) == {"DEPLOY_KEY", "API_TOKEN"}  # not HOME (the shell's)


def test_interlocks_own_secrets_include_the_database_password():
    found = own_secret_values(
        {
            "INTERLOCK_TOKEN": "tok-1",
            "INTERLOCK_DATABASE_URL": "postgresql://app:pw-9x@db/interlock",
        }
    )
    assert found == ["tok-1", "pw-9x"]
    given = own_secret_values({}, "postgresql://app:from-the-flag@db/interlock")
    assert given == ["from-the-flag"]  # --database-url, not the environment


def test_inherit_everything_still_withholds_interlocks_own():
    worker = {"PATH": "/bin", "TEAM_SETTING": "x", "INTERLOCK_TOKEN": "t", "INTERLOCK_HOME": "/h"}
    seen = inherited(worker, inherit=["*"], withheld=["INTERLOCK_TOKEN", "INTERLOCK_HOME"])
    assert seen == {"PATH": "/bin", "TEAM_SETTING": "x"}

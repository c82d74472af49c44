"""`interlock release logs`: the latest try of each step, an earlier one with --attempt."""

from __future__ import annotations

import json

from click.testing import CliRunner

from interlock.cli.main import cli
from interlock.domain.states import ReleaseState
from interlock.errors import NotFound
from tests.helpers import wait_release_end
from tests.support.api import Api

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - name: flaky
        run: 'if [ -f tried ]; then n=two; else touch tried; n=one; fi; echo "try $n"; [ $n = two ]'
        retries: 1
        backoff: 0.1s
"""


def test_logs_of_each_try(pilot):
    path = pilot.config(CONFIG)
    api = Api(pilot.engine, pilot.configs, path, workers=1).start()
    try:
        api.admin()
        release = pilot.release("api@1.0")
        assert wait_release_end(pilot.engine, release.id).state is ReleaseState.SUCCEEDED
        env = {"INTERLOCK_URL": api.url, "INTERLOCK_TOKEN": api.secrets["root"]}

        def logs(*args: str) -> list[dict]:
            result = CliRunner().invoke(
                cli, ["release", "logs", str(release.id), "--format", "json", *args], env=env
            )
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)

        [latest] = logs()
        assert latest["attempt"] == 2 and "try two" in latest["text"]
        assert "try one" not in latest["text"]
        [first] = logs("--attempt", "1", "--step", "staging/api/flaky")
        assert first["attempt"] == 1 and "try one" in first["text"]
        assert "try two" not in first["text"]
        assert first["key"] == "staging/api/flaky"
        text = CliRunner().invoke(
            cli, ["release", "logs", str(release.id), "--attempt", "1"], env=env
        )
        assert "==> staging/api/flaky (attempt 1) <==" in text.stdout
        assert "try one" in text.stdout
        none = CliRunner().invoke(
            cli, ["release", "logs", str(release.id), "--attempt", "3"], env=env
        )
        assert isinstance(none.exception, NotFound)  # exit 5 through the real entry point
        assert "has run 3 times" in str(none.exception)
    finally:
        api.stop()

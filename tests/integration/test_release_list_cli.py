"""`interlock release list` filters by state, service and creator, and pages back."""

from __future__ import annotations

import json

from click.testing import CliRunner

from interlock.cli.main import cli
from interlock.domain.records import Item
from interlock.engine.releases import create_release
from tests.support.api import Api

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "true"}]}
  web: {deploy: [{name: one, run: "true"}]}
"""


def test_filters_and_paging(pilot):
    path = pilot.config(CONFIG)
    api = Api(pilot.engine, pilot.configs, path, workers=0).start()
    try:
        api.admin()
        made = [
            create_release(
                pilot.engine,
                pilot.configs,
                actor="ann" if n < 3 else "bob",
                items=[Item("api" if n % 2 else "web", f"1.{n}")],
                reason="TEST-1",
            )
            for n in range(5)
        ]
        ids = [r.id for r in made]  # web, api, web, api, web; ann made the first three
        env = {"INTERLOCK_URL": api.url, "INTERLOCK_TOKEN": api.secrets["root"]}

        def listed(*args: str) -> tuple[list[int], str]:
            result = CliRunner().invoke(
                cli, ["release", "list", "--format", "json", *args], env=env
            )
            assert result.exit_code == 0, result.output
            return [r["id"] for r in json.loads(result.stdout)["items"]], result.stderr

        newest, hint = listed("--limit", "2")
        assert newest == [ids[4], ids[3]]
        assert f"--cursor {ids[3]}" in hint
        older, hint = listed("--limit", "2", "--before", str(ids[3]))
        assert older == [ids[2], ids[1]] and f"--cursor {ids[1]}" in hint
        last, hint = listed("--limit", "2", "--before", str(ids[1]))
        assert last == [ids[0]] and hint == ""
        assert listed("--service", "api")[0] == [ids[3], ids[1]]
        assert listed("--by", "ann")[0] == [ids[2], ids[1], ids[0]]
        assert listed("--by", "ann", "--service", "web")[0] == [ids[2], ids[0]]
        table = CliRunner().invoke(cli, ["release", "list", "--by", "nobody"], env=env)
        assert table.exit_code == 0 and "no releases match" in table.stdout
    finally:
        api.stop()

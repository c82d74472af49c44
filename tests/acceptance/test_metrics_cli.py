"""``interlock metrics`` with the real command against a real server process.

The records are those of tests/integration/test_metrics_db.py, written into the
server's database; its docstring lists them and the answers computed by hand.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from interlock.engine.core import Engine
from interlock.storage.db import Database
from tests.helpers import write_config
from tests.integration.test_metrics_db import CONFIG, HOUR, seed

WEEK = ("--since", "2024-03-04", "--until", "2024-03-10")
DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def documented(command: str) -> list[str]:
    """The lines docs/metrics.md shows for ``$ command`` (words only, "..." lines left out)."""
    blocks: list[list[str]] = []
    inside = False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
            if inside:
                blocks.append([])
        elif inside:
            blocks[-1].append(line)
    for block in blocks:
        if block and block[0] == f"$ {command}":
            return [" ".join(line.split()) for line in block[1:] if line and "..." not in line]
    raise AssertionError(f"docs/metrics.md shows no example of {command!r}")


def words(text: str) -> set[str]:
    return {" ".join(line.split()) for line in text.splitlines()}


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_metrics_from_the_command_line(project, server, database_url):
    write_config(project, CONFIG)
    server.start()
    db = Database(database_url)
    try:
        engine = Engine(db)
        seed(engine)
    finally:
        db.dispose()

    shown = ok(server.cli("metrics", *WEEK)).stdout
    assert "Environments: production; all services" in shown
    assert "Period: 2024-03-04 to 2024-03-10 (UTC, 7 days)" in shown
    assert "Definitions: statistic: median;" in shown
    for line in (
        "Deployment frequency",
        "6.00 per week",
        "DORA 2024: elite",
        "Change failure rate",
        "37.5%",
        "not enough data (n=3)",
        "Approval wait (p90)",
        "3h24m",
    ):
        assert line in shown, line
    assert "What each number counts:" in shown
    assert "  Lead time for changes: median time from a commit to its first successful" in shown
    assert "Releases: alice ran 4 of 7; 4 people release; bus factor 1" in shown
    assert "Pipeline runs" in shown and "web (rollback)" in shown
    missing = set(documented("interlock metrics --since 2024-03-04 --until 2024-03-10"))
    assert not missing - words(shown), "docs/metrics.md differs from the command's output"

    found = json.loads(
        ok(
            server.cli(
                "metrics",
                *WEEK,
                "--statistic",
                "p90",
                "--restore",
                "deployment",
                "--frequency",
                "days",
                "--frequency-unit",
                "day",
                "--bands",
                "2021",
                "--format",
                "json",
            )
        ).stdout
    )
    m = {x["key"]: x for x in found["metrics"]}
    assert m["lead_time"]["value"] == 27.5 * HOUR
    assert m["time_to_restore"]["value"] == 20 * HOUR
    assert m["deployment_frequency"]["value"] == 4 / 7
    assert found["settings"]["bands"] == "2021"

    web = json.loads(
        ok(server.cli("metrics", *WEEK, "--team", "storefront", "--format", "json")).stdout
    )
    assert web["scope"]["services"] == ["web"]

    steps = ok(server.cli("metrics", *WEEK, "--manual-steps")).stdout
    lines = [line for line in steps.splitlines() if "smoke-check" in line or "confirm" in line]
    assert lines[0].startswith("api/smoke-check") and "3h30m" in lines[0]
    assert lines[1].startswith("rotate-keys: confirm")
    example = "interlock metrics --since 2024-03-04 --until 2024-03-10 --manual-steps"
    assert not set(documented(example)) - words(steps)

    wrong = server.cli("metrics", "--env", "prod")
    assert wrong.returncode == 2
    assert "no environment named 'prod'" in wrong.stderr
    bad = server.cli("metrics", "--since", "last tuesday")
    assert bad.returncode == 2 and "is not a date" in bad.stderr

"""``interlock assess`` run as a user runs it: the installed command, real files, real git.

The repository has v1.0.0 (03-01 09:00), v1.1.0 on "PAY-2 refunds" (03-03 09:00)
and v1.1.1 on "PAY-3 fix" (03-06 09:00). The sheet says they went live on 03-01
10:00, 03-05 10:00 and 03-06 15:00; row 5 has an ambiguous date. By hand:
lead time per commit 1h (the first tag's commit), 2d1h and 6h, median 6h; 3
deployments over 6 days is
3.50 a week; 1.1.1 is a hotfix 29h after 1.1.0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

INTERLOCK = Path(sys.executable).parent / "interlock"


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INTERLOCK), "assess", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def git(repo: Path, *args: str, when: str | None = None) -> None:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo)}
    if when:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when
    subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("assess")
    repo = root / "payments"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Dev One")
    git(repo, "config", "user.email", "dev@example.com")
    for message, when, tag in [
        ("PAY-1 initial", "2024-03-01T09:00:00Z", "v1.0.0"),
        ("PAY-2 refunds", "2024-03-03T09:00:00Z", "v1.1.0"),
        ("PAY-3 fix", "2024-03-06T09:00:00Z", "v1.1.1"),
    ]:
        git(repo, "commit", "-q", "--allow-empty", "-m", message, when=when)
        git(repo, "tag", tag)
    (root / "releases.csv").write_text(
        "Date,Service,Version,Who,Approver\n"
        "2024-03-01 10:00,payments,1.0.0,alice,bob\n"
        "2024-03-05 10:00,payments,1.1.0,alice,bob\n"
        "2024-03-06 15:00,payments,1.1.1,bob,\n"
        "05/03/2024,payments,1.1.2,alice,bob\n",
        encoding="utf-8",
    )
    return root


def test_assess_writes_the_report_and_prints_a_summary(workspace: Path) -> None:
    done = run(
        "--git", "payments", "--tag-pattern", "v*", "--releases", "releases.csv",
        "--out", "report.html", "--json", "assessment.json", "--min-events", "2",
        cwd=workspace,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Assessed 3 releases of 1 service(s), 2024-03-01 to 2024-03-06 (UTC, 6 days)" in (
        done.stdout
    )
    assert "3.50 per week" in done.stdout
    assert "6 hours" in done.stdout
    assert "Pilot Interlock on payments" in done.stdout
    assert "wrote report.html" in done.stdout and "wrote assessment.json" in done.stdout
    assert "warning: releases.csv, row 5:" in done.stderr
    assert "Traceback" not in done.stderr

    page = (workspace / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert "<svg" in page and "<script" not in page
    data = json.loads((workspace / "assessment.json").read_text(encoding="utf-8"))
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["lead_time"]["value"] == 6 * 3600
    assert metrics["lead_time"]["display"] == "6 hours"
    assert metrics["change_failure_rate"]["value"] == pytest.approx(1 / 3)
    assert data["problems"][0]["row"] == 5
    assert data["time_zone"] == "UTC"


def test_definitions_are_settings_and_json_goes_to_stdout(workspace: Path) -> None:
    done = run(
        "--git", "payments", "--tag-pattern", "v*", "--releases", "releases.csv",
        "--statistic", "p90", "--count", "days", "--frequency-unit", "month",
        "--bands", "2021", "--format", "json",
        cwd=workspace,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["definitions"]["statistic"] == "90th percentile"
    assert data["definitions"]["frequency"] == "days with a deployment per month"
    assert data["definitions"]["bands"] == "DORA 2021 report"
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["deployment_frequency"]["value"] == pytest.approx(3 / 6 * 30)
    # 1h, 6h, 49h: the 90th percentile lies 0.8 of the way from 6h to 49h
    assert metrics["lead_time"]["value"] == pytest.approx(21600 + 0.8 * (176400 - 21600))
    assert metrics["lead_time"]["definition"].startswith("90th percentile")
    assert metrics["lead_time"]["band_note"] == "not enough data (n=3)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--git", "."], "is not a git repository"),
        (["--git", "payments", "--tag-pattern", "x*"], "the newest tags there are: v1.0.0, v1.1"),
        (["--releases", "missing.csv"], "missing.csv: no such file"),
        (["--releases", "releases.csv", "--map", "Date=colour"], "unknown field 'colour'"),
        (["--releases", "releases.csv", "--timezone", "Mars/Olympus"], "is not a time zone"),
        (["--releases", "releases.csv", "--hotfix-within", "soon"], "--hotfix-within"),
        ([], "nothing to assess"),
        (["--releases", "releases.csv", "--since", "03/01/2024"], "--since: '03/01/2024' is ambig"),
        (
            ["--releases", "releases.csv", "--since", "2024-03-09", "--until", "2024-03-02"],
            "--until",
        ),
        (["--git", "payments", "--service-path", "cart"], "--service-path 'cart': write it as"),
        (["--releases", "releases.csv", "--incident-window", "9999999d"], "--incident-window"),
        (["--releases", "releases.csv", "--service-separator", ""], "--service-separator"),
    ],
)
def test_bad_input_is_a_message_and_exit_code_2(
    workspace: Path, args: list[str], message: str
) -> None:
    done = run(*args, cwd=workspace)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_warnings_come_before_the_tables_and_the_period_is_the_users(workspace: Path) -> None:
    done = subprocess.run(
        [str(INTERLOCK), "assess", "--releases", "releases.csv", "--since", "2024-03-01",
         "--until", "2024-03-14", "--min-events", "2", "--out", "period.html",
         "--json", "period.json"],
        cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    out = done.stdout
    assert out.index("warning: releases.csv, row 5:") < out.index("Delivery metrics")
    assert "2024-03-01 to 2024-03-14 (UTC, 14 days)" in out
    assert "1.50 per week" in out  # 3 deployments in the two weeks the user named
    page = (workspace / "period.html").read_text(encoding="utf-8")
    assert '<a href="period.json">period.json</a>' in page
    data = json.loads((workspace / "period.json").read_text(encoding="utf-8"))
    assert data["period"] == "2024-03-01 to 2024-03-14 (UTC, 14 days)"
    assert data["incident_links"] == []

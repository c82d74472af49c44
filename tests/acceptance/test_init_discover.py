"""`interlock init --discover` scaffolds a company's services from a real git repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.server import INTERLOCK


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=a@example.com", "-c", "user.name=a", *args],
        check=True,
        capture_output=True,
    )


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INTERLOCK_URL": "http://127.0.0.1:9"}
    return subprocess.run(
        [INTERLOCK, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def _repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    _git(root, "init", "-q")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "layout")
    return root


def test_discover_scaffolds_a_file_per_service_that_validates_and_plans(tmp_path):
    repo = _repo(
        tmp_path / "repo",
        {
            "services/billing/chart/Chart.yaml": "apiVersion: v2\n",
            "services/Search_API/Dockerfile": "FROM scratch\n",
            "apps/web/deploy.sh": "#!/bin/sh\n",
            "apps/.hidden/x": "x\n",
            "libs/common/lib.py": "x = 1\n",  # not a service
            ".github/CODEOWNERS": "/services/billing/ @acme/payments\napps/ @acme/Web-Team\n",
        },
    )
    (repo / "services/untracked").mkdir()  # nothing tracked in it: not a service
    done = _run(repo, "init", "--discover")
    assert done.returncode == 0, done.stderr
    assert "found billing in services/billing (k8s, owner payments)" in done.stdout
    assert "found search_api in services/Search_API (k8s)" in done.stdout
    assert "found web in apps/web (script, owner web-team)" in done.stdout
    assert "untracked" not in done.stdout and "common" not in done.stdout
    billing = (repo / "services/billing/interlock.yaml").read_text()
    assert "extends: k8s" in billing and "owner: payments" in billing
    assert (repo / "interlock.schema.json").is_file()
    validated = _run(repo, "validate")
    assert validated.returncode == 0, validated.stderr
    assert "services billing, search_api, web" in validated.stdout
    plan = _run(repo, "plan", "billing@2.0", "--no-estimate", "--until", "staging")
    assert plan.returncode == 0, plan.stderr
    assert "--kube-context staging -n default --set image.tag=2.0" in plan.stdout
    assert 'vars: path="services/billing", cluster="staging"' in plan.stdout
    # a second run does not overwrite what the teams edited since
    again = _run(repo, "init", "--discover")
    assert again.returncode == 6 and "--force" in again.stderr


def test_discover_says_where_it_looked_when_there_is_nothing(tmp_path):
    repo = _repo(tmp_path / "repo", {"README.md": "hello\n"})
    done = _run(repo, "init", "--discover")
    assert done.returncode == 2
    assert "no services found" in done.stderr and "services/ and apps/" in done.stderr
    elsewhere = tmp_path / "plain"
    elsewhere.mkdir()
    done = _run(elsewhere, "init", "--discover")
    assert done.returncode == 2 and "not a git repository" in done.stderr


def test_plan_shows_the_expanded_steps_of_a_template_with_their_values():
    root = Path(__file__).parents[2] / "examples/company"
    done = _run(root, "plan", "search-api@1.2", "--no-estimate", "--until", "dev")
    assert done.returncode == 0, done.stderr
    assert "search-api/deploy  (shell; timeout 15m; from template k8s;" in done.stdout
    assert "search-api/smoke  (shell; timeout 10m; replaces the step of template k8s;" in (
        done.stdout
    )
    assert (
        "--kube-context dev-eu-1 -n search --set image=registry.example.com/acme/search-api:1.2"
        in (done.stdout)
    )
    assert 'vars: api_url="https://api.dev.example.com"' in done.stdout

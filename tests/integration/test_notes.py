"""Release notes and environment diffs from real git repositories built here.

The api repository (all times UTC, one committer "Dev One" unless said):

    A  2024-05-01 09:00  "PAY-1 initial"                       tag v1.0.0 (annotated)
    B  2024-05-02 09:00  "PAY-2 add refunds" / "Refs PAY-3"
    C  2024-05-03 09:00  "fix rounding (PAY-4)", by Erin       tag 1.1.0 (lightweight, no v)
    D  2024-05-04 09:00  "PAY-5 faster checkout"               no tag: artifact 1.2.0 --commit D
    E  2024-05-05 09:00  "docs: readme"                        (never released)
    F  2024-05-06 09:00  "PAY-6 hotfix" on a branch from C      tag v1.1.1

The web repository has 55 commits "WEB-n change n"; tag v2.0.0 is on the last one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from interlock.domain.records import InventoryEntry
from interlock.engine.artifacts import register
from interlock.engine.notes import FIRST_LIMIT, environment_diff, release_notes
from tests.helpers import release_state, running, wait_release_end
from tests.support.api import Api

DIGEST = "sha256:" + "ab" * 32
UNKNOWN = "0123456789abcdef0123456789abcdef01234567"


def git(repo: Path, *args: str, when: str | None = None, **env: str) -> str:
    full = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo), **env}
    if when:
        full["GIT_AUTHOR_DATE"] = full["GIT_COMMITTER_DATE"] = when
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=full, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def new_repository(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Dev One")
    git(path, "config", "user.email", "dev@example.com")
    git(path, "config", "commit.gpgsign", "false")
    git(path, "config", "tag.gpgsign", "false")
    return path


def commit(repo: Path, message: str, when: str, **env: str) -> str:
    paragraphs = [a for p in message.split("\n\n") for a in ("-m", p)]
    git(repo, "commit", "-q", "--allow-empty", *paragraphs, when=when, **env)
    return git(repo, "rev-parse", "HEAD")


def build_api_repository(path: Path) -> dict[str, str]:
    """The api repository of the module docstring; returns the commit ids by letter."""
    repo = new_repository(path)
    shas = {"A": commit(repo, "PAY-1 initial", "2024-05-01T09:00:00Z")}
    git(repo, "tag", "-a", "v1.0.0", "-m", "first release", when="2024-05-01T10:00:00Z")
    shas["B"] = commit(repo, "PAY-2 add refunds\n\nRefs PAY-3", "2024-05-02T09:00:00Z")
    shas["C"] = commit(
        repo,
        "fix rounding (PAY-4)",
        "2024-05-03T09:00:00Z",
        GIT_AUTHOR_NAME="Erin Example",
        GIT_AUTHOR_EMAIL="erin@example.com",
    )
    git(repo, "tag", "1.1.0")
    shas["D"] = commit(repo, "PAY-5 faster checkout", "2024-05-04T09:00:00Z")
    shas["E"] = commit(repo, "docs: readme", "2024-05-05T09:00:00Z")
    git(repo, "checkout", "-q", "-b", "hotfix", shas["C"])
    shas["F"] = commit(repo, "PAY-6 hotfix", "2024-05-06T09:00:00Z")
    git(repo, "tag", "v1.1.1")
    git(repo, "checkout", "-q", "main")
    return shas


def build_web_repository(path: Path, count: int = 55) -> list[str]:
    repo = new_repository(path)
    shas = [
        commit(repo, f"WEB-{n} change {n}", f"2024-06-01T09:{n:02d}:00Z")
        for n in range(1, count + 1)
    ]
    git(repo, "tag", "v2.0.0")
    return shas


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("repos")
    api = build_api_repository(base / "api")
    web = build_web_repository(base / "web")
    return {"dir": base, "api": api, "web": web}


CONFIG = """\
version: 1
environments:
  - name: staging
  - name: production
services:
  api:
    repo: {api}
    deploy: [{{name: roll-out, run: "true"}}]
  billing:
    repo: {api}
    deploy: [{{name: roll-out, run: "true"}}]
  web:
    repo: {web}
    deploy: [{{name: roll-out, run: "true"}}]
  worker:
    deploy: [{{name: roll-out, run: "true"}}]
  ghost:
    repo: ./no-such-clone
    deploy: [{{name: roll-out, run: "true"}}]
tickets:
  url: https://jira.example.com/browse/{{ticket}}
permissions:
  - {{user: viewer, allow: [read], services: [web]}}
"""


@pytest.fixture
def setup(pilot, repos) -> Any:
    # api by a path relative to interlock.yaml, web by an absolute path
    os.symlink(repos["dir"] / "api", pilot.dir / "api-clone")
    pilot.config(CONFIG.format(api="./api-clone", web=repos["dir"] / "web"))
    return pilot


def later(pilot, **delta: float) -> Any:
    return pilot.engine.clock.now() + timedelta(days=1, **delta)


def subjects(found: Any) -> list[str]:
    return [c.subject for c in found.commits]


def deploy(pilot, *refs: str) -> int:
    with running(pilot.engine):
        created = pilot.release(*refs)
        ended = wait_release_end(pilot.engine, created.id)
    assert ended.state.value == "succeeded", ended.error
    return int(created.id)


def test_notes_list_exactly_the_commits_in_between(setup, repos):
    pilot, sha = setup, repos["api"]
    register(
        pilot.engine, actor="ci", service="api", version="1.2.0", digest=DIGEST, commit=sha["D"]
    )
    deploy(pilot, "api@1.0.0")

    # Scheduled (not started): "before" is what the inventory says runs in production.
    scheduled = pilot.release("api@1.2.0", scheduled_at=later(pilot))
    notes = release_notes(pilot.engine, scheduled.id)
    assert notes.environment == "production" and notes.route == ("staging", "production")
    [api] = notes.services
    assert (api.old.version, api.old.commit, api.old.source) == ("1.0.0", sha["A"], "tag v1.0.0")
    assert (api.new.version, api.new.commit) == ("1.2.0", sha["D"])
    assert [c.sha for c in api.added.commits] == [sha["B"], sha["C"], sha["D"]]
    assert subjects(api.added) == [
        "PAY-2 add refunds",
        "fix rounding (PAY-4)",
        "PAY-5 faster checkout",
    ]
    assert api.added.total == 3 and not api.added.truncated and api.removed.total == 0
    assert [c.author_name for c in api.added.commits] == ["Dev One", "Erin Example", "Dev One"]
    assert [(t.key, t.url) for t in api.added.tickets] == [
        (f"PAY-{n}", f"https://jira.example.com/browse/PAY-{n}") for n in (2, 3, 4, 5)
    ]
    assert [t.key for t in notes.tickets] == ["PAY-2", "PAY-3", "PAY-4", "PAY-5"]
    assert api.problem is None and not api.first

    # Once deployed, the notes still say what it brought over what ran there before.
    ran = deploy(pilot, "api@1.2.0")
    for env in ("production", "staging"):
        [after] = release_notes(pilot.engine, ran, env).services
        assert after.old.version == "1.0.0" and after.new.source == "release"
        assert [c.sha for c in after.added.commits] == [sha["B"], sha["C"], sha["D"]]

    # Going back to 1.1.0 (a tag without "v") adds nothing and leaves D out.
    back = pilot.release("api@1.1.0", scheduled_at=later(pilot))
    [down] = release_notes(pilot.engine, back.id).services
    assert (down.old.version, down.old.source) == ("1.2.0", "artifact")
    assert (down.new.commit, down.new.source) == (sha["C"], "tag 1.1.0")
    assert down.added.total == 0 and [c.sha for c in down.removed.commits] == [sha["D"]]


def test_a_custom_ticket_pattern_decides_what_a_ticket_is(pilot, repos):
    # Only keys written after "Refs " count here; the tracker links with the key.
    os.symlink(repos["dir"] / "api", pilot.dir / "api-clone")
    config = CONFIG.format(api="./api-clone", web=repos["dir"] / "web").replace(
        "tickets:\n  url: https://jira.example.com/browse/{ticket}",
        "tickets:\n  pattern: '(?<=Refs )[A-Z]+-[0-9]+'\n"
        "  url: https://tracker.example.com/t/{ticket}",
    )
    pilot.config(config)
    deploy(pilot, "api@1.0.0")
    scheduled = pilot.release("api@1.1.0", scheduled_at=later(pilot))
    [api] = release_notes(pilot.engine, scheduled.id).services
    assert subjects(api.added) == ["PAY-2 add refunds", "fix rounding (PAY-4)"]
    assert [(t.key, t.url) for t in api.added.tickets] == [
        ("PAY-3", "https://tracker.example.com/t/PAY-3")
    ]


def test_nothing_ran_there_before_lists_a_bounded_history(setup, repos):
    pilot = setup
    first = pilot.release("api@1.0.0", "web@2.0.0", scheduled_at=later(pilot))
    api, web = release_notes(pilot.engine, first.id).services
    assert api.first and api.old is None
    assert subjects(api.added) == ["PAY-1 initial"] and not api.added.truncated
    assert web.first and web.added.total == 55 and web.added.truncated
    assert len(web.added.commits) == FIRST_LIMIT == 50
    assert [c.sha for c in web.added.commits] == repos["web"][5:]  # the newest 50, oldest first
    assert subjects(web.added)[-1] == "WEB-55 change 55"


def test_a_problem_with_one_service_is_told_and_the_others_are_listed(setup, repos):
    pilot, sha = setup, repos["api"]
    register(
        pilot.engine, actor="ci", service="api", version="1.2.0", digest=DIGEST, commit=sha["D"]
    )
    register(
        pilot.engine, actor="ci", service="billing", version="3.0.0", digest=DIGEST, commit=UNKNOWN
    )
    train = pilot.release(
        "api@1.2.0",
        "billing@3.0.0",
        "worker@1.0.0",
        "web@7.7.7",
        "ghost@1.0.0",
        scheduled_at=later(pilot),
    )
    found = {s.service: s for s in release_notes(pilot.engine, train.id).services}
    assert subjects(found["api"].added)[-1] == "PAY-5 faster checkout"
    assert found["api"].problem is None
    assert found["worker"].problem.startswith("no repository configured for worker")
    billing = found["billing"].problem
    assert billing.startswith("billing: commit ") and UNKNOWN in billing
    assert "(pinned in the release) is not in the repository" in billing
    assert "no commit is known for version 7.7.7" in found["web"].problem
    assert "tag its commit v7.7.7 or 7.7.7" in found["web"].problem
    assert found["ghost"].problem.startswith("ghost: its repository ")
    assert "no-such-clone does not exist on the server" in found["ghost"].problem
    for service in ("billing", "worker", "web", "ghost"):
        assert found[service].added.commits == ()


def put(pilot, env: str, **versions: str) -> None:
    now = pilot.engine.clock.now()

    def work(tx: Any) -> None:
        for service, version in versions.items():
            tx.set_inventory(InventoryEntry(service, env, version, None, None, None, now, "t"))

    pilot.engine.db.run(work)


def test_diff_says_which_environment_is_ahead_and_by_which_commits(setup, repos):
    pilot, sha = setup, repos["api"]
    register(
        pilot.engine, actor="ci", service="api", version="1.2.0", digest=DIGEST, commit=sha["D"]
    )
    put(pilot, "staging", api="1.2.0", web="2.0.0", worker="5")
    put(pilot, "production", api="1.0.0", worker="5")

    found = environment_diff(pilot.engine, "staging", "production")
    by = {s.service: s for s in found.services}
    assert list(by) == ["api", "web", "worker"]
    api = by["api"]
    assert found.ahead(api) == "staging" and not api.diverged and not api.same
    assert [c.sha for c in api.only_in_a.commits] == [sha["B"], sha["C"], sha["D"]]
    assert api.only_in_b.total == 0
    assert [t.key for t in api.only_in_a.tickets] == ["PAY-2", "PAY-3", "PAY-4", "PAY-5"]
    assert by["web"].b is None and by["web"].only_in_a.total == 0
    assert by["worker"].same and by["worker"].problem is None  # no git needed: same version

    reverse = environment_diff(pilot.engine, "production", "staging")
    api = next(s for s in reverse.services if s.service == "api")
    assert reverse.ahead(api) == "staging" and [c.sha for c in api.only_in_b.commits] == [
        sha["B"],
        sha["C"],
        sha["D"],
    ]

    put(pilot, "production", api="1.1.1")  # a hotfix branch: each has what the other lacks
    diverged = environment_diff(pilot.engine, "staging", "production")
    api = diverged.services[0]
    assert api.diverged and diverged.ahead(api) is None
    assert [c.sha for c in api.only_in_a.commits] == [sha["D"]]
    assert [c.sha for c in api.only_in_b.commits] == [sha["F"]]

    only_web = environment_diff(pilot.engine, "staging", "production", readable={"web"})
    assert [s.service for s in only_web.services] == ["web"]


@pytest.fixture
def api_server(setup) -> Iterator[Api]:
    harness = Api(setup.engine, setup.configs, workers=0).start()
    yield harness
    harness.stop()


def test_the_api_serves_notes_and_diffs_to_those_who_may_read_them(setup, repos, api_server):
    pilot, sha = setup, repos["api"]
    register(
        pilot.engine, actor="ci", service="api", version="1.2.0", digest=DIGEST, commit=sha["D"]
    )
    put(pilot, "production", api="1.0.0")
    put(pilot, "staging", api="1.2.0", web="2.0.0")
    scheduled = pilot.release("api@1.2.0", scheduled_at=later(pilot))
    assert release_state(pilot.engine, scheduled.id).state.value == "scheduled"
    admin, viewer = api_server.admin(), api_server.user("viewer")

    body = admin.get(f"/api/v1/releases/{scheduled.id}/notes").json()
    [api] = body["services"]
    assert api["old"] == {
        "version": "1.0.0",
        "commit": sha["A"],
        "short": sha["A"][:7],
        "source": "tag v1.0.0",
    }
    assert [c["sha"] for c in api["added"]["commits"]] == [sha["B"], sha["C"], sha["D"]]
    assert api["added"]["commits"][1]["author"] == "Erin Example"
    assert api["added"]["commits"][0]["tickets"] == ["PAY-2", "PAY-3"]
    assert body["tickets"][0] == {"key": "PAY-2", "url": "https://jira.example.com/browse/PAY-2"}
    staging = admin.get(f"/api/v1/releases/{scheduled.id}/notes", params={"environment": "staging"})
    assert staging.json()["services"][0]["added"]["total"] == 0  # staging runs 1.2.0 already

    hidden = viewer.get(f"/api/v1/releases/{scheduled.id}/notes")
    assert (
        hidden.status_code == 404 and hidden.headers["content-type"] == "application/problem+json"
    )
    unknown = admin.get(f"/api/v1/releases/{scheduled.id}/notes", params={"environment": "qa"})
    assert unknown.status_code == 404 and "no environment 'qa'" in unknown.json()["detail"]

    diff = admin.get("/api/v1/diff/staging/production").json()
    assert [(s["service"], s["ahead"]) for s in diff["services"]] == [
        ("api", "staging"),
        ("web", None),
    ]
    assert [
        s["service"] for s in viewer.get("/api/v1/diff/staging/production").json()["services"]
    ] == ["web"]
    assert admin.get("/api/v1/diff/staging/qa").status_code == 404
    assert admin.get("/api/v1/diff/staging/staging").status_code == 422

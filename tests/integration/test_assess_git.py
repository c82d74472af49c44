"""interlock.vcs and the assessment against a real git repository built here.

The repository (all times UTC):

    A  2024-03-01 09:00  "PAY-1 initial"                  tag v1.0.0 (annotated, 03-01 10:00)
    B  2024-03-03 09:00  "PAY-2 add refunds" / "Refs PAY-3"
    C  authored 03-04 08:00, committed 03-04 12:00         tag v1.1.0 (lightweight)
    D  2024-03-06 09:00  "PAY-5 hotfix rounding"          tag v1.1.1 (annotated, 03-06 10:00)
    E  2024-03-12 20:00  "docs"                           tag v1.2.0 (annotated, 03-12 21:00)
       tag "experiment" on A, not a release

The release sheet says payments went live at:

    row 2  2024-03-01 (no time)  1.0.0  alice  approver bob   planned 2024-03-01
    row 3  2024-03-05 10:00      1.1.0  alice  approver bob   planned 2024-03-04
    row 4  2024-03-06 15:00      1.1.1  alice  no approver    notes "hotfix rounding"
    row 5  05/03/2024            1.1.2  alice                 malformed: ambiguous date
    row 6  2024-03-12 18:00      1.2.0  carol  approver bob   (before its tag and commit E)

Worked out by hand:
  lead time per commit: A 15h (v1.0.0 is the first tag: its commits of the 30-day
      look-back count; live by the end of 03-01), B 2d1h, C 22h, D 6h, E 0 (committed
      after going live) -> sorted 0, 6h, 15h, 22h, 49h: median 15h
  frequency: 4 deployments over 2024-03-01..03-12 (12 days) = 4 / 12 * 7 = 2.33 a week
  1.1.1 is a patch 29h after 1.1.0: a hotfix; 1.1.0 is a change failure -> 1 of 4 = 25%
  restore from failed deployment: 1.1.0 at 03-05 10:00 -> 1.1.1 at 03-06 15:00 = 29h
  tag to production: 14h (end of 03-01), 22h, 5h, -3h -> median 9h30m
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from interlock.errors import InvalidInput
from interlock.metrics import Definitions
from interlock.metrics.assess import AssessOptions, assess, render_html
from interlock.metrics.definitions import RestoreFrom
from interlock.vcs import commit_time, commits_between, repository_root, resolve, tags

HEADER = ["Date", "Service", "Version", "Released by", "Approver", "Planned", "Notes"]
ROWS: list[list[object]] = [
    ["2024-03-01", "payments", "1.0.0", "alice", "bob", "2024-03-01", ""],
    ["2024-03-05 10:00", "payments", "1.1.0", "alice", "bob", "2024-03-04", ""],
    ["2024-03-06 15:00", "payments", "1.1.1", "alice", "", "", "hotfix rounding"],
    ["05/03/2024", "payments", "1.1.2", "alice", "", "", ""],
    ["2024-03-12 18:00", "payments", "1.2.0", "carol", "bob", "", ""],
]


def git(repo: Path, *args: str, when: str | None = None, author: str | None = None) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo)}
    if when:
        env["GIT_COMMITTER_DATE"] = when
        env["GIT_AUTHOR_DATE"] = author or when
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def build_repository(repo: Path) -> Path:
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Dev One")
    git(repo, "config", "user.email", "dev@example.com")
    git(repo, "config", "commit.gpgsign", "false")
    git(repo, "config", "tag.gpgsign", "false")

    def commit(message: str, when: str, author: str | None = None) -> None:
        git(repo, "commit", "-q", "--allow-empty", *message_args(message), when=when, author=author)

    commit("PAY-1 initial", "2024-03-01T09:00:00Z")
    git(repo, "tag", "-a", "v1.0.0", "-m", "first release", when="2024-03-01T10:00:00Z")
    git(repo, "tag", "experiment")
    commit("PAY-2 add refunds\n\nRefs PAY-3", "2024-03-03T09:00:00Z")
    commit("fix rounding (PAY-4)", "2024-03-04T12:00:00Z", author="2024-03-04T08:00:00Z")
    git(repo, "tag", "v1.1.0")
    commit("PAY-5 hotfix rounding", "2024-03-06T09:00:00Z")
    git(repo, "tag", "-a", "v1.1.1", "-m", "hotfix", when="2024-03-06T10:00:00Z")
    commit("docs", "2024-03-12T20:00:00Z")
    git(repo, "tag", "-a", "v1.2.0", "-m", "1.2", when="2024-03-12T21:00:00Z")
    return repo


def message_args(message: str) -> list[str]:
    args = []
    for paragraph in message.split("\n\n"):
        args += ["-m", paragraph]
    return args


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("git") / "payments")


@pytest.fixture(scope="module")
def sheet_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sheets") / "releases.csv"
    lines = [",".join(HEADER)] + [",".join(str(c) for c in row) for row in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sheet_xlsx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Releases"
    # the same rows as the CSV, as a person would type them into Excel: real date cells,
    # a version typed as text, and a date column with an unusual header
    sheet.append(["Went live", *HEADER[1:]])
    cells = [
        [date(2024, 3, 1), "2024-03-01"],
        [datetime(2024, 3, 5, 10, 0), date(2024, 3, 4)],
        [datetime(2024, 3, 6, 15, 0), None],
        ["05/03/2024", None],
        [datetime(2024, 3, 12, 18, 0), None],
    ]
    for row, (went_live, planned) in zip(ROWS, cells, strict=True):
        sheet.append([went_live, row[1], row[2], row[3], row[4] or None, planned, row[6] or None])
    path = tmp_path_factory.mktemp("sheets") / "releases.xlsx"
    book.save(path)
    return path


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_tags_matching_a_pattern_oldest_first(repo: Path) -> None:
    found = tags(repo, "v*")
    assert [t.name for t in found] == ["v1.0.0", "v1.1.0", "v1.1.1", "v1.2.0"]
    assert [t.annotated for t in found] == [True, False, True, True]
    assert found[0].tagged_at == utc("2024-03-01 10:00")
    assert found[0].committed_at == utc("2024-03-01 09:00")
    assert found[0].subject == "first release"
    assert found[1].tagged_at == utc("2024-03-04 12:00")  # lightweight: the commit's date
    assert "experiment" in [t.name for t in tags(repo)]


def test_commits_between_two_releases(repo: Path) -> None:
    commits = commits_between(repo, "v1.0.0", "v1.1.0")
    assert [c.subject for c in commits] == ["PAY-2 add refunds", "fix rounding (PAY-4)"]
    assert commits[0].tickets == ("PAY-2", "PAY-3")
    assert commits[0].body == "Refs PAY-3"
    assert commits[1].authored_at == utc("2024-03-04 08:00")
    assert commits[1].committed_at == utc("2024-03-04 12:00")
    assert commits[1].author_email == "dev@example.com"
    assert commits[1].parents == (commits[0].sha,)
    assert not commits[1].is_merge()
    assert [c.subject for c in commits_between(repo, None, "v1.0.0")] == ["PAY-1 initial"]
    assert commit_time(repo, "v1.1.0") == utc("2024-03-04 12:00")
    assert commit_time(repo, "v1.1.0", authored=True) == utc("2024-03-04 08:00")
    assert resolve(repo, "v1.2.0") == tags(repo, "v1.2.0")[0].sha
    assert repository_root(repo) == repo.resolve()
    assert repository_root(repo / ".git") == (repo / ".git").resolve()  # no work tree there


def test_clear_errors_for_bad_repositories_and_refs(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is not a git repository"):
        tags(tmp_path)
    with pytest.raises(InvalidInput, match="is not a directory"):
        tags(tmp_path / "nowhere")
    with pytest.raises(InvalidInput, match="unknown ref 'v9.9.9'"):
        commits_between(repo, "v9.9.9", "v1.1.0")
    with pytest.raises(InvalidInput, match="is not a git ref"):
        resolve(repo, "--output=/tmp/x")  # never read as an option


def options(repo: Path, sheet: Path, **extra: object) -> AssessOptions:
    settings: dict[str, object] = {
        "git": repo,
        "tag_pattern": "v*",
        "releases": sheet,
        "definitions": Definitions(min_events=3, restore_from=RestoreFrom.DEPLOYMENT),
    }
    settings.update(extra)
    return AssessOptions(**settings)  # type: ignore[arg-type]


NOW = datetime(2024, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_assessment_of_git_and_a_sheet_gives_the_hand_computed_answers(
    kind: str, repo: Path, sheet_csv: Path, sheet_xlsx: Path
) -> None:
    if kind == "csv":
        result = assess(options(repo, sheet_csv), now=NOW)
    else:
        result = assess(options(repo, sheet_xlsx, mapping=("Went live=date",)), now=NOW)

    assert [(p.row, p.row_used) for p in result.problems] == [(5, False)]
    assert "ambiguous" in result.problems[0].message
    assert result.period == "2024-03-01 to 2024-03-12 (UTC, 12 days)"

    lead = result.metric("lead_time")
    assert lead is not None
    assert lead.value == 15 * 3600
    assert lead.n == 5
    assert lead.details["clock_skew"] == 1
    assert "4 of 4 deployments (services of spreadsheet rows) that match a tag" in lead.definition

    frequency = result.metric("deployment_frequency")
    assert frequency is not None and frequency.value == pytest.approx(4 / 12 * 7)
    assert frequency.display() == "2.33 per week"

    failures = result.metric("change_failure_rate")
    assert failures is not None and failures.value == 0.25
    assert failures.details["followed_by_hotfix"] == 1
    rework = result.metric("rework_rate")
    assert rework is not None and rework.value == 0.25
    restore = result.metric("time_to_restore")
    assert restore is not None and restore.value == 29 * 3600 and restore.n == 1
    slip = result.metric("schedule_slip")
    assert slip is not None and slip.n == 2 and slip.details["late"] == 1
    people = result.metric("release_concentration")
    assert people is not None and people.value == 0.75

    gap = result.sign("tag_gap")
    assert gap.observed is False
    assert gap.numbers == {"matched": 4, "median_seconds": 34200.0, "before_tag": 1}
    assert "median 9.5 hours from tag to production over 4 deployments" in gap.evidence
    assert result.sign("no_approver").numbers["missing"] == 1
    assert "(rows 4)" in result.sign("no_approver").evidence
    assert result.sign("one_person").observed is True
    assert result.sign("hotfixes").observed is True
    assert result.sign("together").observed is None  # one service
    assert result.sign("weekly_slot").evidence.startswith(
        "2 of 4 (50%) release days fell on a Tuesday"
    )
    assert "variation 0.56" in result.sign("irregular").evidence
    assert result.steps[0].title == "Pilot Interlock on payments"


def test_assessment_from_git_alone_measures_commit_to_tag(repo: Path) -> None:
    result = assess(
        AssessOptions(git=repo, tag_pattern="v*", definitions=Definitions(min_events=3)), now=NOW
    )
    lead = result.metric("lead_time")
    assert lead is not None
    # B 27h, C 0, D 1h, E 1h -> median 1h
    assert lead.value == 3600
    assert "commit to tag" in lead.definition
    assert result.sign("no_approver").observed is None
    assert result.sign("hotfixes").numbers["hotfixes"] == 1  # v1.1.1 46h after v1.1.0
    assert [s.service for s in result.services] == ["payments"]  # named after the directory


def test_incidents_link_by_version_and_give_restore_times(
    repo: Path, sheet_csv: Path, tmp_path: Path
) -> None:
    incidents = tmp_path / "incidents.csv"
    incidents.write_text(
        "id,opened,resolved,service,version\n"
        "INC-1,2024-03-05 12:00,2024-03-05 13:30,payments,v1.1.0\n"
        "INC-2,2024-03-08 09:00,2024-03-08 09:20,payments,\n"
        "INC-3,yesterday,,payments,\n"
        "INC-4,2024-03-09 09:00,,payments,3.0.0\n",
        encoding="utf-8",
    )
    result = assess(
        options(repo, sheet_csv, incidents=incidents, definitions=Definitions(min_events=2)),
        now=NOW,
    )
    restore = result.metric("time_to_restore")
    assert restore is not None
    assert restore.value == (5400 + 1200) / 2  # 1h30m and 20m
    assert "1 unresolved incident(s) not counted" in restore.definition
    failures = result.metric("change_failure_rate")
    # 1.1.0: hotfix and INC-1; 1.1.1: INC-2 names no version, opened 42h after it
    assert failures is not None and failures.value == 0.5
    assert failures.details["incidents_without_deployment"] == 1  # INC-4 names 3.0.0
    assert result.links[1].startswith("INC-2 (opened 2024-03-08T09:00+00:00) -> payments 1.1.1")
    rows = [(p.file, p.row, p.row_used) for p in result.problems]
    assert ("incidents.csv", 4, False) in rows  # "yesterday"
    assert ("incidents.csv", 5, True) in rows  # names 3.0.0, which never went out


def test_report_page_is_self_contained(repo: Path, sheet_csv: Path) -> None:
    from html.parser import HTMLParser

    page = render_html(assess(options(repo, sheet_csv), now=NOW))
    assert "<script" not in page
    assert "<svg" in page
    without_namespace = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in without_namespace and "https://" not in without_namespace
    assert "releases.csv, row 5" in page
    assert "read as UTC (the default" in page

    class Tags(HTMLParser):
        """Every element that is opened is closed, in order (void elements aside)."""

        def __init__(self) -> None:
            super().__init__()
            self.open: list[str] = []

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag not in {"meta", "br", "hr", "img", "link"}:
                self.open.append(tag)

        def handle_startendtag(self, tag: str, attrs: object) -> None:
            pass  # <line .../> in the charts

        def handle_endtag(self, tag: str) -> None:
            assert self.open and self.open[-1] == tag, (self.open[-3:], tag)
            self.open.pop()

    checker = Tags()
    checker.feed(page)
    assert checker.open == []


def test_a_two_part_version_in_the_sheet_finds_its_tag(repo: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "r.csv"
    sheet.write_text("Date,Version\n2024-03-12 22:00,1.2\n", encoding="utf-8")
    result = assess(options(repo, sheet), now=NOW)
    assert "1 of 1 deployments matched a tag" in " ".join(result.assumptions)

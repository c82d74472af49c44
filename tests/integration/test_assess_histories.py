"""The assessment of two team histories built here with git and fixed dates, worked out by hand.

History A, a release train (all times UTC). A monorepo with services/billing,
services/ledger and services/checkout; every second Monday a release branch is
cut and tagged for the whole repository (v2.14.0, v2.15.0, v2.16.0); hotfixes
are tagged on the release branch. The sheet lists every service in one cell.

History B, a monorepo tagged per service (cart-v2.6.0): apps/cart, apps/search,
and web in frontend/ (named with --service-path), small daily deploys by
several people.

Every expected figure below is arithmetic on the data the generator writes,
not a call to the implementation.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from interlock.metrics import Definitions
from interlock.metrics.assess import AssessOptions, assess
from interlock.metrics.definitions import RestoreFrom

H = 3600
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Repo:
    """A git repository whose commits and tags carry the dates given."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.git("init", "-q", "-b", "main")
        for key, value in [
            ("user.name", "Dev"),
            ("user.email", "dev@example.com"),
            ("commit.gpgsign", "false"),
            ("tag.gpgsign", "false"),
        ]:
            self.git("config", key, value)

    def git(self, *args: str, when: str | None = None) -> None:
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.path)}
        if when:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{when}:00Z"
        subprocess.run(
            ["git", "-C", str(self.path), *args], env=env, check=True, capture_output=True
        )

    def commit(self, when: str, *files: str) -> None:
        for name in files:
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as out:
                out.write(f"{when}\n")
            self.git("add", name)
        self.git("commit", "-q", "-m", f"change at {when}", when=when)

    def tag(self, name: str, when: str) -> None:
        self.git("tag", "-a", name, "-m", name, when=when)


@dataclass(frozen=True)
class Row:
    deployed: str
    services: str
    version: str
    captain: str
    kind: str = ""


# ---- history A: the train ------------------------------------------------------------

TRAIN_ROWS = [
    Row("2024-01-08 12:00", "billing; ledger; checkout", "2.14.0", "alice"),
    Row("2024-01-09 10:00", "ledger", "2.14.1", "bob"),
    Row("2024-01-22 12:00", "billing, ledger, checkout", "2.15.0", "alice"),
    Row("2024-01-26 10:00", "billing + checkout", "2.15.1", "carol", "Hotfix"),
    Row("2024-02-05 12:00", "billing\nledger\ncheckout", "2.16.0", "alice"),
]
MALFORMED = Row("05/02/2024", "billing", "2.16.1", "bob")  # day/month or month/day?


def build_train(path: Path) -> Path:
    repo = Repo(path)
    repo.commit("2024-01-02T10:00", "services/billing/a.py")  # c1
    repo.commit("2024-01-03T10:00", "services/ledger/a.py")  # c2
    repo.commit("2024-01-04T10:00", "services/billing/b.py", "services/checkout/b.py")  # c3
    repo.git("checkout", "-q", "-b", "release/2.14")
    repo.tag("v2.14.0", "2024-01-08T09:00")
    repo.commit("2024-01-09T08:00", "services/ledger/fix.py")  # h1: the 2.14 hotfix
    repo.tag("v2.14.1", "2024-01-09T09:00")
    repo.git("checkout", "-q", "main")
    repo.commit("2024-01-10T10:00", "services/checkout/c.py")  # c4
    repo.commit("2024-01-11T10:00", "README.md")  # c5: no service's path
    repo.git("checkout", "-q", "-b", "release/2.15")
    repo.tag("v2.15.0", "2024-01-22T09:00")
    repo.commit("2024-01-25T08:00", "services/billing/fix.py", "services/checkout/fix.py")  # h2
    repo.tag("v2.15.1", "2024-01-26T09:00")
    repo.git("checkout", "-q", "main")
    repo.commit("2024-01-30T10:00", "services/ledger/d.py")  # c6
    repo.git("checkout", "-q", "-b", "release/2.16")
    repo.tag("v2.16.0", "2024-02-05T09:00")
    return repo.path


TRAIN_HEADER = ["Deployed At (UTC)", "Service(s)", "Version", "Release Captain", "Type", "Ticket"]

# Incidents without a version column: the usual export.
TRAIN_INCIDENTS = (
    "Opened,Resolved,Service,Summary\n"
    "2024-01-08 18:00,2024-01-08 20:00,checkout,payments page down\n"  # -> checkout of 2.14.0
    "2024-02-06 09:00,2024-02-06 10:30,,errors everywhere\n"  # no service -> the 2.16.0 train
    "2024-03-01 09:00,2024-03-01 09:30,ledger,slow reports\n"  # outside the period
)


def write_sheet(rows: list[Row], header: list[str], kind: str, folder: Path) -> Path:
    cells = [[r.deployed, r.services, r.version, r.captain, r.kind, "T-1"] for r in rows]
    if kind == "csv":
        import csv

        path = folder / "releases.csv"
        with path.open("w", encoding="utf-8", newline="") as out:
            csv.writer(out).writerows([header, *cells])
        return path
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in cells:  # real date cells where the text is a date, as Excel keeps them
        text = row[0]
        row[0] = datetime.fromisoformat(text) if text[4] == "-" else text
        sheet.append(row)
    path = folder / "releases.xlsx"
    book.save(path)
    return path


def write_incidents(text: str, kind: str, folder: Path) -> Path:
    """The incident log as CSV, or as a workbook with real date cells."""
    if kind == "csv":
        path = folder / "incidents.csv"
        path.write_text(text, encoding="utf-8")
        return path
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    lines = text.splitlines()
    dated = [i for i, h in enumerate(lines[0].split(",")) if h.lower() in ("opened", "resolved")]
    for number, line in enumerate(lines):
        cells: list[object] = list(line.split(","))
        for i in dated if number else []:
            cells[i] = datetime.fromisoformat(str(cells[i]))
        sheet.append([c if c != "" else None for c in cells])
    path = folder / "incidents.xlsx"
    book.save(path)
    return path


@pytest.fixture(scope="module")
def train_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_train(tmp_path_factory.mktemp("train") / "mono")


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_release_train_in_one_row_with_repository_tags_and_hotfixes(
    kind: str, train_repo: Path, tmp_path: Path
) -> None:
    sheet = write_sheet([*TRAIN_ROWS, MALFORMED], TRAIN_HEADER, kind, tmp_path)
    incidents = write_incidents(TRAIN_INCIDENTS, kind, tmp_path)
    result = assess(
        AssessOptions(
            git=train_repo,
            tag_pattern="v*",
            releases=sheet,
            incidents=incidents,
            since=at("2024-01-01T00:00"),
            until=at("2024-02-12T00:00"),  # --until 2024-02-11: 6 weeks, 42 days
            definitions=Definitions(min_events=3),
        ),
        now=NOW,
    )
    # the malformed row is reported by number and left out; the header row is 1
    assert [(p.row, p.row_used) for p in result.problems] == [(7, False)]
    assert any("'Ticket'" in w and "--map" in w for w in result.warnings())
    assert "1 incident(s) opened outside the period were left out" in result.notices

    # 5 rows: 3 trains of 3 services, a hotfix of ledger, a hotfix of billing and checkout
    deployments = 3 * 3 + 1 + 2
    assert sorted((s.service, s.releases) for s in result.services) == [
        ("billing", 4),
        ("checkout", 4),
        ("ledger", 4),
    ]
    frequency = result.metric("deployment_frequency")
    assert frequency is not None
    assert frequency.n == deployments
    assert frequency.value == pytest.approx(deployments / 42 * 7)  # 2.0 a week
    # releases per week count the row once: 5 / 42 * 7 = 0.83
    assert "per release (a row once): 5 successful releases, 0.83 per week" in (
        frequency.definition
    )

    # change failures, per deployment:
    #   2.14.0 ledger: v2.14.1 patches it 22h later (ledger: the service the fix ships)
    #   2.14.0 checkout: the checkout incident 6h after it
    #   2.15.0 billing, checkout: 2.15.1 labelled Hotfix (3d22h later: past --hotfix-within,
    #     so only the label says so), shipping billing and checkout
    #   2.16.0 billing, ledger, checkout: the incident naming no service, 21h after the train
    failures = result.metric("change_failure_rate")
    assert failures is not None
    assert failures.value == pytest.approx((2 + 2 + 3) / deployments)  # 58.3%, not 0%
    assert "per release (a row once): 3 of 5 (60%) had a change failure" in failures.definition
    rework = result.metric("rework_rate")
    assert rework is not None and rework.value == pytest.approx(3 / deployments)
    hotfixes = result.sign("hotfixes")
    assert hotfixes.numbers == {"releases": 5, "hotfixes": 2}

    # lead time per (service, commit), to the first deployment of that service holding it:
    #   c1 billing 01-02 10:00 -> 01-08 12:00 = 146h   (v2.14.0 is the first tag: its
    #   c2 ledger  01-03 10:00 -> 01-08 12:00 = 122h    commits since --since count)
    #   c3 billing and checkout 01-04 10:00 -> 01-08 12:00 = 98h, twice
    #   h1 ledger 01-09 08:00 -> 01-09 10:00 = 2h
    #   c4 checkout 01-10 10:00 -> 01-22 12:00 = 290h
    #   c5 README (the repository, once) 01-11 10:00 -> 01-22 12:00 = 266h
    #   h2 billing and checkout 01-25 08:00 -> 01-26 10:00 = 26h, twice
    #   c6 ledger 01-30 10:00 -> 02-05 12:00 = 146h
    lead_hours = sorted([146, 122, 98, 98, 2, 290, 266, 26, 26, 146])
    lead = result.metric("lead_time")
    assert lead is not None
    assert lead.n == len(lead_hours) == 10
    assert lead.value == (lead_hours[4] + lead_hours[5]) / 2 * H  # 110h: 4.6 days

    # the three trains and the 2.15.1 hotfix of billing + checkout
    assert "4 of 5 release rows list several services (trains), e.g. row 2: billing, ledger," in (
        " ".join(result.assumptions)
    )
    people = result.metric("release_concentration")  # "Release Captain", a row once
    assert people is not None and people.value == 3 / 5
    together = result.sign("together")
    assert together.observed is True
    assert together.numbers["services_per_release"] == deployments / 5

    assert len(result.links) == 2
    assert result.links[0].startswith(
        "incident on row 2 (opened 2024-01-08T18:00+00:00) -> checkout 2.14.0"
    )
    assert "no service named, the latest release within 7 days" in result.links[1]
    assert result.steps[0].title.startswith("Pilot Interlock on ")
    assert result.steps[0].title.count(",") == 0  # one service, not a cell of three


# ---- history B: tags per service, small daily deploys ----------------------------------


def build_per_service(path: Path) -> Path:
    repo = Repo(path)
    repo.commit("2024-05-06T09:00", "apps/cart/a.py")  # c1
    repo.tag("cart-v2.6.0", "2024-05-06T09:30")
    repo.commit("2024-05-06T11:00", "apps/search/a.py")  # c2
    repo.tag("search-v1.3.0", "2024-05-06T11:30")
    repo.commit("2024-05-07T09:00", "apps/cart/b.py", "apps/search/b.py")  # c3
    repo.commit("2024-05-07T10:00", "frontend/index.html")  # c4: web, by --service-path
    repo.tag("cart-v2.7.0", "2024-05-07T10:30")
    repo.tag("web-v0.9.0", "2024-05-07T10:45")
    repo.commit("2024-05-08T09:00", "apps/search/c.py")  # c5
    repo.tag("search-v1.4.0-rc1", "2024-05-08T09:10")  # a candidate: never in production
    repo.tag("search-v1.4.0", "2024-05-08T09:30")
    repo.commit("2024-05-09T09:00", "apps/cart/c.py")  # c6
    repo.tag("cart-v2.8.0", "2024-05-09T09:30")
    return repo.path


DAILY = [
    Row("2024-05-06 10:00", "cart", "2.6.0", "ann"),
    Row("2024-05-06 13:00", "search", "1.3.0", "bo"),
    Row("2024-05-07 11:00", "cart", "2.7.0", "cy"),
    Row("2024-05-07 12:00", "web", "0.9.0", "ann"),
    Row("2024-05-08 10:00", "search", "1.4.0", "ann"),
    Row("2024-05-09 15:00", "cart", "2.8.0", "bo"),
]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_monorepo_tagged_per_service_counts_each_commit_for_the_services_it_touched(
    kind: str, tmp_path: Path
) -> None:
    repo = build_per_service(tmp_path / "shop")
    header = ["Released on", "Components", "Version", "Deployed by", "Notes", "Ticket"]
    sheet = write_sheet(DAILY, header, kind, tmp_path)
    incidents = write_incidents(
        "id,opened,resolved,service,version\nINC-9,2024-05-09 16:00,2024-05-09 17:00,cart,2.8.0\n",
        kind,
        tmp_path,
    )
    result = assess(
        AssessOptions(
            git=repo,
            releases=sheet,
            incidents=incidents,
            service_paths=("web=frontend",),
            definitions=Definitions(min_events=3, restore_from=RestoreFrom.INCIDENT),
        ),
        now=NOW,
    )
    assert result.problems == []
    assert any("1 pre-release tag(s) (search-v1.4.0-rc1)" in a for a in result.assumptions)
    # lead time, each commit for the services whose paths it touched:
    #   cart-v2.6.0 (first tag, 30-day look-back): c1 cart 09:00 -> 10:00 = 1h
    #   search-v1.3.0 (first): c2 search 11:00 -> 13:00 = 2h (c1 is cart's)
    #   cart-v2.7.0: c3 cart 05-07 09:00 -> 11:00 = 2h (c2 is search's, c4 web's)
    #   web-v0.9.0 (first): c4 web 10:00 -> 12:00 = 2h
    #   search-v1.4.0: c3 search 05-07 09:00 -> 05-08 10:00 = 25h, c5 09:00 -> 10:00 = 1h
    #   cart-v2.8.0: c6 cart 09:00 -> 15:00 = 6h (c5 is search's)
    hours = sorted([1, 2, 2, 2, 25, 1, 6])
    lead = result.metric("lead_time")
    assert lead is not None
    assert lead.n == 7  # the repository has 6 commits; c3 counts for cart and search
    assert "7 (commit, service) pairs from 6 distinct commits" in lead.definition
    assert lead.value == hours[3] * H  # median 2h
    frequency = result.metric("deployment_frequency")
    assert frequency is not None
    assert frequency.value == pytest.approx(6 / 4 * 7)  # 05-06 .. 05-09: 4 days
    failures = result.metric("change_failure_rate")
    assert failures is not None and failures.value == pytest.approx(1 / 6)  # INC-9 by version
    people = result.metric("release_concentration")
    assert people is not None and people.value == 3 / 6  # ann 3, bo 2, cy 1
    assert result.sign("together").observed is False


def test_a_period_leaves_rows_out_and_says_how_many(train_repo: Path, tmp_path: Path) -> None:
    sheet = write_sheet(TRAIN_ROWS, TRAIN_HEADER, "csv", tmp_path)
    result = assess(
        AssessOptions(
            releases=sheet,
            until=at("2024-01-31T00:00") + timedelta(days=1),  # --until 2024-01-31
            since=at("2024-01-01T00:00"),
            definitions=Definitions(min_events=3),
        ),
        now=NOW,
    )
    assert (
        "1 release(s) outside the period 2024-01-01 to 2024-01-31 (UTC, 31 days)"
        in (result.notices[-1])
    )
    frequency = result.metric("deployment_frequency")
    assert frequency is not None
    assert frequency.value == pytest.approx(9 / 31 * 7)  # 2.14.0, 2.14.1, 2.15.0, 2.15.1


def test_the_page_puts_warnings_first_and_links_the_json(train_repo: Path, tmp_path: Path) -> None:
    from interlock.metrics.assess import write_html, write_json

    rows = [*TRAIN_ROWS, Row("2024-02-06 12:00", "billing & ledger", "2.16.1", "bob")]
    sheet = write_sheet([*rows, MALFORMED], TRAIN_HEADER, "csv", tmp_path)
    result = assess(AssessOptions(releases=sheet, definitions=Definitions(min_events=3)), now=NOW)
    odd = [p for p in result.problems if "separator-like" in p.message]
    assert [(p.row, p.row_used) for p in odd] == [(7, True)]  # 'billing & ledger', kept
    write_json(result, tmp_path / "assessment.json")
    write_html(result, tmp_path / "report.html", json_file=tmp_path / "assessment.json")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    short = page[page.index('id="summary"') : page.index('id="signs"')]
    assert "releases.csv, row 8" in short and "Ticket" in short
    assert '<a href="assessment.json">' in page
    assert '"release_count"' not in page  # no raw JSON at the end
    assert "0ms" not in page and "no data" not in page
    assert "Lead time" not in page or "—" in page
    assert "Pilot Interlock on billing" in page or "Pilot Interlock on checkout" in page


def test_incidents_naming_a_repository_version_or_an_unknown_service(tmp_path: Path) -> None:
    sheet = write_sheet(TRAIN_ROWS, TRAIN_HEADER, "csv", tmp_path)
    incidents = tmp_path / "incidents.csv"
    incidents.write_text(
        "id,opened,resolved,service,version\n"
        "INC-A,2024-01-23 09:00,2024-01-23 10:00,,v2.15.0\n"  # the whole 2.15.0 train
        "INC-B,2024-01-10 09:00,2024-01-10 09:30,Checkout Service,\n",  # no such service
        encoding="utf-8",
    )
    result = assess(
        AssessOptions(releases=sheet, incidents=incidents, definitions=Definitions(min_events=3)),
        now=NOW,
    )
    # failures: 2.14.0 ledger (the 2.14.1 hotfix), 2.15.0 billing and checkout (the 2.15.1
    # hotfix) and ledger (INC-A, which names the version the whole train carried)
    failures = result.metric("change_failure_rate")
    assert failures is not None and failures.value == pytest.approx(4 / 12)
    assert "2 of 5 (40%) had a change failure" in failures.definition
    assert "row 4 billing, row 4 ledger, row 4 checkout; by version" in result.links[0]
    assert [(p.row, p.row_used) for p in result.problems] == [(3, True)]
    assert "'Checkout Service', which no release row lists" in result.problems[0].message


def test_a_tag_never_deployed_or_a_failed_deployment_hands_its_commits_on(
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "api")
    for day, version in [(3, "1.0.0"), (4, "1.1.0"), (5, "1.2.0"), (6, "1.3.0")]:
        repo.commit(f"2024-06-0{day}T09:00", "apps/api/x.py")
        repo.tag(f"api-v{version}", f"2024-06-0{day}T09:30")
    sheet = tmp_path / "releases.csv"
    sheet.write_text(
        "Date,Service,Version,Outcome\n"
        "2024-06-03 10:00,api,1.0.0,\n"  # 1.1.0 never went out
        "2024-06-05 10:00,api,1.2.0,failed\n"
        "2024-06-06 12:00,api,1.3.0,\n",
        encoding="utf-8",
    )
    result = assess(
        AssessOptions(git=repo.path, releases=sheet, definitions=Definitions(min_events=1)),
        now=NOW,
    )
    # 06-03 09:00 -> 06-03 10:00 = 1h; the commits of 1.1.0 (06-04 09:00) and of the failed
    # 1.2.0 (06-05 09:00) first ran with 1.3.0 at 06-06 12:00: 51h and 27h; 1.3.0's own 3h
    hours = sorted([1, 51, 27, 3])
    lead = result.metric("lead_time")
    assert lead is not None and lead.n == 4
    assert lead.value == (hours[1] + hours[2]) / 2 * H  # 15h

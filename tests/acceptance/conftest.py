"""Acceptance fixtures: a project directory with interlock.yaml and a real server process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS
from tests.support.server import Server

LOG_LINES = 150

# For a test whose point is not the database (what a page renders, what a log line or
# an HTTP answer shows, before or without any query): it runs on the first backend of
# the run only (SQLite by default), as the backend's behaviour is what tests/integration
# and the other acceptance tests check on both.
one_backend = pytest.mark.parametrize("backend", BACKENDS[:1], indirect=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    return directory


@pytest.fixture
def server(project: Path, database_url: str) -> Iterator[Server]:
    """A server (not yet started) on the test's backend; stopped after the test."""
    found = Server(project, database_url)
    yield found
    found.stop()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class Chromium:
    """Debian's Chromium under Playwright, kept open from one browser test to the next.

    A launch (Playwright's driver and the browser) is about a CPU second; each test
    still gets browser contexts of its own (own cookies and storage). It is closed
    before a test of another module that does not use it: between its calls the
    Playwright sync API leaves its event loop marked as running in the thread, which
    asyncio.run() in a later test of this process would refuse (within a module it
    stays open, as a module-scoped browser did).
    """

    manager: Any = None
    browser: Any = None

    @classmethod
    def open(cls) -> Any:
        if cls.browser is None:
            sync_api = pytest.importorskip("playwright.sync_api")
            sync_api.expect.set_options(timeout=15_000)
            cls.manager = sync_api.sync_playwright()
            playwright = cls.manager.__enter__()
            cls.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        return cls.browser

    @classmethod
    def close(cls) -> None:
        if cls.manager is not None:
            try:
                if cls.browser is not None:
                    cls.browser.close()
            finally:
                cls.manager.__exit__(None, None, None)
                cls.manager = cls.browser = None


@pytest.fixture
def browser() -> Any:
    """Chromium, launched once for a run of consecutive browser tests in this process."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM}")
    return Chromium.open()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the test's own teardown (its contexts closed): close Chromium unless the
    next test of this process uses it or is of the same module."""
    if nextitem is None or (
        "browser" not in getattr(nextitem, "fixturenames", ()) and nextitem.path != item.path
    ):
        Chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """A failed test shows the end of its server's log (what CI keeps of a flaky run)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    found = getattr(item, "funcargs", {}).get("server")
    if report.when == "call" and report.failed and isinstance(found, Server):
        if found.log_path.exists():
            tail = found.log().splitlines()[-LOG_LINES:]
            report.sections.append((f"server log (last {LOG_LINES} lines)", "\n".join(tail)))


# The longest modules, longest first (CPU seconds per module, measured with
# tests/support/cputime.py). xdist's work stealing hands each worker a contiguous share
# of the collection and steals back from its end, so what is collected first starts
# first: a long test collected late would end the run alone on one core.
# The browser modules follow each other, so that a test process keeps its Chromium.
LONGEST_FIRST = (
    "test_api_fuzz.py",
    "test_release_room.py",
    "test_sso.py",
    "test_web_ui.py",
    "test_web_waits.py",
    "test_api_docs_offline.py",
    "test_notifications_e2e.py",
    "test_fault_injection.py",
    "test_audit_long_calls.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of the run (this hook sees them all): the longest modules first."""
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))

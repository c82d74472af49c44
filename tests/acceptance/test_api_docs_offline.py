"""/docs and /redoc render in Debian's Chromium with nothing but the server: no CDN.

What the pages load does not depend on the database: one server on SQLite serves both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import write_config
from tests.support.server import Server

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser

CONFIG = """\
version: 1
environments: [{name: dev}]
services: {api: {deploy: [{name: roll-out, run: "true"}]}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module's pages (they only read /openapi.json and static files)."""
    project = tmp_path_factory.mktemp("docs")
    write_config(project, CONFIG)
    found = Server(project).start()
    yield found
    found.stop()


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        # Swagger UI: the API's title, and an operation of it
        ("/docs", ".swagger-ui .info .title"),
        # ReDoc: its own title heading, drawn from /openapi.json by redoc.standalone.js
        ("/redoc", "[role=main] h1, .api-content h1"),
    ],
)
def test_api_docs_need_no_other_host(server, browser, path, rendered):
    context = browser.new_context()
    elsewhere: list[str] = []
    here = server.url

    def only_here(route: Any) -> None:
        if route.request.url.startswith(here) or route.request.url.startswith("data:"):
            route.continue_()
        else:  # a CDN, a font service: recorded and refused, as on a machine offline
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_here)
    try:
        page = context.new_page()
        answer = page.goto(f"{server.url}{path}")
        # The browser is told to fetch images, fonts and data from this server only
        # (ReDoc's footer logo would come from cdn.redoc.ly after the page settles).
        assert answer is not None
        policy = answer.headers["content-security-policy"]
        assert "img-src 'self'" in policy and "connect-src 'self'" in policy
        # ReDoc lays out the whole document before it shows anything: slow on a busy machine.
        expect(page.locator(rendered).first).to_contain_text("Interlock", timeout=90_000)
        if path == "/docs":
            expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert elsewhere == [], f"{path} asked other hosts: {elsewhere}"

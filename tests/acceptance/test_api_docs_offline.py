"""/docs and /redoc render in Debian's Chromium with nothing but the server: no CDN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import write_config

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CONFIG = """\
version: 1
environments: [{name: dev}]
services: {api: {deploy: [{name: roll-out, run: "true"}]}}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM}")
    expect.set_options(timeout=20_000)
    with playwright_api.sync_playwright() as playwright:
        found = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox", "--disable-gpu"]
        )
        yield found
        found.close()


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        # Swagger UI: the API's title, and an operation of it
        ("/docs", ".swagger-ui .info .title"),
        # ReDoc: its own title heading, drawn from /openapi.json by redoc.standalone.js
        ("/redoc", "[role=main] h1, .api-content h1"),
    ],
)
def test_api_docs_need_no_other_host(project, server, browser, path, rendered):
    write_config(project, CONFIG)
    server.start()
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
            expect(page.locator(".opblock").first).to_be_visible()
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert elsewhere == [], f"{path} asked other hosts: {elsewhere}"

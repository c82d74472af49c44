"""The release page explains every wait, and "Waiting on me" lists manual steps to sign.

Debian's Chromium, driven by Playwright, against a real server.
"""

from __future__ import annotations

import re

import pytest

from tests.acceptance.axe import violations
from tests.acceptance.conftest import one_backend
from tests.acceptance.test_web_ui import _sign_in, _token, people  # noqa: F401
from tests.helpers import write_config

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser

CONFIG = """\
version: 1
roles: {dba: [dora]}
permissions:
  - {user: dora, allow: [read, runbook.sign]}
environments:
  - name: production
    gates:
      before:
        - check: {run: "echo probing; test -f ready.flag", interval: 0.2, timeout: 120s}
services:
  api:
    deploy:
      - name: migrate
        manual: {instructions: "Run the schema migration", role: dba}
      - {name: roll-out, run: "echo rolled out"}
"""


# How the page explains each wait; the waits themselves (a check, a manual step, a lock)
# are proven on both backends in tests/integration/test_waits.py and test_release_queue.py.
@one_backend
def test_the_release_page_explains_waits_and_dora_signs_from_waiting_on_me(
    project,
    server,
    people,  # noqa: F811
):
    write_config(project, CONFIG)
    server.start()
    admin = (project / ".interlock" / "admin.token").read_text().strip()
    dora = _token(server, "dora")
    release_id = server.create("api@1.0", reason="DB-7: new index")

    page = _sign_in(people(), server, admin, "admin")
    page.goto(f"{server.url}/ui/releases/{release_id}")
    check = page.locator('[data-wait="check"]')
    expect(check).to_contain_text("production · check")
    expect(check).to_contain_text("Last result")
    expect(check).to_contain_text(re.compile(r"production/check \(check\) try \d+"))
    row = page.locator('[data-step="production/gate/check"]')
    expect(row.locator("td").nth(1)).to_have_text(re.compile(r"^try \d+$"))  # not "4 of 1"
    assert violations(page) == [], "axe-core on the waits panel (a check)"

    (project / "ready.flag").touch()
    manual = page.locator('[data-wait="manual"]')
    expect(manual).to_contain_text("production · api/migrate")
    expect(manual).to_contain_text("Run the schema migration")
    expect(manual.locator(".can-sign")).to_have_text("dora")
    deployment = server.release(release_id)["deployments"][0]["id"]
    expect(manual).to_contain_text(f"interlock runbook sign {deployment} migrate")
    assert violations(page) == [], "axe-core on the waits panel (a manual step)"
    expect(check).to_have_count(0)

    dora_page = _sign_in(people(), server, dora, "dora")
    dora_page.get_by_role("link", name="Waiting on me").click()
    card = dora_page.locator('[data-step="production/api/migrate"]')
    expect(card).to_contain_text(f"Release {release_id}")
    expect(card).to_contain_text("Run the schema migration")
    expect(card).to_contain_text("role dba")
    assert violations(dora_page) == [], "axe-core on Waiting on me"
    card.get_by_label("Comment (optional)").fill("index built")
    card.get_by_role("button", name="Sign off").click()
    expect(dora_page.get_by_role("status").filter(has_text="You signed off")).to_contain_text(
        "You signed off api/migrate."
    )
    expect(dora_page.get_by_text("Nothing waits on you.")).to_be_visible()

    # The admin's page follows without a reload: no wait left, the release succeeded.
    expect(page.locator("h1 .state")).to_have_text("succeeded")
    expect(page.locator('[data-wait="manual"]')).to_have_count(0)

    # A release behind a lock says who locked it, why and since when.
    server.api("POST", "/environments/production/lock", {"reason": "INC-9: payments down"})
    locked = server.create("api@1.1", reason="DB-8: another index")
    page.goto(f"{server.url}/ui/releases/{locked}")
    lock = page.locator('[data-wait="lock"]')
    expect(lock).to_contain_text("production is locked")
    expect(lock).to_contain_text("Locked by")
    expect(lock).to_contain_text("INC-9: payments down")
    expect(lock).to_contain_text("since")
    assert violations(page) == [], "axe-core on the waits panel (a lock)"

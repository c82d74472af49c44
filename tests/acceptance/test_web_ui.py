"""The web UI as people use it: Debian's Chromium, driven by Playwright, against a real server."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import one_backend
from tests.helpers import write_config

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "src" / "interlock" / "web" / "static"
XSS = '<img src=x onerror="window.__pwned=1">'

SIGNOFF = """\
version: 1
teams: {payments: [carol]}
roles: {release-managers: [alice, bob, carol]}
permissions:
  - {team: payments, allow: [release.create, release.cancel], services: owned}
  - {role: release-managers, allow: [approve]}
environments:
  - name: staging
  - name: production
    gates:
      before:
        - approval: {rules: [{role: release-managers, count: 2}], expires: 1d}
services:
  api:
    owner: payments
    deploy:
      - name: roll-out
        run: echo "deploying {{ service }} {{ version }} to {{ environment }}"
"""

# A step that prints, then holds until the test creates the file `go-VERSION`.
HELD = """\
version: 1
environments:
  - name: dev
services:
  api:
    deploy:
      - name: roll-out
        timeout: 60s
        run: >-
          echo "started {{ version }}";
          while [ ! -f go-{{ version }} ]; do sleep 0.1; done;
          echo "finished {{ version }}"
"""


@dataclass
class Person:
    """One browser context (its own sessionStorage) with one page, and what went wrong in it."""

    page: Any
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def people(browser: Any) -> Iterator[Callable[[], Person]]:
    """Open a new person: their own browser context, so their own sessionStorage."""
    contexts: list[Any] = []
    found: list[Person] = []

    def open_person() -> Person:
        context = browser.new_context()
        contexts.append(context)
        person = Person(context.new_page())
        person.page.on("pageerror", lambda exc: person.errors.append(str(exc)))
        found.append(person)
        return person

    yield open_person
    for context in contexts:
        context.close()
    assert [p.errors for p in found if p.errors] == [], "uncaught errors in the pages"


def _token(server: Any, user: str) -> str:
    """A new user and an API token of theirs, through the API: set-up, not what a browser
    test proves (`user add` and `token create` are the CLI tests' to prove)."""
    return str(server.user(user))


def _sign_in(person: Person, server: Any, token: str, name: str) -> Any:
    page = person.page
    page.goto(f"{server.url}/ui/")
    expect(page).to_have_url(re.compile(r"/ui/signin"))
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signed-in-as")).to_have_text(name)
    expect(page.get_by_role("heading", level=1)).to_have_text("Releases")
    return page


def test_two_people_sign_off_a_release_in_the_browser(project, server, people):
    write_config(project, SIGNOFF)
    server.start()
    carol, alice, bob = (_token(server, n) for n in ("carol", "alice", "bob"))
    rid = server.create("api@1.4.2", reason="PAY-9: new fee rules", token=carol)

    # The author signs in, finds the release in the list, opens it.
    page = _sign_in(people(), server, carol, "carol")
    row = page.locator(f'tr[data-release="{rid}"]')
    expect(row).to_contain_text("api@1.4.2")
    expect(row).to_contain_text("carol")
    expect(row).to_contain_text("PAY-9: new fee rules")
    row.get_by_role("link", name=f"Release {rid}").click()
    expect(page).to_have_url(f"{server.url}/ui/releases/{rid}")
    expect(page.locator("#release-reason")).to_have_text("PAY-9: new fee rules")
    gate = page.locator('[data-gate="production/approval"]')
    expect(gate).to_contain_text("2 from role release-managers")
    expect(gate.locator(".given")).to_have_text("nobody yet")
    expect(gate.locator(".can-clear")).to_have_text("alice, bob")
    expect(page.locator('tr[data-step="staging/api/roll-out"]')).to_contain_text("succeeded")

    # The author, a release manager herself, may not approve: the API says why, on the page.
    gate.get_by_role("button", name="Approve").click()
    expect(gate.get_by_role("alert")).to_contain_text(
        f"Approval refused: carol made release {rid}; someone else must approve it"
    )

    # Alice: a rejection without a comment is stopped before it is sent.
    alice_page = _sign_in(people(), server, alice, "alice")
    expect(alice_page.locator("#pending-count")).to_have_text("1")
    alice_page.goto(f"{server.url}/ui/releases/{rid}")
    alice_gate = alice_page.locator('[data-gate="production/approval"]')
    alice_gate.get_by_role("button", name="Reject").click()
    expect(alice_gate.get_by_role("alert")).to_contain_text("A rejection needs a comment")
    expect(alice_gate.get_by_label("Comment")).to_be_focused()
    expect(alice_gate.locator(".given")).to_have_text("nobody yet")

    # Alice approves from "Waiting on me"; the author's page follows without a reload.
    alice_page.get_by_role("link", name="Waiting on me").click()
    card = alice_page.locator(f'article[data-release="{rid}"]')
    expect(card).to_contain_text("production · approval")
    card.get_by_label("Comment (optional)").fill("diff reviewed")
    card.get_by_role("button", name="Approve").click()
    expect(alice_page.locator(".notice")).to_contain_text(f"You approved release {rid}")
    expect(alice_page.locator("#pending")).to_contain_text("Nothing waits on you")
    expect(gate.locator(".given")).to_contain_text("alice")
    expect(gate.locator(".given")).to_contain_text("diff reviewed")
    expect(gate.locator(".can-clear")).to_have_text("bob")

    # Bob approves on the release page; the author watches it succeed.
    bob_page = _sign_in(people(), server, bob, "bob")
    bob_page.goto(f"{server.url}/ui/releases/{rid}")
    bob_page.locator('[data-gate="production/approval"]').get_by_role(
        "button", name="Approve"
    ).click()
    expect(page.locator("h1 .state")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#progress-text")).to_contain_text("2 of 2 environments")
    expect(page.locator(".live")).to_contain_text("succeeded")
    expect(page.locator('tr[data-step="production/api/roll-out"]')).to_contain_text("succeeded")

    # The step's output.
    page.get_by_role("link", name="Log of production/api/roll-out").click()
    expect(page.locator("#log-output")).to_contain_text("\ndeploying api 1.4.2 to production\n")
    expect(page.locator("#log-status")).to_contain_text("Attempt 1 finished")

    # Where every service stands.
    page.get_by_role("link", name="Status").click()
    expect(page.locator('[data-cell="api/production"]')).to_contain_text("1.4.2")
    expect(page.locator('[data-cell="api/staging"]')).to_contain_text("1.4.2")

    # A rejection with a comment stops the next release.
    rid2 = server.create("api@1.5.0", reason="r", token=carol)
    bob_page.goto(f"{server.url}/ui/releases/{rid2}")
    bob_gate = bob_page.locator('[data-gate="production/approval"]')
    bob_gate.get_by_label("Comment").fill("the fee table for CH is wrong")
    bob_gate.get_by_role("button", name="Reject").click()
    expect(bob_page.locator(".notice")).to_contain_text("You rejected production/approval")
    expect(bob_page.locator("h1 .state")).to_have_text("failed")
    expect(bob_page.locator(".release")).to_contain_text(
        "rejected by bob: the fee table for CH is wrong"
    )


def test_text_stays_text_logs_follow_and_bad_tokens_sign_out(project, server, people):
    write_config(project, HELD)
    server.start()
    admin = (project / ".interlock" / "admin.token").read_text().strip()

    # What the server sends: the headers, the app shell for client routes, nothing else.
    shell = httpx.get(f"{server.url}/ui/releases/7")
    assert shell.status_code == 200 and shell.headers["content-type"].startswith("text/html")
    assert shell.headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    assert shell.headers["x-content-type-options"] == "nosniff"
    assert shell.headers["referrer-policy"] == "no-referrer"
    script = httpx.get(f"{server.url}/ui/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-security-policy"] == shell.headers["content-security-policy"]
    again = httpx.get(f"{server.url}/ui/app.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304
    assert httpx.get(f"{server.url}/").headers["location"] == "/ui/"
    assert httpx.get(f"{server.url}/ui/missing.js").status_code == 404
    assert httpx.get(f"{server.url}/ui/%2e%2e/routes.py").status_code == 404
    assert httpx.get(f"{server.url}/api/v1/releases").status_code == 401

    rid = server.create("api@1.0.0", reason=XSS)

    # The reason is shown as the literal text it is, in the list and on the release.
    person = people()
    page = _sign_in(person, server, admin, "admin")
    row = page.locator(f'tr[data-release="{rid}"]')
    expect(row.locator("td.reason")).to_have_text(XSS)
    page.goto(f"{server.url}/ui/releases/{rid}")
    expect(page.locator("#release-reason")).to_have_text(XSS)
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__pwned") is None

    # The log of a running step grows as the step writes.
    page.get_by_role("link", name="Log of dev/api/roll-out").click()
    output = page.locator("#log-output")
    expect(output).to_contain_text("\nstarted 1.0.0\n")
    expect(page.locator("#log-status")).to_contain_text("Following attempt 1")
    assert "finished 1.0.0\n" not in output.text_content()
    (project / "go-1.0.0").touch()
    expect(output).to_contain_text("\nstarted 1.0.0\nfinished 1.0.0\n")
    expect(page.locator("#log-status")).to_contain_text("Attempt 1 finished")

    # Cancel with a reason.
    rid2 = server.create("api@2.0.0", reason="to cancel")
    page.goto(f"{server.url}/ui/releases/{rid2}")
    expect(page.locator('tr[data-step="dev/api/roll-out"]')).to_contain_text("running")
    page.get_by_text("Cancel this release…").click()
    page.get_by_label("Why cancel?").fill("wrong build")
    page.get_by_role("button", name="Cancel release").click()
    expect(page.locator("h1 .state")).to_have_text("cancelled")
    expect(page.locator(".notice")).to_contain_text(f"You cancelled release {rid2}")

    # A wrong token is refused with the API's message.
    stranger = people().page
    stranger.goto(f"{server.url}/ui/signin")
    stranger.get_by_label("API token").fill("ilk_not-a-token")
    stranger.get_by_role("button", name="Sign in").click()
    expect(stranger.get_by_role("alert")).to_contain_text(
        "Sign-in failed: authentication failed: unknown token"
    )
    expect(stranger.locator("#signed-in-as")).to_have_count(0)

    # A token revoked while signed in: the open page's next call (its long-poll hears of
    # the revocation) returns to sign-in with the reason, and back to the page after.
    erin = _token(server, "erin")
    erin_page = _sign_in(people(), server, erin, "erin")
    erin_page.get_by_role("link", name="Status").click()
    expect(erin_page.locator("#status-matrix")).to_be_visible()
    token_id = server.api("GET", "/users/erin/tokens")["items"][0]["id"]
    server.api("DELETE", f"/tokens/{token_id}")
    expect(erin_page).to_have_url(re.compile(r"/ui/signin\?next=%2Fui%2Fstatus"))
    expect(erin_page.get_by_role("alert")).to_contain_text("You were signed out")
    expect(erin_page.get_by_role("alert")).to_contain_text("revoked")
    assert erin_page.evaluate("sessionStorage.getItem('interlock.token')") is None


# What the page says; verifying against a published checkpoint is proven on both backends
# in tests/integration/test_audit_checkpoints.py.
@one_backend
def test_verify_in_the_browser_says_which_published_checkpoint_it_used(project, server, people):
    write_config(project, HELD)
    server.start("--audit-checkpoints", str(project / "checkpoints"))
    published = server.api("POST", "/audit/checkpoint")["checkpoint"]
    admin = (project / ".interlock" / "admin.token").read_text().strip()
    page = _sign_in(people(), server, admin, "admin")
    page.get_by_role("link", name="Audit").click()
    page.get_by_role("button", name="Verify the chain").click()
    result = page.locator("#verify-result")
    expect(result).to_contain_text("Intact.")
    expect(result).to_contain_text(f"Checked against the published checkpoint {published}")


def test_the_app_never_turns_data_into_markup():
    """No HTML parsing of strings anywhere, no inline scripts or styles in the shell."""
    for source in STATIC.glob("*.js"):
        text = source.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{source.name} uses {sink}"
    shell = (STATIC / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)", shell) == []
    assert "<style" not in shell and "style=" not in shell
    assert re.findall(r"\son[a-z]+\s*=", shell, flags=re.I) == []

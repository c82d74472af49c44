"""Single sign-on in the browser: a real OpenID provider (npm's oidc-provider on Node.js),
a real server, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.axe import violations
from tests.acceptance.conftest import one_backend
from tests.helpers import write_config
from tests.support.oidc import OidcProvider
from tests.support.server import INTERLOCK

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

# The OpenID flow, the cookies and CSRF are the point, not the database: the sessions'
# store is tested on both backends in tests/integration/test_web_sessions.py.
pytestmark = [pytest.mark.browser, one_backend]

SECRET_VAR = "INTERLOCK_TEST_OIDC_SECRET"

CONFIG = """\
version: 1
teams: {payments: [carol]}
permissions:
  - {team: payments, allow: [release.create, release.cancel], services: owned}
  - {role: release-managers, allow: [approve]}
  - {role: release-managers, allow: [lock, audit.read]}
  - {everyone: true, allow: [read]}
environments:
  - name: staging
  - name: production
    gates:
      before:
        - approval: {rules: [{role: release-managers, count: 1}], expires: 1d}
services:
  api:
    owner: payments
    deploy:
      - name: roll-out
        run: echo "deploying {{ service }} {{ version }}"
sso:
  issuer: ISSUER
  client_id: CLIENT_ID
  client_secret: ${INTERLOCK_TEST_OIDC_SECRET}
  scopes: [openid, email, profile, groups]
  label: Example SSO
  groups:
    release-managers: {roles: [release-managers]}
  email_domains:
    example.com: {teams: [qa]}
"""


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    try:
        found = OidcProvider()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield found
    found.stop()


@pytest.fixture
def contexts(browser: Any) -> Iterator[Any]:
    opened: list[Any] = []

    def open_context() -> Any:
        context = browser.new_context()
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


@pytest.fixture
def sso_server(project: Path, server: Any, provider: OidcProvider) -> Any:
    """The server with ``sso:`` pointing at the provider, registered there as a client."""
    client_id, secret = provider.register(f"{server.url}/auth/sso/callback")
    write_config(project, CONFIG.replace("ISSUER", provider.issuer).replace("CLIENT_ID", client_id))
    server.env[SECRET_VAR] = secret
    return server.start()


def _token(server: Any, user: str) -> str:
    """A new user's API token, through the API (set-up: the CLI tests prove the CLI's)."""
    return str(server.user(user))


def _sso_sign_in(page: Any, server: Any, login: str, path: str = "/ui/releases") -> None:
    """Sign in as a person does: the app's button, the provider's pages, and back."""
    page.goto(f"{server.url}{path}")
    expect(page).to_have_url(re.compile(r"/ui/signin"))
    page.get_by_role("link", name="Sign in with Example SSO").click()
    _at_the_provider(page, login)
    expect(page.locator("#signed-in-as")).to_have_text(login)
    expect(page).to_have_url(f"{server.url}{path}")


def _at_the_provider(page: Any, login: str) -> None:
    """The provider's own pages (oidc-provider's development interactions)."""
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("whatever the provider asks")
    page.locator('button[type="submit"]').click()
    page.locator('button[type="submit"]').click()  # consent: the client may see the claims


def _session_cookie(context: Any) -> dict[str, Any]:
    found = [c for c in context.cookies() if c["name"] == "interlock_session"]
    assert len(found) == 1, context.cookies()
    return dict(found[0])


def _release(server: Any) -> str:
    carol = _token(server, "carol")
    return str(server.create("api@1.4.2", reason="PAY-9", token=carol))


def test_sign_in_with_sso_approve_and_sign_out(sso_server, contexts):
    server = sso_server
    rid = _release(server)
    context = contexts()
    page = context.new_page()

    _sso_sign_in(page, server, "alice", f"/ui/releases/{rid}")
    cookie = _session_cookie(context)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain http on 127.0.0.1; over https it is Secure
    assert "interlock_session" not in page.evaluate("document.cookie")

    # Alice's group at the provider made her a release manager: her approval counts.
    gate = page.locator('[data-gate="production/approval"]')
    gate.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("You approved production/approval")).to_be_visible()
    expect(page.locator("h1 .state")).to_have_text("succeeded", timeout=30_000)

    # Her session: the roles and teams the claims gave, and the user made at sign-in.
    me = httpx.get(f"{server.url}/auth/session", cookies={"interlock_session": cookie["value"]})
    assert me.status_code == 200, me.text
    assert me.json()["roles"] == ["release-managers"]
    assert me.json()["teams"] == ["qa"]  # alice@example.com
    users = server.api("GET", "/users", limit=500)["items"]
    assert {"name": "alice", "created_by": "sso"}.items() <= next(
        u for u in users if u["name"] == "alice"
    ).items()

    # A new tab of the same browser is signed in too (the cookie, not the tab's storage).
    other = context.new_page()
    other.goto(f"{server.url}/ui/releases")
    expect(other.locator("#signed-in-as")).to_have_text("alice")
    other.close()

    # Signing out ends the session on the server, not just in this browser.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/signin"))
    expect(page.get_by_role("alert")).to_have_text("You are signed out.")
    assert [c for c in context.cookies() if c["name"] == "interlock_session"] == []
    replayed = httpx.get(
        f"{server.url}/api/v1/releases/{rid}", cookies={"interlock_session": cookie["value"]}
    )
    assert replayed.status_code == 401
    assert "signed out" in replayed.json()["detail"]
    page.goto(f"{server.url}/ui/releases")
    expect(page).to_have_url(re.compile(r"/ui/signin"))

    events = server.api("GET", "/audit", limit=50)["items"]
    actions = [(e["actor"], e["action"]) for e in events]
    assert ("alice", "session.signed_in") in actions
    assert ("alice", "session.signed_out") in actions


def test_signed_in_through_sso_a_release_manager_locks_and_exports_the_audit_trail(
    sso_server, contexts
):
    """Only the session cookie (no token anywhere): every action and download still works."""
    server = sso_server
    context = contexts()
    page = context.new_page()
    page.goto(f"{server.url}/ui/signin")
    expect(page.get_by_role("link", name="Sign in with Example SSO")).to_be_visible()
    assert violations(page) == [], "axe-core on the sign-in page with single sign-on"
    _sso_sign_in(page, server, "alice", "/ui/environments/production")
    assert page.evaluate("sessionStorage.getItem('interlock.token')") is None

    # A change: the lock, with the session's CSRF header.
    page.get_by_label("Why lock it?").fill("db migration")
    page.get_by_role("button", name="Lock production").click()
    expect(page.locator("#lock-state")).to_contain_text("Locked by alice")
    expect(page.get_by_role("button", name="Unlock production")).to_be_visible()

    # A download: the whole trail, fetched with the cookie and offered as a file.
    page.goto(f"{server.url}/ui/audit")
    page.get_by_role("button", name="Export the trail").click()
    with page.expect_download() as download:
        page.locator("#export-link").click()
    exported = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    actions = [(e["actor"], e["action"]) for e in exported]
    assert ("alice", "session.signed_in") in actions
    locked = [e for e in exported if e["actor"] == "alice" and "lock" in e["action"]]
    assert locked, actions
    assert all(e["hash"] for e in exported)
    # Still signed in: the download did not end the session.
    expect(page.locator("#signed-in-as")).to_have_text("alice")
    assert violations(page) == [], "axe-core on the audit page after an export"


def test_a_person_who_may_not_act_gets_403(sso_server, contexts):
    server = sso_server
    rid = _release(server)
    context = contexts()
    page = context.new_page()
    _sso_sign_in(page, server, "mallory", f"/ui/releases/{rid}")

    # Mallory may read (everyone may), not approve: the API refuses, the page says why.
    gate = page.locator('[data-gate="production/approval"]')
    gate.get_by_role("button", name="Approve").click()
    expect(gate.get_by_role("alert")).to_contain_text("Approval refused")
    expect(gate.locator(".given")).to_have_text("nobody yet")

    answered = page.evaluate(
        """async (rid) => {
          const call = (headers) => fetch(`/api/v1/releases/${rid}/approvals`, {
            method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json", ...headers},
            body: JSON.stringify(
              {decision: "approve", environment: "production", gate: "approval"}),
          }).then(async (r) => [r.status, (await r.json()).detail]);
          return {
            withCsrf: await call({"X-CSRF-Token": sessionStorage.getItem("interlock.csrf")}),
            withoutCsrf: await call({}),
          };
        }""",
        rid,
    )
    assert answered["withCsrf"][0] == 403, answered
    assert answered["withoutCsrf"][0] == 403, answered
    assert "X-CSRF-Token" in answered["withoutCsrf"][1]


def test_api_tokens_work_beside_sso_and_sso_errors_are_clear(sso_server):
    server = sso_server
    carol = _token(server, "carol")
    # The CLI's bearer token is unchanged by single sign-on (and a stray cookie is ignored).
    listed = httpx.get(
        f"{server.url}/api/v1/releases",
        headers={"Authorization": f"Bearer {carol}"},
        cookies={"interlock_session": "not-a-session"},
    )
    assert listed.status_code == 200, listed.text
    # A cookie that is no session is a 401 naming why, never a 500.
    bad = httpx.get(f"{server.url}/api/v1/releases", cookies={"interlock_session": "forged"})
    assert bad.status_code == 401
    assert bad.headers["content-type"] == "application/problem+json"
    assert "unknown session" in bad.json()["detail"]
    # A return from the provider with a state nobody sent: a page that says so.
    stray = httpx.get(f"{server.url}/auth/sso/callback", params={"state": "x", "code": "y"})
    assert stray.status_code == 401
    assert "start again from the sign-in page" in stray.text
    # The sign-in leaves for the provider with PKCE (S256) and this server's callback.
    begun = httpx.get(f"{server.url}/auth/sso/login", params={"next": "https://evil.test/"})
    assert begun.status_code == 303
    target = httpx.URL(begun.headers["location"])
    assert target.params["code_challenge_method"] == "S256"
    assert target.params["redirect_uri"] == f"{server.url}/auth/sso/callback"
    providers = httpx.get(f"{server.url}/auth/providers").json()
    assert providers == {
        "token": True,
        "sso": {"label": "Example SSO", "login_url": "/auth/sso/login"},
    }


def test_interlock_login_through_the_browser(sso_server, contexts, tmp_path):
    server = sso_server
    cli_home = tmp_path / "cli-home"  # a person's machine: no admin.token here
    env = {**server.env, "INTERLOCK_HOME": str(cli_home)}
    command = subprocess.Popen(
        [INTERLOCK, "login", "--no-browser", "--wait", "60"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert command.stdout is not None
        line = command.stdout.readline()
        assert line.startswith("Sign in at: "), line + (
            command.stderr.read() if command.stderr else ""
        )
        page = contexts().new_page()
        page.goto(line.removeprefix("Sign in at: ").strip())
        _at_the_provider(page, "alice")  # not signed in yet: the provider first
        expect(page.locator("#cli-user")).to_have_text("alice")
        page.get_by_role("button", name="Allow").click()
        expect(page.get_by_role("heading")).to_have_text("Signed in")
        out, err = command.communicate(timeout=60)
    finally:
        if command.poll() is None:
            command.kill()
    assert command.returncode == 0, err
    assert f"Signed in to {server.url} as alice" in out
    kept = cli_home / "login.json"
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    # The command acts as alice now, with no INTERLOCK_TOKEN.
    me = server.json("user", "me", INTERLOCK_HOME=str(cli_home))
    assert me["name"] == "alice"
    assert me["roles"] == ["release-managers"]
    token = json.loads(kept.read_text())["token"]

    # `interlock logout` revokes it on the server and forgets it here.
    out = server.cli("logout", INTERLOCK_HOME=str(cli_home))
    assert out.returncode == 0, out.stderr
    assert "Signed out of" in out.stdout
    assert not kept.exists()
    gone = httpx.get(f"{server.url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401
    assert "revoked" in gone.json()["detail"]


def test_a_login_code_is_worthless_without_the_verifier(sso_server):
    server = sso_server
    refused = httpx.post(
        f"{server.url}/auth/cli/token", json={"code": "guessed", "verifier": "v" * 43}
    )
    assert refused.status_code == 401
    assert "run `interlock login` again" in refused.json()["detail"]
    unsigned = httpx.get(
        f"{server.url}/auth/cli",
        params={"port": "5000", "state": "s" * 20, "challenge": "c" * 43},
    )
    assert unsigned.status_code == 303  # not signed in: to the provider first, then back
    assert unsigned.headers["location"].startswith("/auth/sso/login?next=%2Fauth%2Fcli%3F")
    wrong = httpx.get(f"{server.url}/auth/cli", params={"port": "80", "state": "s" * 20})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "port"


def _follow(client: httpx.Client, response: httpx.Response, until: str) -> httpx.Response:
    """Follow redirects (relative or not) until one points at ``until``."""
    while response.is_redirect and not response.headers["location"].startswith(until):
        response = client.get(httpx.URL(str(response.url)).join(response.headers["location"]))
    return response


def _provider_forms(client: httpx.Client, page: httpx.Response, login: str) -> httpx.Response:
    """The provider's login and consent forms, filled in as a person would (no browser)."""
    for fields in ({"login": login, "password": "any"}, {}):
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
        assert action, page.text
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        page = client.post(action.group(1), data={**hidden, **fields})
        if fields:
            page = _follow(client, page, "never")
    return page


def test_over_https_the_session_cookie_is_secure_and_for_this_host_only(sso_server):
    server = sso_server
    with httpx.Client(timeout=10) as client:
        begun = client.get(f"{server.url}/auth/sso/login", params={"next": "/ui/status"})
        consent = _provider_forms(client, _follow(client, begun, "never"), "bob")
        back = _follow(client, consent, server.url)
        # As behind a proxy that ends TLS (uvicorn trusts X-Forwarded-Proto from 127.0.0.1).
        done = client.get(back.headers["location"], headers={"X-Forwarded-Proto": "https"})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/ui/status"
    cookie = done.headers["set-cookie"]
    assert cookie.startswith("__Host-interlock_session=")
    for flag in ("HttpOnly", "Path=/", "SameSite=lax", "Secure"):
        assert flag.lower() in cookie.lower(), cookie
    assert "domain=" not in cookie.lower()
    assert done.headers["referrer-policy"] == "no-referrer"


def _sign_in_by_http(server: Any, login: str) -> str:
    """Sign in without a browser (the provider's forms by HTTP); the session cookie's value."""
    with httpx.Client(timeout=10) as client:
        begun = client.get(f"{server.url}/auth/sso/login")
        consent = _provider_forms(client, _follow(client, begun, "never"), login)
        done = client.get(_follow(client, consent, server.url).headers["location"])
        assert done.status_code == 303, done.text
        return str(done.cookies["interlock_session"])


def test_a_session_cookie_reads_changes_only_with_csrf_and_ends_with_sso(sso_server, project):
    server = sso_server
    rid = _release(server)
    cookie = {"interlock_session": _sign_in_by_http(server, "bob")}
    assert httpx.get(f"{server.url}/api/v1/releases/{rid}", cookies=cookie).status_code == 200
    session = httpx.get(f"{server.url}/auth/session", cookies=cookie).json()
    approve = {"decision": "approve", "environment": "production", "gate": "approval"}
    forged = httpx.post(
        f"{server.url}/api/v1/releases/{rid}/approvals", json=approve, cookies=cookie
    )
    assert forged.status_code == 403
    assert forged.headers["content-type"] == "application/problem+json"
    assert "X-CSRF-Token" in forged.json()["detail"]
    wrong = httpx.post(
        f"{server.url}/api/v1/releases/{rid}/approvals",
        json=approve,
        cookies=cookie,
        headers={"X-CSRF-Token": session["csrf_token"][::-1]},
    )
    assert wrong.status_code == 403
    approved = httpx.post(
        f"{server.url}/api/v1/releases/{rid}/approvals",
        json=approve,
        cookies=cookie,
        headers={"X-CSRF-Token": session["csrf_token"]},
    )
    assert approved.status_code == 201, approved.text

    # Single sign-on turned off: the cookie counts for nothing at once; tokens still work.
    text = (project / "interlock.yaml").read_text()
    write_config(project, text[: text.index("sso:")])
    server.api("POST", "/config/reload", {"reason": ""})
    refused = httpx.get(f"{server.url}/api/v1/releases/{rid}", cookies=cookie)
    assert refused.status_code == 401
    assert "single sign-on is not configured" in refused.json()["detail"]
    assert httpx.get(f"{server.url}/auth/providers").json()["sso"] is None

"""The release room in Debian's Chromium: acting from the browser, as permitted, accessibly."""
# ruff: noqa: F811  (the fixtures imported from test_web_ui are parameters here, by name)

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.axe import violations
from tests.acceptance.conftest import one_backend
from tests.acceptance.test_web_ui import (  # noqa: F401  (fixtures used by name)
    Person,
    _sign_in,
    _token,
    expect,
    people,
)
from tests.helpers import write_config

pytestmark = pytest.mark.browser

ROOM = """\
version: 1
teams: {payments: [carol]}
roles: {release-managers: [alice, bob], oncall: [olga]}
permissions:
  - {team: payments, allow: [release.create, release.cancel], services: owned}
  - {role: release-managers, allow: [approve]}
  - {role: oncall, allow: [rollback, lock, incident.manage, runbook.run, runbook.sign]}
  - {user: viv, allow: [read]}
environments:
  - name: staging
  - name: production
    gates:
      before:
        - approval: {rules: [{role: release-managers, count: 2}]}
services:
  api:
    owner: payments
    deploy:
      - name: roll-out
        run: echo "deploying {{ service }} {{ version }} to {{ environment }}"
    rollback:
      - name: roll-back
        run: echo "rolling {{ service }} back to {{ version }} in {{ environment }}"
runbooks:
  restart:
    description: Restart the API in one region
    params: {region: {required: true, description: Which region}}
    steps:
      - {name: drain, run: "echo drained {{ params.region }}"}
      - name: confirm
        manual: {instructions: "Check the dashboards are green", role: oncall}
"""

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"


def _shot(page: Any, name: str) -> None:
    """With INTERLOCK_SCREENSHOTS=1, keep the page as docs/web-ui.md shows it."""
    if os.environ.get("INTERLOCK_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _accessible(page: Any, name: str) -> None:
    assert violations(page) == [], f"axe-core on the {name} page"
    _shot(page, name)


def _within_the_app(page: Any, path: str) -> None:
    """Go to ``path`` as the app's own links do (history, no page load)."""
    page.evaluate(
        "(path) => { history.pushState(null, '', path);"
        " dispatchEvent(new PopStateEvent('popstate')); }",
        path,
    )
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def _release_through(server: Any, carol: str, alice: str, bob: str, version: str) -> str:
    """A release approved by two and gone through, by the API (set-up, not what is proven)."""
    rid = server.create(f"api@{version}", reason=f"ship {version}", token=carol)
    gate = {"environment": "production", "gate": "approval"}  # ahead of time if need be
    for token in (alice, bob):
        server.api("POST", f"/releases/{rid}/approvals", gate, token=token)
    assert server.wait_release(rid, timeout=120)["state"] == "succeeded"
    return str(rid)


def test_create_in_the_browser_two_sign_off_then_roll_back(project, server, people):
    write_config(project, ROOM)
    server.start()
    carol, alice, bob, olga = (_token(server, n) for n in ("carol", "alice", "bob", "olga"))

    # Carol creates a release in the browser: the plan and its duration come first.
    page = _sign_in(people(), server, carol, "carol")
    page.get_by_role("link", name="New release").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New release")
    page.get_by_label("Version").fill("1.0.0")
    page.get_by_label("Reason").fill("PAY-1: first fee rules")
    page.get_by_role("button", name="Show the plan").click()
    plan = page.locator("#plan-result")
    expect(plan).to_contain_text("Route: staging → production")
    expect(page.locator("#plan-total")).to_have_text(re.compile(r"\d"))
    expect(plan.locator('[data-plan-env="production"]')).to_contain_text(
        "gate approval (approval): expected wait unknown, no approval given here before"
    )
    _accessible(page, "new-release")
    page.get_by_role("button", name="Create the release").click()
    expect(page).to_have_url(re.compile(r"/ui/releases/\d+$"))
    rid = page.url.rsplit("/", 1)[1]
    expect(page.locator("#release-reason")).to_have_text("PAY-1: first fee rules")
    gate = page.locator('[data-gate="production/approval"]')
    expect(gate).to_contain_text("2 from role release-managers")
    # Carol may cancel her release, not roll it back: no rollback form for her.
    expect(page.get_by_text("Cancel this release…")).to_be_visible()
    expect(page.locator("[data-rollback]")).to_have_count(0)
    _accessible(page, "release")

    # Two people sign off in their own browsers; Carol's page follows to the end.
    for token, name in ((alice, "alice"), (bob, "bob")):
        other = _sign_in(people(), server, token, name)
        other.goto(f"{server.url}/ui/releases/{rid}")
        other.locator('[data-gate="production/approval"]').get_by_role(
            "button", name="Approve"
        ).click()
        expect(other.locator(".notice")).to_contain_text("You approved production/approval")
    expect(page.locator("h1 .state")).to_have_text("succeeded", timeout=30_000)

    # A second version goes out; Olga (on call) rolls it back from the browser.
    second = _release_through(server, carol, alice, bob, "1.1.0")
    oncall = _sign_in(people(), server, olga, "olga")
    oncall.goto(f"{server.url}/ui/releases/{second}")
    expect(oncall.locator("h1 .state")).to_have_text("succeeded")
    expect(oncall.get_by_text("Cancel this release…")).to_have_count(0)
    rollback = oncall.locator('[data-rollback="production/api"]')
    rollback.locator("summary").click()
    rollback.get_by_label("Why roll back?").fill("fees double-charged")
    rollback.get_by_role("button", name="Show what would run").click()
    preview = rollback.locator(".dry-run")
    expect(preview).to_contain_text("api goes from 1.1.0 back to 1.0.0 in production")
    expect(preview).to_contain_text('$ echo "rolling api back to 1.0.0 in production"')
    # Nothing happened yet: production still runs 1.1.0.
    status = server.api("GET", "/status")["entries"]
    assert any(e["version"] == "1.1.0" and e["environment"] == "production" for e in status)
    _accessible(oncall, "rollback-dry-run")
    rollback.get_by_role("button", name="Roll back now").click()
    expect(oncall.locator(".notice")).to_contain_text("Rolling api back to 1.0.0 in production")
    oncall.get_by_role("link", name=re.compile(r"^release \d+$")).click()
    expect(oncall.locator("h1 .state")).to_have_text("succeeded", timeout=30_000)
    oncall.get_by_role("link", name="Environments").click()
    oncall.get_by_role("link", name="production").click()
    expect(oncall.locator('[data-runs="api/production"]')).to_contain_text("1.0.0")
    expect(oncall.locator("#history")).to_contain_text("rollback")
    _accessible(oncall, "environment")


# What the runbook pages show and let one do; runbook runs and their sign-off are proven on
# both backends in tests/integration/test_runbook_scope.py and test_recovery_ops.py.
@one_backend
def test_a_runbook_is_started_and_signed_with_its_output_shown(project, server, people):
    write_config(project, ROOM)
    server.start()
    olga = _token(server, "olga")
    page = _sign_in(people(), server, olga, "olga")
    page.get_by_role("link", name="Runbooks").click()
    book = page.locator('[data-runbook="restart"]')
    expect(book).to_contain_text("confirm (manual, signed by oncall)")
    _accessible(page, "runbooks")
    book.get_by_text("Start restart…").click()
    book.get_by_label("Environment").select_option("production")
    book.get_by_role("button", name="Start the run").click()
    expect(book.get_by_role("alert")).to_contain_text("region: this is needed")
    book.get_by_label("region").fill("eu-west-1")
    book.get_by_label("Why run it?").fill("pods stuck")
    book.get_by_role("button", name="Start the run").click()
    expect(page).to_have_url(re.compile(r"/ui/runbook-runs/\d+$"))
    drain = page.locator('[data-step="drain"]')
    expect(drain).to_contain_text("succeeded")
    expect(drain.get_by_label("Output of drain")).to_contain_text("drained eu-west-1")
    confirm = page.locator('[data-step="confirm"]')
    expect(confirm).to_contain_text("Check the dashboards are green")
    expect(confirm).to_contain_text("waiting")
    _accessible(page, "runbook-run")
    confirm.get_by_label("What you did and saw").fill("all green")
    confirm.get_by_role("button", name="Sign off").click()
    expect(page.locator(".notice")).to_contain_text("You signed off confirm")
    expect(page.locator("h1 .state")).to_have_text("succeeded")
    run_id = page.url.rsplit("/", 1)[1]
    events = server.api("GET", "/audit", limit=1000)["items"]
    assert any(
        e["action"] == "step.signed_off" and e["actor"] == "olga" and e["reason"] == "all green"
        for e in events
    ), run_id


@one_backend  # what a person sees and may do (the matrix: tests/integration, both)
def test_who_may_not_act_sees_no_button_and_the_api_refuses(project, server, people):
    write_config(project, ROOM)
    server.start()
    carol, viv, olga = (_token(server, n) for n in ("carol", "viv", "olga"))
    rid = server.create("api@2.0.0", reason="r", token=carol)

    page = _sign_in(people(), server, viv, "viv")
    expect(page.locator("tr[data-release]")).to_have_count(1)
    expect(page.get_by_role("link", name="New release")).to_have_count(0)
    page.goto(f"{server.url}/ui/releases/{rid}")
    expect(page.locator("#release-reason")).to_have_text("r")
    expect(page.locator('[data-gate="production/approval"]')).to_be_visible()
    expect(page.get_by_text("Cancel this release…")).to_have_count(0)
    expect(page.locator("section.actions")).to_have_count(0)
    page.goto(f"{server.url}/ui/environments/production")
    expect(page.locator("#lock-state")).to_contain_text("Open")
    expect(page.get_by_role("button", name="Lock production")).to_have_count(0)
    page.goto(f"{server.url}/ui/runbooks")
    expect(page.locator('[data-runbook="restart"]')).to_be_visible()
    expect(page.get_by_text("Start restart…")).to_have_count(0)

    # Trying anyway, from her own page through its own api.js (so as she is signed in,
    # token or single sign-on cookie alike): 403 with the reason.
    answer = page.evaluate(
        """async (rid) => {
            const { api } = await import("/ui/api.js");
            const call = (path, body) => api(path, { method: "POST", body }).then(
                () => [200, ""], (error) => [error.status, error.detail]);
            return [
                await call(`/releases/${rid}/cancel`, {reason: "mine now"}),
                await call("/environments/production/lock", {reason: "mine now"}),
                await call("/runbooks/restart/runs", {params: {region: "x"}}),
            ];
        }""",
        rid,
    )
    assert [status for status, _ in answer] == [403, 403, 403]
    assert "viv may not release.cancel" in answer[0][1]

    # Her page stays open on production, holding one long-poll at a time.
    page.goto(f"{server.url}/ui/environments/production")
    expect(page.locator("#lock-state")).to_contain_text("Open")
    open_polls: list[str] = []
    most = [0]

    def started(request: Any) -> None:
        if "/api/v1/changes" in request.url:
            open_polls.append(request.url)
            most[0] = max(most[0], len(open_polls))

    def ended(request: Any) -> None:
        if request.url in open_polls:
            open_polls.remove(request.url)

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)

    # Who may lock sees the button, and locking shows at once.
    oncall = _sign_in(people(), server, olga, "olga")
    oncall.goto(f"{server.url}/ui/environments/production")
    # By keyboard alone: Tab from the top reaches the reason, Enter submits.
    expect(oncall.get_by_role("button", name="Lock production")).to_be_visible()
    for _ in range(40):
        oncall.keyboard.press("Tab")
        if oncall.evaluate("document.activeElement.id") == "lock-form-reason":
            break
    else:
        pytest.fail("Tab never reached the lock's reason")
    oncall.keyboard.type("incident 42")
    oncall.keyboard.press("Enter")
    expect(oncall.locator("#lock-state")).to_contain_text("Locked by olga")
    expect(oncall.get_by_role("button", name="Unlock production")).to_be_visible()
    # Viv's open page learns of it through its one long-poll, without a reload.
    expect(page.locator("#lock-state")).to_contain_text("Locked by olga")
    expect(page.locator("#lock-state")).to_contain_text("incident 42")
    assert most[0] == 1, "a page holds one long-poll at a time"


@one_backend  # the pages' markup, not what the database holds
def test_every_page_is_accessible(project, server, people):
    """axe-core finds no serious or critical violation on any page, signed in or not."""
    write_config(project, ROOM)
    server.start()
    admin = (project / ".interlock" / "admin.token").read_text().strip()
    rid = server.create("api@3.0.0", reason="a11y", until="staging")
    step = server.wait_release(rid, timeout=120)["deployments"][0]["steps"][0]["id"]
    person = people()
    person.page.goto(f"{server.url}/ui/signin")
    expect(person.page.get_by_label("API token")).to_be_visible()
    _accessible(person.page, "signin")
    page = _sign_in(person, server, admin, "admin")
    pages = {
        "releases": "/ui/releases",
        "release-done": f"/ui/releases/{rid}",
        "log": f"/ui/steps/{step}/logs",
        "waiting": "/ui/approvals",
        "status": "/ui/status",
        "incidents": "/ui/incidents",
        "environments": "/ui/environments",
        "service": "/ui/services/api",
        "calendar": "/ui/calendar",
        "calendar-week": "/ui/calendar?view=week",
        "metrics": "/ui/metrics",
        "audit": "/ui/audit",
        "overrides": "/ui/overrides",
    }
    for name, path in pages.items():
        # Within the app, as its links go (axe-core is loaded into the page once): a
        # page load each would parse the app and axe-core again for nothing it proves.
        _within_the_app(page, path)
        expect(page.locator("main .loading")).to_have_count(0)
        expect(page.locator("h1")).to_be_visible()
        _accessible(page, name)
    # The log page before its output arrives (CI once checked it in that moment: an
    # empty output pane must be accessible too).
    held: list[Any] = []
    holding = [True]

    def hold(route: Any) -> None:
        if holding[0]:
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r"/api/v1/steps/\d+/logs"), hold)
    _within_the_app(page, pages["log"])
    expect(page.locator("#log-output")).to_be_attached()
    expect(page.locator("#log-output")).to_be_empty()
    _accessible(page, "log-before-output")
    holding[0] = False
    for route in held:
        route.continue_()
    expect(page.locator("#log-output")).not_to_be_empty()  # then the output comes
    # The release stopped after staging: promote the same artifacts to production.
    page.goto(f"{server.url}/ui/releases/{rid}")
    promote = page.locator("#promote")
    expect(promote).to_contain_text("This release stopped after staging")
    promote.get_by_label("Reason for the promotion").fill("a11y, on to production")
    promote.get_by_role("button", name="Promote to production").click()
    expect(page).not_to_have_url(f"{server.url}/ui/releases/{rid}")
    expect(page.locator("#release-reason")).to_have_text("a11y, on to production")
    expect(page.locator(".route")).not_to_contain_text("staging")
    expect(page.locator('[data-gate="production/approval"]')).to_be_visible()
    # The audit trail: filtered by action, and exported whole.
    page.goto(f"{server.url}/ui/audit")
    page.get_by_label("Action (e.g. release.created)").fill("release.created")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/ui/audit\?action=release.created$"))
    rows = page.locator("#audit-events tbody tr")
    expect(rows).to_have_count(2)  # the release, and its promotion
    page.get_by_role("button", name="Export the trail").click()
    with page.expect_download() as download:
        page.locator("#export-link").click()
    exported = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    assert sum(e["action"] == "release.created" for e in exported) == 2
    assert all(e["hash"] for e in exported)  # with its hashes: verifiable offline
    # The metrics page draws its weekly charts from one series call, not one call a week.
    calls: list[str] = []

    def metrics_call(request: Any) -> None:
        if "/api/v1/metrics" in request.url:
            calls.append(request.url)

    page.on("request", metrics_call)
    page.goto(f"{server.url}/ui/metrics?env=staging")
    chart = page.locator('[data-metric="deployment_frequency"] svg.chart')
    expect(chart).to_be_visible()
    expect(chart.locator("rect.bar")).to_have_count(12)  # a bar a week, 0 a bar too
    title = chart.locator("title").text_content() or ""
    # This week holds the deployment to staging; the 11 before it hold none.
    assert re.findall(r"\(n=(\d+)\)", title) == ["0"] * 11 + ["1"], title
    page.remove_listener("request", metrics_call)
    assert len([u for u in calls if "/api/v1/metrics/series?" in u]) == 1, calls
    assert len([u for u in calls if "/api/v1/metrics?" in u]) == 1, calls  # the whole period
    page.goto(f"{server.url}/ui/calendar")
    expect(page.locator("#ical-feed")).to_have_attribute("href", "/api/v1/calendar.ics")
    # Every control is reachable by the keyboard: Tab from the top reaches the main nav.
    page.goto(f"{server.url}/ui/releases")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused


ONCALL = """\
version: 1
roles: {oncall: [olga], auditors: [aud]}
permissions:
  - role: oncall
    allow: [release.create, rollback, lock, incident.manage, freeze.override, runbook.run]
  - {role: auditors, allow: [audit.read, read]}
environments:
  - name: dev
    on_failure: pause
  - name: production
    gates:
      before:
        - window:
            timezone: UTC
            freeze: [{from: FROM, to: TO, reason: change freeze}]
services:
  api:
    deploy:
      - {name: roll-out, run: "test -f fixed-{{ version }}"}
"""


def test_on_call_resolves_breaks_glass_opens_incidents_and_blocks(project, server, people):
    today = datetime.now(UTC).date()  # a freeze in force, ending within the windows' horizon
    frozen = ONCALL.replace("FROM", str(today - timedelta(days=1)))
    write_config(project, frozen.replace("TO", str(today + timedelta(days=30))))
    server.start()
    olga, aud = (_token(server, n) for n in ("olga", "aud"))
    rid = server.create("api@1.0.0", reason="r", token=olga)

    # The step failed and dev pauses for a person: she fixes the cause, then retries.
    page = _sign_in(people(), server, olga, "olga")
    page.goto(f"{server.url}/ui/releases/{rid}")
    step = page.locator('tr[data-step="dev/api/roll-out"]')
    expect(step).to_contain_text("needs attention", timeout=30_000)
    _accessible(page, "resolve")
    (project / "fixed-1.0.0").touch()
    step.get_by_label("Decision").select_option("retry")
    step.get_by_label("Why?").fill("the flag file is back")
    step.get_by_role("button", name="Resolve").click()
    expect(page.locator(".notice")).to_contain_text("You resolved dev/api/roll-out: retry")

    # Production is frozen: she breaks glass, and the release goes through.
    gate = page.locator('[data-gate="production/window"]')
    expect(gate).to_contain_text("change freeze", timeout=30_000)
    glass = page.locator('[data-override="production"]')
    glass.locator("summary").click()
    glass.get_by_label("Why is this an emergency?").fill("payments down, hotfix")
    glass.get_by_role("button", name="Override the window").click()
    expect(page.locator(".notice")).to_contain_text("You overrode the window of production")
    expect(page.locator("h1 .state")).to_have_text("succeeded", timeout=30_000)

    # An auditor reviews the override; its author may not review her own.
    page.get_by_role("link", name="Overrides").click()
    expect(page.locator("main")).to_contain_text("Reviewing overrides needs audit.read")
    auditor = _sign_in(people(), server, aud, "aud")
    auditor.get_by_role("link", name="Overrides").click()
    row = auditor.locator("tr[data-override]")
    expect(row).to_contain_text("payments down, hotfix")
    row.get_by_role("textbox", name="Review").fill("justified: outage INC-7")
    row.get_by_role("button", name="Record the review").click()
    expect(row).to_contain_text("aud: justified: outage INC-7")

    # She opens an incident, linked to the deployment that caused it, and resolves it.
    page.get_by_role("link", name="Incidents").click()
    page.get_by_text("Open an incident…").click()
    opening = page.locator("#open-incident")
    opening.get_by_label("Environment", exact=True).select_option("production")
    opening.get_by_label("Service", exact=True).select_option("api")
    opening.get_by_label("What is wrong?").fill("error rate up")
    opening.get_by_role("button", name="Open the incident").click()
    expect(opening).to_contain_text(re.compile(r"Incident #1 opened, linked to deployment \d+"))
    expect(page.locator("#incidents")).to_contain_text("error rate up")
    _accessible(page, "incidents-act")
    page.get_by_text("Resolve an incident…").click()
    closing = page.locator("#resolve-incident")
    closing.get_by_label("Incident #").fill("1")
    closing.get_by_label("How was it resolved?").fill("hotfix holds")
    closing.get_by_role("button", name="Resolve").click()
    expect(closing).to_contain_text("Incident #1 resolved")
    expect(page.locator("#open-title")).to_have_text("Open (0)")

    # She blocks the version on the service's page, then allows it again.
    digest = "sha256:" + "b" * 64
    server.api("POST", "/artifacts", {"service": "api", "version": "1.1.0", "digest": digest})
    page.goto(f"{server.url}/ui/services/api")
    version = page.locator('tr[data-version="1.1.0"]')
    version.get_by_text("Block 1.1.0…").click()
    version.get_by_label("Why block it?").fill("corrupts the ledger")
    version.get_by_role("button", name="Block this version").click()
    expect(version).to_contain_text("blocked: corrupts the ledger")
    assert server.api("GET", "/artifacts/api/1.1.0")["blocked"] is True
    version.get_by_text("Unblock 1.1.0…").click()
    version.get_by_label("Why unblock it?").fill("false alarm")
    version.get_by_role("button", name="Unblock").click()
    expect(version.locator("td").nth(4)).to_have_text("no")
    _accessible(page, "service-act")

    # The calendar: the freeze on every day it holds, and a release scheduled in it.
    at = (datetime.now(UTC) + timedelta(days=2)).replace(hour=10, minute=0, second=0)
    server.create("api@1.2.0", reason="after the freeze", at=at.isoformat(), token=olga)
    page.goto(f"{server.url}/ui/calendar?date={at.date()}")  # the month it falls in
    day = page.locator(f'td[data-day="{at.date()}"]')  # (the browser's time zone is UTC here)
    expect(day).to_contain_text("Freeze: change freeze (production)")
    expect(day).to_contain_text("api@1.2.0")
    expect(page.locator('[data-window="production"]')).to_contain_text("any time outside freezes")
    _accessible(page, "calendar-frozen")

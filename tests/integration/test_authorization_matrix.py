"""The authorization matrix, generated from the app's routes: every route × every caller.

The routes come from the real FastAPI app (API, web UI, hooks, health); the
answers come from ONE table, ``ROUTES``. A route missing from the table, or a
caller missing from a row, fails the test with the route and caller named, so
a new route cannot skip it. To add a route: add a row keyed by its method and
path as FastAPI declares it; ``Case.path`` and ``Case.body`` say how to call it.

Answers: ``OK`` is anything that got past authorization (2xx, 3xx, or a 409
about the object's state); a number is that exact status, with an
``application/problem+json`` body for 4xx. 403: may see it, may not act on it;
404: may not even see it (an id of another team's object is not probed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import iter_route_contexts

from interlock.engine.recovery import recover
from interlock.engine.steps import claim
from tests.support.api import Api, served

CONFIG = """\
version: 1
teams: {payments: [owner], search: [other]}
roles: {release-managers: [approver], viewers: [viewer], oncall: [runner]}
permissions:
  - {role: viewers, allow: [read]}
  # runbook rules as usually written: no services (runbooks belong to no team)
  - {role: oncall, allow: [runbook.run, runbook.sign]}
  - {role: release-managers, allow: [approve]}
  - team: payments
    allow: [release.create, release.cancel, rollback, incident.manage, artifact.register,
            freeze.override, lock, runbook.run, runbook.sign]
    services: owned
  - team: search
    allow: [release.create, release.cancel, rollback, incident.manage, artifact.register,
            freeze.override, lock]
    services: owned
runbooks:
  check:
    steps:
      - {name: look, run: "true", idempotent: false}
      - {name: confirm, manual: {team: payments, instructions: "look at the graphs"}}
notifications:
  webhooks: [{name: audit, url: "http://127.0.0.1:9/never"}]
environments:
  - name: staging
  - name: production
    gates:
      before:
        - approval: {rules: [{role: release-managers}]}
services:
  api: {owner: payments, deploy: [{name: roll-out, run: "true"}]}
  search: {owner: search, deploy: [{name: roll-out, run: "true"}]}
"""

ACTORS = ("anonymous", "bad_token", "viewer", "owner", "other", "approver", "runner", "admin")
OK = "ok"


def signed_in(**answers: object) -> dict[str, object]:
    """No token or a bad one: 401; the others as given (default: OK)."""
    return {"anonymous": 401, "bad_token": 401, **dict.fromkeys(ACTORS[2:], OK), **answers}


def everyone() -> dict[str, object]:
    return dict.fromkeys(ACTORS, OK)


def admin_only(denied: int = 403) -> dict[str, object]:
    return signed_in(**dict.fromkeys(ACTORS[2:-1], denied))


# A CDEvent registering a build of api
ARTIFACT_PUBLISHED = {
    "context": {
        "specversion": "0.5.1",
        "id": "matrix-1",
        "source": "/matrix",
        "type": "dev.cdevents.artifact.published.0.3.0",
        "timestamp": "2026-01-01T00:00:00Z",
    },
    "subject": {
        "id": "pkg:generic/api@2.5.0?checksum=sha256:" + "5" * 64,
        "source": "/matrix",
        "content": {},
    },
}

# An object of the owning team: who may read it sees it, the other team does not, and
# neither does who only runs and signs runbooks (that is no `read` of any service).
READ_RELEASE = signed_in(other=404, runner=404)


@dataclass(frozen=True)
class Case:
    expect: dict[str, object]
    path: str | None = None  # default: the route's path, {names} filled from the objects
    body: Any = None
    last: bool = False  # allowed calls that change what later calls see run at the end


def cases(*found: Case) -> list[Case]:
    return list(found)


# The ONE table: (method, route path) -> what each caller gets.
ROUTES: dict[tuple[str, str], list[Case]] = {
    # -- public: health, API description, the web UI (its data comes from the API)
    ("GET", "/healthz"): cases(Case(everyone())),
    ("GET", "/readyz"): cases(Case(everyone())),
    ("GET", "/openapi.json"): cases(Case(everyone())),
    ("GET", "/docs"): cases(Case(everyone())),
    ("GET", "/redoc"): cases(Case(everyone())),
    ("GET", "/docs/oauth2-redirect"): cases(Case(everyone())),
    ("GET", "/"): cases(Case(everyone())),
    ("GET", "/ui"): cases(Case(everyone())),
    ("GET", "/ui/"): cases(Case(everyone())),
    ("GET", "/ui/{path:path}"): cases(Case(everyone(), path="/ui/releases/1")),
    ("GET", "/metrics"): cases(Case(admin_only())),
    # -- single sign-on of the web UI (not configured here: tests/acceptance/test_sso.py)
    ("GET", "/auth/providers"): cases(Case(everyone())),
    ("GET", "/auth/sso/login"): cases(Case(dict.fromkeys(ACTORS, 404))),
    ("GET", "/auth/sso/callback"): cases(Case(dict.fromkeys(ACTORS, 404))),
    # a token is no browser session: only the session cookie answers here
    ("GET", "/auth/session"): cases(Case(dict.fromkeys(ACTORS, 401))),
    ("POST", "/auth/signout"): cases(Case(everyone())),
    # `interlock login` needs single sign-on too
    ("GET", "/auth/cli"): cases(Case(dict.fromkeys(ACTORS, 404))),
    ("POST", "/auth/cli"): cases(Case(dict.fromkeys(ACTORS, 404))),
    ("POST", "/auth/cli/token"): cases(
        Case(dict.fromkeys(ACTORS, 404), body={"code": "x", "verifier": "v" * 43})
    ),
    # -- releases
    ("POST", "/api/v1/releases"): cases(
        Case(
            signed_in(viewer=403, other=403, approver=403, runner=403),
            body={"services": ["api@2.0.0"], "reason": "matrix", "until": "staging"},
        )
    ),
    ("GET", "/api/v1/releases"): cases(Case(signed_in())),
    ("GET", "/api/v1/releases/{release_id}"): cases(Case(READ_RELEASE)),
    ("POST", "/api/v1/releases/{release_id}/cancel"): cases(
        Case(
            signed_in(viewer=403, other=404, approver=403, runner=404),
            body={"reason": "m"},
            last=True,
        )
    ),
    ("GET", "/api/v1/releases/{release_id}/logs"): cases(Case(READ_RELEASE)),
    ("GET", "/api/v1/releases/{release_id}/notes"): cases(Case(READ_RELEASE)),
    ("GET", "/api/v1/estimates"): cases(Case(signed_in(), path="/api/v1/estimates?service=api")),
    # a plan is refused as creating the release would be
    ("POST", "/api/v1/plans"): cases(
        Case(
            signed_in(viewer=403, other=403, approver=403, runner=403),
            body={"services": ["api@2.0.0"], "until": "staging"},
        )
    ),
    # what pages follow: a counter of changes, and what the caller may do
    ("GET", "/api/v1/changes"): cases(Case(signed_in())),
    ("GET", "/api/v1/users/me/abilities"): cases(Case(signed_in())),
    # -- approvals and break-glass
    ("POST", "/api/v1/releases/{release_id}/approvals"): cases(
        Case(
            # the owner is the release's author (four-eyes); the admin is in no rule
            signed_in(viewer=403, owner=403, other=404, runner=404, admin=403),
            body={"decision": "approve", "environment": "production"},
        )
    ),
    ("GET", "/api/v1/approvals/pending"): cases(Case(signed_in())),
    ("POST", "/api/v1/releases/{release_id}/overrides"): cases(
        Case(
            signed_in(viewer=403, other=404, approver=403, runner=404),
            body={"environment": "production", "reason": "matrix"},
        )
    ),
    ("GET", "/api/v1/overrides"): cases(Case(admin_only())),
    ("POST", "/api/v1/overrides/{override_id}/review"): cases(
        Case(admin_only(), body={"comment": "justified"})
    ),
    # -- artifacts
    ("POST", "/api/v1/artifacts"): cases(
        Case(
            signed_in(viewer=403, other=403, approver=403, runner=403),
            body={"service": "api", "version": "3.0.0", "digest": "sha256:" + "3" * 64},
        )
    ),
    ("GET", "/api/v1/artifacts"): cases(Case(signed_in())),
    ("GET", "/api/v1/versions/{version}/services"): cases(Case(signed_in())),
    ("GET", "/api/v1/artifacts/{service}/{version}"): cases(Case(READ_RELEASE)),
    ("POST", "/api/v1/artifacts/{service}/{version}/block"): cases(
        Case(
            signed_in(viewer=403, other=403, approver=403, runner=403), body={"reason": "bad build"}
        )
    ),
    ("POST", "/api/v1/artifacts/{service}/{version}/unblock"): cases(
        Case(
            signed_in(viewer=403, other=403, approver=403, runner=403),
            body={"reason": "fixed"},
            last=True,
        )
    ),
    ("POST", "/api/v1/observations"): cases(
        Case(
            signed_in(viewer=403, other=403, approver=403, runner=403),
            body={"service": "api", "environment": "staging", "version": "1.0.0"},
        )
    ),
    # -- deployments and steps (a release's, and a runbook run's)
    ("GET", "/api/v1/deployments"): cases(Case(signed_in())),
    ("GET", "/api/v1/deployments/{deployment_id}"): cases(
        Case(READ_RELEASE),
        Case(
            # who runs runbooks sees the runs (here: every environment)
            signed_in(viewer=404, other=404, approver=404),
            path="/api/v1/deployments/{run_id}",
        ),
    ),
    ("GET", "/api/v1/steps/{step_id}"): cases(
        Case(READ_RELEASE),
        Case(
            signed_in(viewer=404, other=404, approver=404),
            path="/api/v1/steps/{run_step_id}",
        ),
    ),
    ("GET", "/api/v1/steps/{step_id}/logs"): cases(Case(READ_RELEASE)),
    ("POST", "/api/v1/steps/{step_id}/resolve"): cases(
        Case(
            signed_in(viewer=403, other=404, approver=403, runner=404),
            body={"action": "skip", "reason": "m"},
        ),
        # rollback on one's own services does not reach a runbook run's step
        Case(
            signed_in(viewer=404, other=404, approver=404),
            path="/api/v1/steps/{run_step_id}/resolve",
            body={"action": "skip", "reason": "m"},
            last=True,
        ),
    ),
    ("GET", "/api/v1/status"): cases(Case(signed_in())),
    # -- environments: a lock stops every service there, so it needs them all
    ("GET", "/api/v1/environments/locks"): cases(Case(signed_in())),
    ("POST", "/api/v1/environments/{environment}/lock"): cases(
        Case(admin_only(), body={"reason": "matrix"})
    ),
    ("DELETE", "/api/v1/environments/{environment}/lock"): cases(Case(admin_only(), last=True)),
    # -- recovery and incidents
    ("POST", "/api/v1/rollbacks"): cases(
        Case(
            signed_in(viewer=403, other=403, approver=403, runner=403),
            body={"service": "api", "environment": "staging", "reason": "m", "dry_run": True},
        )
    ),
    ("POST", "/api/v1/incidents"): cases(
        Case(
            signed_in(viewer=403, other=403, approver=403, runner=403),
            body={"environment": "staging", "service": "api", "summary": "m"},
        ),
        # about no service: only a rule covering every service there
        Case(admin_only(), body={"environment": "production", "summary": "m"}),
    ),
    ("GET", "/api/v1/incidents"): cases(Case(signed_in())),
    ("GET", "/api/v1/incidents/{incident_id}"): cases(Case(READ_RELEASE)),
    ("POST", "/api/v1/incidents/{incident_id}/resolve"): cases(
        Case(
            signed_in(viewer=403, other=404, approver=403, runner=404),
            body={"note": "m"},
            last=True,
        ),
        Case(
            admin_only(), path="/api/v1/incidents/{unowned_incident_id}/resolve", body={"note": "m"}
        ),
    ),
    # -- runbooks: not owned by a team; runbook.run (the owner's team in some services, the
    #    runner's role everywhere) governs them
    ("GET", "/api/v1/runbooks"): cases(Case(signed_in())),
    ("POST", "/api/v1/runbooks/{name}/runs"): cases(
        Case(
            signed_in(viewer=403, other=403, approver=403),
            path="/api/v1/runbooks/check/runs",
            body={"environment": "staging"},
        )
    ),
    # a list shows the runs one may see (none: empty); a run one may not see is 404 as one
    # that does not exist, whoever asks (ids are not probed)
    ("GET", "/api/v1/runbook-runs"): cases(Case(signed_in())),
    ("GET", "/api/v1/runbook-runs/{run_id}"): cases(
        Case(signed_in(viewer=404, other=404, approver=404))
    ),
    ("POST", "/api/v1/runbook-runs/{run_id}/steps/{step}/sign"): cases(
        Case(
            # the admin is not in the team that signs it
            signed_in(viewer=404, other=404, approver=404, runner=403, admin=403),
            path="/api/v1/runbook-runs/{run_id}/steps/confirm/sign",
            body={"comment": "ok"},
        ),
        # run ids are not probed: who may not see a run (or a release's deployment)
        # hears 404 as for a run that does not exist; nor step names: who sees a run
        # but may not sign hears 403 before the step is looked for
        Case(
            signed_in(viewer=404, other=404, approver=404, owner=404, runner=404, admin=404),
            path="/api/v1/runbook-runs/{run_id}/steps/nope/sign",
            body={},
        ),
        Case(
            signed_in(viewer=404, other=404, approver=404, owner=404, runner=404, admin=404),
            path="/api/v1/runbook-runs/999999/steps/confirm/sign",
            body={},
        ),
        Case(
            signed_in(viewer=403, other=404, approver=403, owner=404, runner=404, admin=404),
            path="/api/v1/runbook-runs/{deployment_id}/steps/roll-out/sign",
            body={},
        ),
    ),
    # -- insight
    ("GET", "/api/v1/diff/{env_a}/{env_b}"): cases(
        Case(signed_in(), path="/api/v1/diff/staging/production")
    ),
    ("GET", "/api/v1/calendar"): cases(Case(signed_in())),
    ("GET", "/api/v1/calendar.ics"): cases(Case(signed_in())),
    # -- audit, config, metrics, webhooks: grants of their own
    ("GET", "/api/v1/audit"): cases(Case(admin_only())),
    ("GET", "/api/v1/audit/verify"): cases(Case(admin_only())),
    ("GET", "/api/v1/audit/checkpoint"): cases(Case(admin_only())),
    ("POST", "/api/v1/audit/checkpoint"): cases(Case(admin_only())),  # 409 here: no directory
    ("GET", "/api/v1/audit/evidence"): cases(Case(admin_only())),
    ("GET", "/api/v1/audit/export"): cases(Case(admin_only())),
    ("GET", "/api/v1/config"): cases(Case(admin_only())),
    ("POST", "/api/v1/config/reload"): cases(Case(admin_only())),
    ("GET", "/api/v1/config/diff"): cases(Case(admin_only())),
    ("GET", "/api/v1/config/changes"): cases(Case(admin_only())),
    ("GET", "/api/v1/config/changes/{change_id}"): cases(
        Case({**admin_only(), "admin": 404}, path="/api/v1/config/changes/1")
    ),
    # the config asks no approval for config changes: a 409 for whoever asks
    ("POST", "/api/v1/config/changes/{change_id}/approve"): cases(
        Case(signed_in(), path="/api/v1/config/changes/1/approve", body={})
    ),
    ("POST", "/api/v1/config/changes/{change_id}/reject"): cases(
        Case(signed_in(), path="/api/v1/config/changes/1/reject", body={})
    ),
    ("GET", "/api/v1/metrics"): cases(Case(admin_only())),
    ("GET", "/api/v1/metrics/manual-steps"): cases(Case(admin_only())),
    ("GET", "/api/v1/metrics/series"): cases(Case(admin_only())),
    ("GET", "/api/v1/webhooks"): cases(Case(admin_only())),
    ("POST", "/api/v1/webhooks/{name}/skip"): cases(
        Case(admin_only(), path="/api/v1/webhooks/audit/skip", body={"through": 1, "reason": "m"})
    ),
    ("POST", "/api/v1/webhooks/{name}/retry"): cases(
        Case(admin_only(), path="/api/v1/webhooks/audit/retry")
    ),
    # -- events in: a token with artifact.register (or a signature) for CDEvents;
    #    GitHub deliveries are signed only, so a token is not enough
    ("POST", "/api/v1/events"): cases(
        Case(signed_in(viewer=403, other=403, approver=403, runner=403), body=ARTIFACT_PUBLISHED)
    ),
    ("POST", "/api/v1/hooks/github"): cases(Case(dict.fromkeys(ACTORS, 401), body={})),
    # -- messages to people: reading needs audit.read or config.read, a test message
    #    webhooks.manage; Slack's requests are signed only; a link is its own credential
    ("GET", "/api/v1/notifications/channels"): cases(Case(admin_only())),
    ("GET", "/api/v1/notifications/log"): cases(Case(admin_only())),
    ("POST", "/api/v1/notifications/channels/{name}/test"): cases(
        Case({**admin_only(), "admin": 404}, path="/api/v1/notifications/channels/none/test")
    ),
    ("POST", "/api/v1/hooks/slack"): cases(Case(dict.fromkeys(ACTORS, 401), body={})),
    ("GET", "/approve/{token}"): cases(Case(dict.fromkeys(ACTORS, 404), path="/approve/x.y")),
    ("POST", "/approve/{token}"): cases(
        Case(dict.fromkeys(ACTORS, 422), path="/approve/x.y", body={})
    ),
    # -- identity: your own account and tokens; the rest is users.manage
    ("GET", "/api/v1/users/me"): cases(Case(signed_in())),
    ("GET", "/api/v1/users"): cases(Case(admin_only())),
    ("POST", "/api/v1/users"): cases(Case(admin_only(), body={"name": "newcomer"})),
    ("POST", "/api/v1/users/{name}/tokens"): cases(
        Case(admin_only(), path="/api/v1/users/victim/tokens", body={"expires_in": "1h"}),
        Case(signed_in(), path="/api/v1/users/{self}/tokens", body={"expires_in": "1h"}),
    ),
    ("GET", "/api/v1/users/{name}/tokens"): cases(
        Case(admin_only(), path="/api/v1/users/victim/tokens"),
        Case(signed_in(), path="/api/v1/users/{self}/tokens"),
    ),
    # another user's token is not probed: 404 as for one that does not exist
    ("DELETE", "/api/v1/tokens/{token_id}"): cases(Case(admin_only(404), last=True)),
    ("GET", "/api/v1/memberships"): cases(Case(admin_only())),
    ("PUT", "/api/v1/roles/{role}/members/{user}"): cases(
        Case(admin_only(), path="/api/v1/roles/release-managers/members/victim")
    ),
    ("DELETE", "/api/v1/roles/{role}/members/{user}"): cases(
        Case(admin_only(), path="/api/v1/roles/release-managers/members/victim", last=True)
    ),
    ("PUT", "/api/v1/teams/{team}/members/{user}"): cases(
        Case(admin_only(), path="/api/v1/teams/search/members/victim")
    ),
    ("DELETE", "/api/v1/teams/{team}/members/{user}"): cases(
        Case(admin_only(), path="/api/v1/teams/search/members/victim", last=True)
    ),
}


def app_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route of the app; HEAD is GET without a body."""
    found = set()
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return sorted(found)


def gaps(routes: list[tuple[str, str]]) -> list[str]:
    """What the table leaves out (or keeps after the app dropped it), said exactly."""
    wrong = []
    for method, path in routes:
        rows = ROUTES.get((method, path))
        if not rows:
            wrong.append(
                f"{method} {path}: not in ROUTES of {__name__}; add a row with the answer "
                f"for each of {', '.join(ACTORS)}"
            )
            continue
        for number, case in enumerate(rows):
            for actor in ACTORS:
                if actor not in case.expect:
                    wrong.append(f"{method} {path} (case {number}) × {actor}: no expected answer")
    wrong += [
        f"{m} {p}: in ROUTES but not a route of the app" for m, p in ROUTES if (m, p) not in routes
    ]
    return wrong


@dataclass
class World:
    """The objects the routes are called on, and a client per caller."""

    objects: dict[str, object] = field(default_factory=dict)
    clients: dict[str, Any] = field(default_factory=dict)

    def path(self, template: str, actor: str) -> str:
        return template.format(**{**self.objects, "self": "root" if actor == "admin" else actor})


def build_world(pilot: Any, api: Api) -> World:
    world = World()
    admin = api.admin()
    world.clients = {
        "anonymous": api.client(None),
        "bad_token": api.client("ilk_" + "x" * 43),
        "admin": admin,
        **{name: api.user(name) for name in ("viewer", "owner", "other", "approver", "runner")},
    }
    owner = world.clients["owner"]
    run = admin.post("/api/v1/runbooks/check/runs", json={"environment": "staging"}).json()
    # the run's first step lost its worker and is not idempotent: it waits for a person
    assert pilot.engine.db.run(lambda tx: claim(tx, pilot.engine, "host:1:dead-0"))
    assert recover(pilot.engine, everything=True) == [("look", "needs_attention")]
    assert (
        admin.post(
            "/api/v1/artifacts",
            json={"service": "api", "version": "1.0.0", "digest": "sha256:" + "1" * 64},
        ).status_code
        == 201
    )
    release = owner.post("/api/v1/releases", json={"services": ["api@1.0.0"], "reason": "m"})
    assert release.status_code == 201, release.text
    deployment = release.json()["deployments"][0]
    override = owner.post(
        f"/api/v1/releases/{release.json()['id']}/overrides",
        json={"environment": "production", "reason": "matrix"},
    )
    incident = admin.post(
        "/api/v1/incidents", json={"environment": "staging", "service": "api", "summary": "m"}
    )
    unowned = admin.post("/api/v1/incidents", json={"environment": "staging", "summary": "m"})
    api.user("victim")
    victim_token = api.admin().get("/api/v1/users/victim/tokens").json()["items"][0]["id"]
    world.objects = {
        "release_id": release.json()["id"],
        "deployment_id": deployment["id"],
        "step_id": deployment["steps"][0]["id"],
        "override_id": override.json()["id"],
        "incident_id": incident.json()["id"],
        "unowned_incident_id": unowned.json()["id"],
        "run_id": run["id"],
        "run_step_id": run["steps"][0]["id"],
        "service": "api",
        "version": "1.0.0",
        "environment": "production",
        "token_id": victim_token,
    }
    return world


def answer_is(want: object, response: Any) -> bool:
    got = response.status_code
    if got >= 500:
        return False
    if want == OK:
        return got < 400 or got == 409
    problem = response.headers.get("content-type", "").startswith("application/problem+json")
    return got == want and problem


def test_every_route_of_the_app_is_in_the_table(pilot):
    api = Api(pilot.engine, pilot.configs, pilot.config(CONFIG), workers=0)
    missing = gaps(app_routes(api.app))
    assert not missing, "the authorization table is incomplete:\n" + "\n".join(missing)


def test_every_route_answers_every_caller_as_the_table_says(pilot):
    with served(pilot, CONFIG) as api:
        world = build_world(pilot, api)
        calls: list[tuple[str, str, str, object, Any, bool]] = []
        for (method, route), rows in ROUTES.items():
            for case in rows:
                for actor, want in case.expect.items():
                    path = world.path(case.path or route, actor)
                    calls.append((method, path, actor, want, case.body, case.last))
        # refusals first: an allowed call (a cancel, a revocation) must not change
        # what a refusal is tested against
        calls.sort(key=lambda c: (c[3] == OK, c[5]))
        wrong = []
        for method, path, actor, want, body, _ in calls:
            response = world.clients[actor].request(method, path, json=body, follow_redirects=False)
            if not answer_is(want, response):
                wrong.append(
                    f"{method} {path} × {actor}: expected {want}, got "
                    f"{response.status_code} {response.text[:160]}"
                )
        assert not wrong, f"{len(wrong)} of {len(calls)} answers differ:\n" + "\n".join(wrong)

"""The authorisation matrix: every API route × every kind of caller, objects included."""

from __future__ import annotations

from tests.helpers import wait_for
from tests.support.api import Api

CONFIG = """\
version: 1
teams: {payments: [dave], search: [sam]}
roles: {release-managers: [manny], auditors: [aud]}
permissions:
  - {team: payments, allow: [release.create, release.cancel], services: owned}
  - {team: search, allow: [release.create, release.cancel], services: owned}
  - {role: release-managers, allow: [approve]}
  - {role: auditors, allow: [audit.read, read]}
  - {user: ci, allow: [release.create]}
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

# Who may (✓) or may not: 403 when they may see the object but not act on it; 404 when
# they may not even see it. "ok" accepts any answer that got past authorisation.
USERS = ["admin", "manny", "dave", "sam", "aud", "nobody", "ci"]
OK, DENY, HIDE = "ok", 403, 404


def matrix(release: int, deployment: int, step: int) -> list[tuple[str, str, object, dict]]:
    r = f"/api/v1/releases/{release}"
    return [
        (
            "GET",
            r,
            {
                "admin": OK,
                "manny": OK,
                "dave": OK,
                "sam": HIDE,
                "aud": OK,
                "nobody": HIDE,
                "ci": OK,
            },
            {},
        ),
        ("GET", "/api/v1/releases", {u: OK for u in USERS}, {}),
        (
            "POST",
            "/api/v1/releases",
            {
                "admin": OK,
                "manny": DENY,
                "dave": OK,
                "sam": DENY,
                "aud": DENY,
                "nobody": DENY,
                "ci": OK,
            },
            {"services": ["api@9.9.9"], "reason": "matrix", "until": "staging"},
        ),
        # An admin may approve anywhere but counts only where a rule names them.
        (
            "POST",
            f"{r}/approvals",
            {
                "admin": DENY,
                "manny": OK,
                "dave": DENY,
                "sam": HIDE,
                "aud": DENY,
                "nobody": HIDE,
                "ci": DENY,
            },
            {"decision": "approve", "environment": "production"},
        ),
        (
            "GET",
            f"{r}/logs",
            {
                "admin": OK,
                "manny": OK,
                "dave": OK,
                "sam": HIDE,
                "aud": OK,
                "nobody": HIDE,
                "ci": OK,
            },
            {},
        ),
        (
            "GET",
            f"/api/v1/deployments/{deployment}",
            {
                "admin": OK,
                "manny": OK,
                "dave": OK,
                "sam": HIDE,
                "aud": OK,
                "nobody": HIDE,
                "ci": OK,
            },
            {},
        ),
        ("GET", "/api/v1/deployments", {u: OK for u in USERS}, {}),
        (
            "GET",
            f"/api/v1/steps/{step}",
            {
                "admin": OK,
                "manny": OK,
                "dave": OK,
                "sam": HIDE,
                "aud": OK,
                "nobody": HIDE,
                "ci": OK,
            },
            {},
        ),
        (
            "GET",
            f"/api/v1/steps/{step}/logs",
            {
                "admin": OK,
                "manny": OK,
                "dave": OK,
                "sam": HIDE,
                "aud": OK,
                "nobody": HIDE,
                "ci": OK,
            },
            {},
        ),
        ("GET", "/api/v1/status", {u: OK for u in USERS}, {}),
        ("GET", "/api/v1/approvals/pending", {u: OK for u in USERS}, {}),
        (
            "GET",
            "/api/v1/audit",
            {"admin": OK, "aud": OK, **{u: DENY for u in ("manny", "dave", "sam", "nobody", "ci")}},
            {},
        ),
        (
            "GET",
            "/api/v1/audit/verify",
            {"admin": OK, "aud": OK, **{u: DENY for u in ("manny", "dave", "sam", "nobody", "ci")}},
            {},
        ),
        (
            "GET",
            "/api/v1/audit/checkpoint",
            {"admin": OK, "aud": OK, **{u: DENY for u in ("manny", "dave", "sam", "nobody", "ci")}},
            {},
        ),
        (
            "GET",
            "/api/v1/audit/export",
            {"admin": OK, "aud": OK, **{u: DENY for u in ("manny", "dave", "sam", "nobody", "ci")}},
            {},
        ),
        (
            "GET",
            "/api/v1/overrides",
            {"admin": OK, "aud": OK, **{u: DENY for u in ("manny", "dave", "sam", "nobody", "ci")}},
            {},
        ),
        ("GET", "/api/v1/config", {"admin": OK, **{u: DENY for u in USERS[1:]}}, {}),
        ("POST", "/api/v1/config/reload", {"admin": OK, **{u: DENY for u in USERS[1:]}}, {}),
        ("GET", "/api/v1/users", {"admin": OK, **{u: DENY for u in USERS[1:]}}, {}),
        (
            "POST",
            "/api/v1/users",
            {"admin": OK, **{u: DENY for u in USERS[1:]}},
            {"name": "newcomer"},
        ),
        ("GET", "/api/v1/users/me", {u: OK for u in USERS}, {}),
        ("GET", "/api/v1/users/admin/tokens", {"admin": OK, **{u: DENY for u in USERS[1:]}}, {}),
        ("GET", "/api/v1/memberships", {"admin": OK, **{u: DENY for u in USERS[1:]}}, {}),
        (
            "PUT",
            "/api/v1/roles/release-managers/members/dave",
            {"admin": OK, **{u: DENY for u in USERS[1:]}},
            {},
        ),
        ("GET", "/api/v1/environments/locks", {u: OK for u in USERS}, {}),
        (
            "POST",
            "/api/v1/environments/production/lock",
            {"admin": OK, **{u: DENY for u in USERS[1:]}},
            {"reason": "matrix"},
        ),
        (
            "DELETE",
            "/api/v1/environments/production/lock",
            {"admin": OK, **{u: DENY for u in USERS[1:]}},
            {},
        ),
        (
            "POST",
            f"{r}/overrides",
            {
                "admin": OK,
                "manny": DENY,
                "dave": DENY,
                "sam": HIDE,
                "aud": DENY,
                "nobody": HIDE,
                "ci": DENY,
            },
            {"environment": "production", "reason": "matrix"},
        ),
        # Recovery, artifacts, incidents, metrics and membership changes: nobody in this
        # config holds rollback, artifact.register, incident.manage, metrics.read or
        # users.manage, so only the admin passes (an unseen release's service is 404).
        *[
            (method, route, {"admin": OK, **{u: DENY for u in USERS[1:]}}, body)
            for method, route, body in (
                (
                    "POST",
                    "/api/v1/rollbacks",
                    {"service": "api", "environment": "staging", "reason": "m", "dry_run": True},
                ),
                ("POST", "/api/v1/incidents", {"environment": "production", "summary": "m"}),
                (
                    "POST",
                    "/api/v1/artifacts",
                    {"service": "api", "version": "7.7.7", "digest": "sha256:" + "7" * 64},
                ),
                (
                    "POST",
                    "/api/v1/observations",
                    {"service": "api", "environment": "staging", "version": "7.7.7"},
                ),
                ("POST", "/api/v1/artifacts/api/7.7.7/block", {"reason": "m"}),
                ("GET", "/api/v1/metrics", {}),
                ("GET", "/metrics", {}),
                ("PUT", "/api/v1/teams/search/members/nobody", {}),
                ("DELETE", "/api/v1/teams/search/members/nobody", {}),
                ("DELETE", "/api/v1/roles/auditors/members/nobody", {}),
            )
        ],
        (
            "GET",
            "/api/v1/webhooks",
            {"admin": OK, "aud": OK, **{u: DENY for u in ("manny", "dave", "sam", "nobody", "ci")}},
            {},
        ),
        # A token for oneself, or by whoever manages users; nobody else.
        (
            "POST",
            "/api/v1/users/dave/tokens",
            {"admin": OK, "dave": OK, **{u: DENY for u in ("manny", "sam", "aud", "nobody", "ci")}},
            {"name": "matrix", "expires_in": "1h"},
        ),
        (
            "POST",
            f"{r}/cancel",
            {
                "admin": OK,
                "manny": DENY,
                "dave": OK,
                "sam": HIDE,
                "aud": DENY,
                "nobody": HIDE,
                "ci": DENY,
            },
            {"reason": "x"},
        ),
    ]


def test_every_route_for_every_caller(pilot):
    path = pilot.config(CONFIG)
    api = Api(pilot.engine, pilot.configs, path, driven=True).start()
    try:
        clients = {"admin": api.admin(), "ci": api.user("ci", kind="service")}
        for name in USERS:
            clients.setdefault(name, api.user(name))
        made = (
            clients["dave"]
            .post("/api/v1/releases", json={"services": ["api@1.0.0"], "reason": "matrix"})
            .json()
        )
        shown = wait_for(
            lambda: (
                (r := clients["dave"].get(f"/api/v1/releases/{made['id']}").json())["waiting_on"]
                and r
            )
        )
        deployment = shown["deployments"][0]["id"]
        step = shown["deployments"][0]["steps"][0]["id"]
        wrong = []
        # Deny and hide first, so an allowed call (a cancel) cannot change what follows.
        rows = matrix(made["id"], deployment, step)
        calls = [(m, p, u, want, body) for m, p, expect, body in rows for u, want in expect.items()]
        calls.sort(key=lambda c: (c[3] == OK, c[1].endswith("/cancel")))
        for method, route, user, want, body in calls:
            response = clients[user].request(method, route, json=body or None)
            got = response.status_code
            if want == OK:
                good = got not in (401, 403, 404)
            else:
                good = got == want and response.headers["content-type"].startswith(
                    "application/problem+json"
                )
            if not good:
                wrong.append(
                    f"{user:7} {method:6} {route}: expected {want}, got {got} {response.text[:120]}"
                )
        assert not wrong, "\n".join(wrong)
        status = clients["sam"].get("/api/v1/status").json()
        assert "api" not in status["services"]
        assert all(e["service"] != "api" for e in status["entries"])
        assert clients["sam"].get("/api/v1/releases").json()["items"] == []
        unauthenticated = api.client(None)
        for method, route, _, _ in matrix(made["id"], deployment, step):
            assert unauthenticated.request(method, route).status_code == 401, route
    finally:
        api.stop()


def test_tokens_cannot_outlive_or_escape_their_controls(pilot):
    path = pilot.config(
        CONFIG.replace(
            "  - {user: ci, allow: [release.create]}",
            "  - {user: ci, allow: [release.create]}\n  - {user: helpdesk, allow: [users.manage]}",
        )
    )
    api = Api(pilot.engine, pilot.configs, path, driven=True).start()
    try:
        api.admin()
        dave = api.user("dave", expires_in=3600)
        forever = dave.post("/api/v1/users/dave/tokens", json={"name": "x", "expires_in": None})
        assert forever.status_code == 422 and "expires" in forever.json()["detail"]
        longer = dave.post("/api/v1/users/dave/tokens", json={"expires_in": "30d"})
        assert longer.status_code == 422
        shorter = dave.post("/api/v1/users/dave/tokens", json={"expires_in": "30m"})
        assert shorter.status_code == 201
        zero = dave.post("/api/v1/users/dave/tokens", json={"expires_in": "0s"})
        assert zero.status_code == 422
        helpdesk = api.user("helpdesk")
        assert helpdesk.post("/api/v1/users/dave/tokens", json={}).status_code == 201
        escalate = helpdesk.post("/api/v1/users/root/tokens", json={})
        assert escalate.status_code == 403 and "an admin" in escalate.json()["detail"]
        root_token = api.admin().get("/api/v1/users/root/tokens").json()["items"][0]["id"]
        probe = dave.delete(f"/api/v1/tokens/{root_token}")
        assert probe.status_code == 404  # the same answer as for a token that does not exist
        assert dave.delete("/api/v1/tokens/999999").status_code == 404
    finally:
        api.stop()


def test_huge_ids_are_invalid_input_not_errors(pilot):
    path = pilot.config(CONFIG)
    api = Api(pilot.engine, pilot.configs, path, driven=True).start()
    try:
        admin = api.admin()
        for route in (
            "/api/v1/releases/99999999999999999999",
            "/api/v1/steps/99999999999999999999/logs",
            "/api/v1/releases?cursor=99999999999999999999",
            "/api/v1/audit?after=99999999999999999999",
        ):
            response = admin.get(route)
            assert response.status_code == 422, route
            assert response.headers["content-type"] == "application/problem+json"
    finally:
        api.stop()


def test_an_environment_scoped_rule_is_not_escaped_by_naming_no_environment(pilot):
    path = pilot.config(
        CONFIG.replace(
            "environments:\n  - name: staging",
            'runbooks:\n  rb: {steps: [{name: a, run: "true"}]}\nenvironments:\n  - name: staging',
        ).replace(
            "  - {user: ci, allow: [release.create]}",
            "  - {user: ci, allow: [release.create]}\n"
            "  - {user: ops, allow: [runbook.run], environments: [staging]}",
        )
    )
    api = Api(pilot.engine, pilot.configs, path, driven=True).start()
    try:
        ops = api.user("ops")
        assert (
            ops.post("/api/v1/runbooks/rb/runs", json={"environment": "staging"}).status_code == 201
        )
        assert ops.post("/api/v1/runbooks/rb/runs", json={}).status_code == 403
        assert (
            ops.post("/api/v1/runbooks/rb/runs", json={"environment": "production"}).status_code
            == 403
        )
        assert (
            api.admin()
            .post("/api/v1/runbooks/rb/runs", json={"environment": "nowhere"})
            .status_code
            == 404
        )
    finally:
        api.stop()

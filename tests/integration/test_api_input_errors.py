"""Every 422 has the same shape: problem+json whose errors[] name each field where it stands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.api import served

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "true"}]}
"""


def test_bad_release_bodies_name_the_field(pilot):
    with served(pilot, CONFIG) as api:
        client = api.admin()

        def refused(body: dict) -> list[dict]:
            answer = client.post("/api/v1/releases", json={"reason": "T-1", **body})
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            return answer.json()["errors"]

        [error] = refused({"services": ["api@1.0.0", "api@1.0 x"]})
        assert error["field"] == "services[1]" and "not a valid version" in error["message"]
        [error] = refused({"items": [{"service": "api", "version": "1.0;rm"}]})
        assert error["field"] == "items[0].version"
        [error] = refused({"items": [{"service": "api", "version": "1.0", "commit": "abc;id"}]})
        assert error["field"] == "items[0].commit" and "git commit id" in error["message"]
        [error] = refused({"services": ["api@1.0"], "until": "nowhere"})
        assert error["field"] == "until"
        [error] = refused({"services": ["db@1.0"]})
        assert "no service named 'db'" in error["message"]
        with pilot.engine.db.read() as tx:  # nothing was created by any of them
            assert tx.list_releases(limit=10) == []


def test_an_unknown_query_parameter_is_refused_not_ignored(pilot):
    with served(pilot, CONFIG) as api:
        client = api.admin()
        answer = client.get("/api/v1/releases", params={"created_by": "ann"})
        assert answer.status_code == 200
        answer = client.get("/api/v1/releases", params={"by": "ann"})  # meant created_by
        assert answer.status_code == 422
        [error] = answer.json()["errors"]
        assert error["field"] == "by" and "unknown query parameter 'by'" in error["message"]
        typo = client.get("/api/v1/releases", params={"sevice": "api"}).json()
        assert "did you mean 'service'?" in typo["detail"]
        # parameters of the endpoint's dependencies count too (the long-poll's since/wait)
        assert client.get("/api/v1/releases/1", params={"since": 0, "wait": 0}).status_code == 404


RUNBOOK_CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "true"}]}
runbooks:
  failover:
    params: {region: {required: true}}
    steps: [{name: promote, run: "echo {{ params.region }}"}]
"""


def _refusal(client: Any, says: str) -> Callable[..., None]:
    """A check that a request is a 422 problem naming ``field``, its message holding ``says``."""

    def refused(method: str, path: str, field: str, **request: Any) -> None:
        answer = client.request(method, path, **request)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        error = answer.json()["errors"][0]
        assert error["field"] == field, (path, answer.json()["errors"])
        assert says in error["message"], error

    return refused


def test_control_characters_are_a_422_naming_the_field_on_both_backends(pilot):
    with served(pilot, RUNBOOK_CONFIG) as api:
        client = api.admin()
        refused = _refusal(client, "control character U+")

        release = {"services": ["api@1.0"], "reason": "T-1"}
        for reason in ("fix\x00", "colour \x1b[31m", "next\x85line"):
            refused("POST", "/api/v1/releases", "reason", json={**release, "reason": reason})
        refused(
            "POST", "/api/v1/releases", "on_behalf_of", json={**release, "on_behalf_of": "a\x00"}
        )
        incident = {"environment": "staging", "summary": "down\x00"}
        refused("POST", "/api/v1/incidents", "summary", json=incident)
        refused(
            "POST", "/api/v1/incidents", "environment", json={**incident, "environment": "st\x07"}
        )
        run = {"params": {"region": "eu\x00west"}, "reason": "drill"}
        refused("POST", "/api/v1/runbooks/failover/runs", "params.region", json=run)
        refused("POST", "/api/v1/runbooks/failo%00ver/runs", "name", json={"params": {}})
        refused("POST", "/api/v1/environments/staging/lock", "reason", json={"reason": "\x00"})
        refused(
            "POST", "/api/v1/users", "display_name", json={"name": "ann", "display_name": "A\x00"}
        )
        # Query and path parameters too.
        refused("GET", "/api/v1/releases", "created_by", params={"created_by": "ann\x00"})
        refused("GET", "/api/v1/audit", "actor", params={"actor": "\x00"})
        refused("GET", "/api/v1/artifacts/ap%00i/1.0", "service")
        # Tabs and line breaks are fine where people write text; nothing else was created.
        with pilot.engine.db.read() as tx:
            assert tx.list_releases(limit=10) == [] and tx.list_incidents() == []
        answer = client.post(
            "/api/v1/releases", json={**release, "reason": "T-1: two lines\r\n\tand a tab"}
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["reason"] == "T-1: two lines\r\n\tand a tab"


def test_a_required_runbook_parameter_given_empty_is_refused(pilot):
    with served(pilot, RUNBOOK_CONFIG) as api:
        client = api.admin()
        for empty in ("", "  "):
            answer = client.post(
                "/api/v1/runbooks/failover/runs", json={"params": {"region": empty}}
            )
            assert answer.status_code == 422, answer.text
            assert answer.json()["errors"][0]["field"] == "params.region"
            assert "'region' is required" in answer.json()["detail"]
        assert client.get("/api/v1/runbook-runs").json()["items"] == []


def test_a_body_that_is_not_utf8_is_a_422_naming_the_body(pilot):
    with served(pilot, CONFIG) as api:
        client = api.admin()
        answer = client.post(
            "/api/v1/releases", content=b"\xff", headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["errors"] == [
            {"field": "body", "message": "the body is not JSON in UTF-8"}
        ]


def test_bidirectional_controls_are_a_422_naming_the_field_emoji_and_accents_are_fine(pilot):
    """A right-to-left override makes a reason read otherwise than it is stored (Trojan Source)."""
    with served(pilot, RUNBOOK_CONFIG) as api:
        client = api.admin()
        refused = _refusal(client, "bidirectional control U+")

        release = {"services": ["api@1.0"], "reason": "T-1"}
        for control in ("\u202e", "\u202a", "\u2066", "\u2069"):
            refused(
                "POST", "/api/v1/releases", "reason", json={**release, "reason": f"ok{control}"}
            )
        refused(
            "POST",
            "/api/v1/incidents",
            "summary",
            json={"environment": "staging", "summary": "a\u202eb"},
        )
        run = {"params": {"region": "eu\u202ewest"}, "reason": "drill"}
        refused("POST", "/api/v1/runbooks/failover/runs", "params.region", json=run)
        refused("POST", "/api/v1/users", "name", json={"name": "ann\u2067"})
        refused("GET", "/api/v1/releases", "created_by", params={"created_by": "ann\u202d"})
        with pilot.engine.db.read() as tx:
            assert tx.list_releases(limit=10) == [] and tx.list_incidents() == []
        # Emoji (a zero-width joiner inside), accents and right-to-left script are kept.
        reason = "déploiement 🚀 par 👩\u200d💻, שלום, 東京"
        answer = client.post("/api/v1/releases", json={**release, "reason": reason})
        assert answer.status_code == 201, answer.text
        assert answer.json()["reason"] == reason
        answer = client.post(
            "/api/v1/runbooks/failover/runs", json={"params": {"region": "zürich"}}
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["params"] == {"region": "zürich"}

"""Every 422 has the same shape: problem+json whose errors[] name each field where it stands."""

from __future__ import annotations

from tests.support.api import Api

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "true"}]}
"""


def test_bad_release_bodies_name_the_field(pilot):
    api = Api(pilot.engine, pilot.configs, pilot.config(CONFIG), workers=0).start()
    try:
        client = api.admin()

        def refused(body: dict) -> list[dict]:
            answer = client.post("/api/v1/releases", json={"reason": "T-1", **body})
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            return answer.json()["errors"]

        [error] = refused({"services": ["api@1.0.0", "api@1.0\n"]})
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
    finally:
        api.stop()


def test_an_unknown_query_parameter_is_refused_not_ignored(pilot):
    api = Api(pilot.engine, pilot.configs, pilot.config(CONFIG), workers=0).start()
    try:
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
    finally:
        api.stop()


def test_a_body_that_is_not_utf8_is_a_422_naming_the_body(pilot):
    api = Api(pilot.engine, pilot.configs, pilot.config(CONFIG), workers=0).start()
    try:
        client = api.admin()
        answer = client.post(
            "/api/v1/releases", content=b"\xff", headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["errors"] == [
            {"field": "body", "message": "the body is not JSON in UTF-8"}
        ]
    finally:
        api.stop()

"""/openapi.json says what the API answers: every error as problem+json, and its links."""

from __future__ import annotations

import re

from tests.support.api import served

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "true"}]}
"""
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_every_error_an_api_route_answers_is_documented_as_a_problem(pilot):
    with served(pilot, CONFIG) as api:
        client = api.admin()
        document = client.get("/openapi.json").json()
        assert "HTTPValidationError" not in document["components"]["schemas"]
        assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        release = document["paths"]["/api/v1/releases/{release_id}"]["get"]["responses"]
        assert {"401", "403", "404", "422"} <= set(release)
        assert all(release[code]["content"] == PROBLEM for code in ("401", "404", "422"))
        created = document["paths"]["/api/v1/releases"]["post"]["responses"]
        assert {"201", "401", "403", "404", "409", "422"} <= set(created)
        assert set(created["201"]["links"]) >= {"ApproveIt", "CancelIt"}
        # what the document promises is what comes back
        missing = client.get("/api/v1/releases/7")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert set(document["components"]["schemas"]["Problem"]["required"]) <= set(missing.json())
        export = document["paths"]["/api/v1/audit/export"]["get"]["responses"]["200"]
        assert list(export["content"]) == ["application/x-ndjson"]
        assert "200" in document["paths"]["/api/v1/artifacts"]["post"]["responses"]


def test_the_api_docs_pages_load_nothing_from_another_site(pilot):
    with served(pilot, CONFIG) as api:
        client = api.client(None)  # the docs hold no data: no token needed
        for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
            html = client.get(page)
            assert html.status_code == 200 and "/openapi.json" in html.text
            sources = re.findall(r'(?:src|href)="([^"]+)"', html.text)
            assert f"/docs/assets/{asset}" in sources
            assert not [s for s in sources if "://" in s], sources
            script = client.get(f"/docs/assets/{asset}")
            assert script.status_code == 200 and len(script.content) > 100_000

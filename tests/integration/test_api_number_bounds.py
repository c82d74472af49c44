"""Numbers past their bounds (interlock.domain.bounds) are a 422 naming the field, never a 500.

On both backends: PostgreSQL's BIGINT and INTEGER and SQLite's 64-bit integers
overflowed on ids, offsets and durations that reached the database or a date.
"""

from __future__ import annotations

from typing import Any

import pytest

from interlock.domain.bounds import MAX_ID, MAX_LOG_OFFSET
from tests.helpers import wait_for
from tests.support.api import served

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "echo deployed"}]}
runbooks:
  restart: {steps: [{name: s, run: "true"}]}
"""


@pytest.fixture
def api(pilot: Any) -> Any:
    with served(pilot, CONFIG, driven=True) as started:
        yield started


def refused(answer: Any, field: str, message: str = "") -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    [error] = answer.json()["errors"]
    assert error["field"] == field and message in error["message"], error


def test_ids_past_64_bits_in_bodies_queries_and_paths_are_422(api):
    client = api.admin()
    too_big = 2**70  # and 2**31: past what PostgreSQL INTEGER ids hold
    body = {"environment": "staging", "summary": "down", "deployment": too_big}
    refused(client.post("/api/v1/incidents", json=body), "deployment", "less than or equal")
    body["deployment"] = MAX_ID  # the largest id there can be: simply not found
    assert client.post("/api/v1/incidents", json=body).status_code == 404
    refused(client.post("/api/v1/runbooks/restart/runs", json={"incident": too_big}), "incident")
    refused(client.get("/api/v1/releases/1", params={"since": too_big, "wait": 1}), "since")
    refused(client.get("/api/v1/audit", params={"after": too_big}), "after")
    refused(client.get("/api/v1/deployments", params={"cursor": too_big}), "cursor")
    refused(client.get(f"/api/v1/incidents/{too_big}"), "incident_id")
    refused(client.get(f"/api/v1/steps/{MAX_ID + 1}"), "step_id")
    assert client.get(f"/api/v1/steps/{MAX_ID}").status_code == 404
    refused(
        client.post("/api/v1/webhooks/x/skip", json={"through": too_big, "reason": "r"}), "through"
    )


def test_a_log_offset_past_what_a_database_takes_is_422_and_the_largest_is_read(api):
    client = api.admin()
    created = client.post("/api/v1/releases", json={"services": ["api@1.0"], "reason": "T-1"})
    release_id = created.json()["id"]

    def succeeded() -> bool:
        return client.get(f"/api/v1/releases/{release_id}").json()["state"] == "succeeded"

    wait_for(succeeded, timeout=30, message="the release")
    step = client.get(f"/api/v1/releases/{release_id}").json()["deployments"][0]["steps"][0]
    logs = f"/api/v1/steps/{step['id']}/logs"
    assert "deployed" in client.get(logs).json()["text"]
    refused(client.get(logs, params={"offset": 10**22}), "offset", "less than or equal")
    refused(client.get(logs, params={"offset": MAX_LOG_OFFSET + 1}), "offset")
    answer = client.get(logs, params={"offset": MAX_LOG_OFFSET})
    assert answer.status_code == 200 and answer.json()["text"] == ""


@pytest.mark.parametrize("length", ["99999999999999999999d", "3661d"])
def test_a_token_that_would_outlive_ten_years_is_422(api, length):
    answer = api.admin().post("/api/v1/users/root/tokens", json={"expires_in": length})
    refused(answer, "expires_in", "is too long: at most 3660d")


def test_a_metrics_period_past_a_hundred_years_or_the_last_date_is_422_or_read(api):
    client = api.admin()
    refused(
        client.get("/api/v1/metrics", params={"since": "99999999999999999999d"}),
        "since",
        "too long",
    )
    assert client.get("/api/v1/metrics", params={"since": "800d"}).status_code == 200
    assert client.get("/api/v1/metrics", params={"until": "9999-12-31"}).status_code == 200

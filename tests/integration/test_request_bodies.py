"""Hostile bodies: the token is checked before the body is read, no body is read past its
cap, and JSON nested deeper than any real document is a 422 (never a RecursionError)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from typing import Any

import pytest

from interlock.api.bodies import MAX_JSON_DEPTH, BodyLimits
from tests.support.api import Api
from tests.support.streaming import stream

SECRET = "hook-secret"
CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "true"}]}
permissions:
  - {user: github, allow: [artifact.register]}
  - {user: ci, allow: [artifact.register, incident.manage]}
notifications:
  inbound:
    - {name: acme, kind: github, secret: "${HOOK_SECRET}", as: github}
"""
LIMITS = BodyLimits(default=64 * 1024, events=512 * 1024, hooks=1024 * 1024)
BIG = 300 * 1024 * 1024  # declared; only what the server asks for is sent


@pytest.fixture
def api(pilot: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    harness = Api(pilot.engine, pilot.configs, pilot.config(CONFIG), workers=0, body_limits=LIMITS)
    harness.start()
    harness.user("github", kind="service")
    yield harness
    harness.stop()


def _problem(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    return dict(answer.body)


def test_no_token_is_a_401_before_the_body_is_read(api):
    # Only the head goes out: a server that read the body first would never answer.
    for token in (None, "il_not-a-token"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for chunked in (False, True):
            answer = stream(
                api.url, "/api/v1/releases", size=BIG, headers=headers, chunked=chunked,
                send_body=False, timeout=10,
            )  # fmt: skip
            assert "token" in _problem(answer, 401)["detail"]
            assert answer.headers["www-authenticate"] == "Bearer"
    # Unsigned and without a token, the event intake answers 401 first too.
    answer = stream(api.url, "/api/v1/events", size=BIG, send_body=False, timeout=10)
    _problem(answer, 401)


def test_a_body_over_the_cap_is_a_413_once_the_caller_is_known(api):
    token = {"Authorization": f"Bearer {api.secrets['github']}"}
    # Declared too large: refused before a byte of it is read.
    answer = stream(
        api.url, "/api/v1/releases", size=BIG, headers=token, send_body=False, timeout=10
    )
    problem = _problem(answer, 413)
    assert "65536 bytes" in problem["detail"] and "--max-body" in problem["detail"]
    # Streamed without a length: refused as soon as it passes the cap, not at its end.
    answer = stream(api.url, "/api/v1/releases", size=BIG, headers=token, chunked=True)
    assert "--max-body" in _problem(answer, 413)["detail"]
    assert answer.sent_before < 16 * 1024 * 1024
    # Each route its own cap: 100 KiB is too much for a release, not for an event.
    answer = stream(api.url, "/api/v1/events", size=100 * 1024, headers=token, chunked=True)
    assert answer.status == 422  # read whole, then judged: blanks are not a CDEvent
    answer = stream(api.url, "/api/v1/events", size=BIG, headers=token, chunked=True)
    assert "--max-event-body" in _problem(answer, 413)["detail"]
    # A signed hook cannot be authenticated before its body is read: it is capped instead.
    signed = {"X-Hub-Signature-256": "sha256=00", "X-GitHub-Event": "ping"}
    answer = stream(api.url, "/api/v1/hooks/github", size=BIG, headers=signed, chunked=True)
    assert "--max-hook-body" in _problem(answer, 413)["detail"]
    answer = stream(api.url, "/api/v1/hooks/github", size=BIG, headers=signed, send_body=False)
    _problem(answer, 413)


def test_a_slow_head_without_a_token_is_not_waited_on(api):
    # A body sent in full without a token is still a 401 (the connection is not reused).
    answer = stream(api.url, "/api/v1/releases", size=1024, chunked=True)
    _problem(answer, 401)
    with socket.create_connection(("127.0.0.1", api.port), 5):
        pass  # the server still takes connections


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _github(api: Any, body: bytes) -> Any:
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json",
        "x-github-event": "package",
        "x-github-delivery": "d-1",
        "x-hub-signature-256": signature,
    }
    return api.client(None).post("/api/v1/hooks/github", content=body, headers=headers)


def test_json_nested_too_deep_is_a_422_naming_the_body(api):
    ci = api.user("ci", kind="service")
    event = {
        "context": {
            "specversion": "0.5.1",
            "id": "e-1",
            "source": "/ci",
            "type": "dev.cdevents.incident.detected.0.3.0",
            "timestamp": "2026-01-01T00:00:00Z",
        },
        "subject": {"id": "i-1", "content": {"environment": {"id": "staging"}}},
    }
    # Deeper than the parser recurses, and deeper than the bound but not the parser's limit
    # (the schema validator recursed further than the parser did).
    deep_data = {**event, "customData": json.loads(_nested(MAX_JSON_DEPTH + 400))}
    bodies = [_nested(100_000), _nested(MAX_JSON_DEPTH + 1), json.dumps(deep_data).encode()]
    for body in bodies:
        for answer in (
            ci.post("/api/v1/events", content=body, headers={"content-type": "application/json"}),
            _github(api, body),
        ):
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["errors"][0]["field"] == "body"
            assert "nests more than" in answer.json()["detail"]
    # Everyday documents nest far less deeply than the bound.
    assert _github(api, json.dumps({"zen": "ok", "a": [[[{}]]]}).encode()).status_code == 202
    # Any other route: a deep body is a 4xx problem too, never a 500.
    answer = api.admin().post(
        "/api/v1/releases", content=_nested(20_000), headers={"content-type": "application/json"}
    )
    assert answer.status_code in (400, 422), answer.text
    assert answer.headers["content-type"] == "application/problem+json"

"""The tests' in-process API answers as the real server on a socket does.

``tests/support/api.py`` hands requests to the ASGI app without a socket; a test
that reads ``api.url`` gets uvicorn. The same requests must get the same answers
both ways, or the in-process tests would test something else.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from tests.support.api import served

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "true"}]}
"""


def _chunks() -> Iterator[bytes]:
    yield b'{"services": ["api@1.0.0"], '
    yield b'"reason": "T-1: chunked"}'


def test_in_process_and_socket_answers_are_the_same(pilot):
    with served(pilot, CONFIG) as api:
        inside = api.admin()
        made = inside.post(
            "/api/v1/releases",
            content=_chunks(),  # a chunked upload: its whole body reaches the app
            headers={"content-type": "application/json"},
        )
        assert made.status_code == 201, made.text
        outside = httpx.Client(
            base_url=api.url, headers={"authorization": f"Bearer {api.secrets['root']}"}
        )
        try:
            for path in ("/api/v1/releases", f"/api/v1/releases/{made.json()['id']}", "/nope"):
                here, there = inside.get(path), outside.get(path)
                assert (here.status_code, here.json()) == (there.status_code, there.json())
                assert here.headers["content-type"] == there.headers["content-type"]
            refused = api.client("not-a-token").get("/api/v1/releases")
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
        finally:
            outside.close()


def test_a_driven_api_answers_a_change_once_the_engine_ran_to_idle(pilot):
    """``driven=True``: no worker threads, and the release a POST made has ended when
    the answer arrives, in process and over the socket alike."""
    with served(pilot, CONFIG, driven=True) as api:
        assert api.runtime is None
        inside = api.admin()
        outside = httpx.Client(
            base_url=api.url, headers={"authorization": f"Bearer {api.secrets['root']}"}
        )
        try:
            for client in (inside, outside):
                made = client.post(
                    "/api/v1/releases", json={"services": ["api@1.0.0"], "reason": "T-2: driven"}
                )
                assert made.status_code == 201, made.text
                shown = client.get(f"/api/v1/releases/{made.json()['id']}").json()
                assert shown["state"] == "succeeded", shown
        finally:
            outside.close()

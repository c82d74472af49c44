"""Numbers have bounds: durations, counts and ids past them are errors naming the field."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest

from interlock.domain.bounds import MAX_DURATION
from interlock.domain.durations import DurationTooLong, doubled, parse_duration
from interlock.errors import ConfigError
from interlock.spec.loader import parse_config

CONFIG = """\
version: 1
environments:
  - name: staging
    deadline: 2h
    parallel: 4
    gates:
      before:
        - approval: {rules: [{role: sre, count: 2}], expires: 1d}
      after:
        - soak: {duration: 10m, interval: 1m}
services:
  api:
    deploy:
      - name: one
        run: "true"
        timeout: 5m
        retries: 3
        backoff: 10s
      - name: two
        http: {url: "http://127.0.0.1:9/", expect_status: 204}
"""


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("backoff: 10s", "backoff: 99999999999999999999d", "deploy[0].backoff", "too long"),
        ("timeout: 5m", "timeout: 367d", "deploy[0].timeout", "at most 366d"),
        ("timeout: 5m", "timeout: 100000000000", "deploy[0].timeout", "too long"),
        ("retries: 3", "retries: 51", "deploy[0].retries", "less than or equal to 50"),
        ("deadline: 2h", "deadline: 9999999w", "environments[0].deadline", "too long"),
        ("parallel: 4", "parallel: 65", "environments[0].parallel", "less than or equal"),
        ("count: 2", "count: 100000000000000000000", "rules[0].count", "less than or equal"),
        ("expires: 1d", "expires: 1000d", "approval.expires", "too long"),
        ("duration: 10m", "duration: 400d", "soak.duration", "too long"),
        ("interval: 1m", "interval: 53w", "soak.interval", "too long"),
        ("expect_status: 204", "expect_status: 2004", "http.expect_status", "599"),
    ],
)
def test_a_number_past_its_bound_is_an_error_naming_the_field(old, new, field, message):
    assert old in CONFIG
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG.replace(old, new), Path("interlock.yaml"))
    [issue] = info.value.errors
    assert issue["field"].endswith(field) and message in issue["message"], issue
    line = next(n for n, text in enumerate(CONFIG.splitlines(), 1) if old in text)
    assert issue["line"] == line


def test_the_largest_durations_are_valid():
    text = CONFIG.replace("backoff: 10s", "backoff: 366d").replace("deadline: 2h", "deadline: 366d")
    config = parse_config(textwrap.dedent(text), Path("interlock.yaml"))
    assert config.services["api"].deploy[0].backoff == MAX_DURATION


@pytest.mark.parametrize("value", ["367d", "99999999999999999999d", 10**400, "1" + "0" * 400 + "s"])
def test_a_duration_past_its_bound_says_the_bound(value):
    with pytest.raises(DurationTooLong, match=r"is too long: at most 366d \(31622400s\)"):
        parse_duration(value)
    assert parse_duration("366d") == MAX_DURATION
    assert parse_duration("800d", maximum=1000 * 86400) == 800 * 86400


def test_a_wait_that_doubles_stops_at_its_bound_and_never_overflows_a_date():
    assert doubled(5, 0) == 5 and doubled(5, 3) == 40
    assert doubled(3600, 49) == MAX_DURATION  # 50 retries of 1h: 2**49 hours before
    assert doubled(1, 10_000, most=600) == 600
    datetime.now(UTC) + timedelta(seconds=doubled(MAX_DURATION, 50))


def _unbounded(node: Any, where: str, schemas: dict[str, Any], seen: set[str]) -> list[str]:
    """Every integer or number in ``node`` (following $refs) that has no maximum."""
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                found += _unbounded(schemas[name], name, schemas, seen)
        if node.get("type") in ("integer", "number") and not (
            "maximum" in node or "exclusiveMaximum" in node
        ):
            found.append(where)
        for key, value in node.items():
            found += _unbounded(value, f"{where}.{key}", schemas, seen)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _unbounded(value, f"{where}[{index}]", schemas, seen)
    return found


def test_every_number_the_api_takes_has_a_maximum_in_the_openapi_document():
    from interlock.api.app import create_app

    document = create_app(MagicMock(), MagicMock()).openapi()
    schemas = document["components"]["schemas"]
    found: list[str] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                found += _unbounded(
                    parameter["schema"], f"{where} ?{parameter['name']}", schemas, set()
                )
            body = operation.get("requestBody", {}).get("content", {})
            found += _unbounded(body, f"{where} body", schemas, set())
    assert found == [], "add a bound from interlock.domain.bounds to each"

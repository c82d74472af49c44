"""Property tests of the config loader: whatever the file holds, the loader never crashes.

Generated documents (random structures, random mutations of a valid config,
random bytes) either load, or raise :class:`ConfigError` whose every issue
names its place: the file, a line and column inside it, and the field.
Example counts are bounded (``INTERLOCK_HYPOTHESIS_EXAMPLES`` raises them) so
this runs in seconds; no deadline, as the machine running it may be loaded.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.errors import ConfigError
from interlock.spec.loader import load_config, parse_config

EXAMPLES = int(os.environ.get("INTERLOCK_HYPOTHESIS_EXAMPLES", "200"))
settings.register_profile(
    "config-loader",
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written beside the tests; each run draws afresh
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = settings.get_profile("config-loader")
PATH = Path("conf/interlock.yaml")

SEED = """\
version: 1
defaults: &defaults {timeout: 10m, retries: 1, backoff: 5s}
environments:
  - name: staging
    deadline: 1h
    gates:
      after:
        - check: {run: "true", interval: 10s, timeout: 1m}
  - name: production
    production: true
    parallel: 2
    gates:
      before:
        - approval: {rules: [{role: sre, count: 2}, {owners: true}], expires: 24h}
        - window:
            timezone: Europe/Berlin
            allow: [{days: [mon, tue], from: "09:00", to: "16:00"}]
            freeze: [{from: 2026-12-20, to: 2027-01-03, reason: year end}]
      after:
        - soak: {duration: 10m, interval: 1m, checks: [{check: {run: "true"}}]}
services:
  api:
    owner: payments
    depends_on: [db]
    deploy:
      - &migrate
        <<: *defaults
        name: migrate
        run: ./migrate.sh {{ service }} {{ version }}
        idempotent: true
        env: {LOG_LEVEL: info, KEY: "${DEPLOY_KEY}"}
      - name: roll-out
        http:
          method: POST
          url: "http://127.0.0.1:9000/deploy/{{ service }}"
          body: {version: "{{ version }}"}
          expect_status: [200, 202]
  db:
    deploy: [*migrate]
teams: {payments: [ann, bob]}
roles: {sre: [cy, dee]}
runbooks:
  restart:
    params: {reason: {required: true}}
    steps:
      - {name: stop, run: "echo {{ params.reason }}"}
      - name: check
        manual: {instructions: Look at the dashboard., role: sre}
permissions:
  - {role: sre, allow: [approve, rollback], environments: [production]}
  - {everyone: true, allow: [read]}
notifications:
  webhooks: [{name: chat, url: "https://hooks.example.com/x", secret: "${HOOK_SECRET}"}]
"""

# What a mutation inserts: YAML's special syntax, and values at the edges of their types.
PIECES = [
    "&a ",
    "*a",
    "*nowhere",
    "<<: *defaults",
    "<<: 5",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "? ",
    ",",
    "#",
    "'",
    '"',
    "|",
    ">",
    "!!python/object:os.system ",
    "!!binary ",
    "!!timestamp ",
    "!!int ",
    "!!map ",
    "!!set ",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "\t",
    "\x00",
    "\x1b",
    "\ufeff",
    "\r",
    "\u2028",
    "é",
    "~",
    "null",
    ".nan",
    "-.inf",
    "1e309",
    "0x",
    "0o9",
    "99999999999999999999999",
    "9" * 5000,
    "99999999999999999999d",
    "-1",
    "0",
    "366d",
    "367d",
    "2**70",
    "1:2:3",
    "2026-02-30",
    "yes",
    "no",
    "on",
    "{{ x }}",
    "${",
    "$${A}",
]


def assert_placed(error: ConfigError, text_lines: int | None) -> None:
    """Every issue names the file, a line and column inside it, and a field."""
    assert error.errors, error.detail
    assert error.exit_code == 2 and error.http_status == 422
    for issue in error.errors:
        assert issue["file"] == str(PATH), issue
        assert isinstance(issue["line"], int) and issue["line"] >= 1, issue
        assert isinstance(issue["column"], int) and issue["column"] >= 1, issue
        if text_lines is not None:
            assert issue["line"] <= text_lines + 1, issue
        assert isinstance(issue["field"], str) and issue["field"], issue
        assert issue["message"], issue
    assert error.detail.splitlines()[0].endswith("in the configuration:")


def check_text(text: str) -> None:
    try:
        parse_config(text, PATH)
    except ConfigError as error:
        assert_placed(error, len(text.splitlines()))


def test_the_seed_is_valid():
    config = parse_config(SEED, PATH)
    assert config.services["db"].deploy[0].name == "migrate"


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["90s", "5m", "367d", "99999999999999999999d", "staging", "api", "true"])
)
structures = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["name", "run", "deploy", "timeout", "gates", "x"])
            | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)
KEYS = ["version", "defaults", "environments", "services", "teams", "roles", "runbooks",
        "tickets", "permissions", "notifications"]  # fmt: skip


@settings(PROFILE)
@given(
    st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), structures, max_size=6)
    | structures
)
def test_random_structures_load_or_name_their_place(document: Any):
    check_text(yaml.safe_dump(document, allow_unicode=True))


@settings(PROFILE)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "replace", "duplicate"]),
            st.floats(min_value=0, max_value=1),
            st.sampled_from(PIECES) | st.text(max_size=5),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutations_of_a_valid_config_load_or_name_their_place(mutations: list[Any]):
    text = SEED
    for kind, where, piece in mutations:
        at = min(int(where * len(text)), len(text))
        if kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + max(1, len(piece)) :]
        elif kind == "replace":
            text = text[:at] + piece + text[at + len(piece) :]
        else:  # a line again, right after itself: duplicate keys, repeated items
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at) + 1 or len(text)
            text = text[:end] + text[start:end] + text[end:]
    check_text(text)


@settings(PROFILE)
@given(st.binary(max_size=300) | st.builds(lambda b: SEED.encode()[:150] + b, st.binary()))
def test_random_bytes_load_or_name_their_place(tmp_path: Path, data: bytes):
    path = tmp_path / "interlock.yaml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as error:
        assert error.errors and all(i["file"] == str(path) for i in error.errors), error.detail
        for issue in error.errors:
            assert issue["line"] >= 1 and issue["column"] >= 1 and issue["field"], issue


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 2**64, -(2**64)])
def test_edge_numbers_anywhere_name_their_place(value: float):
    for key in ("timeout", "retries", "backoff", "deadline", "count", "parallel"):
        check_text(SEED.replace("retries: 1", f"retries: 1, {key}: {yaml.safe_dump(value)[:-5]}"))

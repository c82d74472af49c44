"""The reference data in ``shared/external/`` (CDEvents 0.5.1, GitHub payloads), used in place.

``INTERLOCK_TEST_EXTERNAL`` overrides where it is. By default it is
``../shared/external`` beside the repository, or, for a clone made elsewhere
(``git clone . /tmp/x``), beside the local repository it was cloned from.
Missing files fail the test with the path; they never skip it.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@cache
def external_root() -> Path:
    if os.environ.get("INTERLOCK_TEST_EXTERNAL"):
        return Path(os.environ["INTERLOCK_TEST_EXTERNAL"])
    beside = REPO.parent / "shared" / "external"
    origin = _local_origin()
    if not beside.exists() and origin is not None:
        cloned_from = origin.parent / "shared" / "external"
        if cloned_from.exists():
            return cloned_from
    return beside


def _local_origin() -> Path | None:
    """The repository this one was cloned from, when that is a path on this machine."""
    import subprocess

    found = subprocess.run(
        ["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    path = Path(found.removeprefix("file://")) if found else None
    return path.resolve() if path is not None and path.is_dir() else None


def external(*parts: str) -> Path:
    """A path under the reference data; fails the test (never skips) when it is missing."""
    path = external_root().joinpath(*parts)
    if not path.exists():
        pytest.fail(
            f"reference data {path} is missing: these tests need shared/external/ beside the "
            "repository, or INTERLOCK_TEST_EXTERNAL pointing at a copy of it",
            pytrace=False,
        )
    return path


def cdevents_dir() -> Path:
    return external("cdevents-0.5.1")


def conformance(name: str) -> dict[str, Any]:
    """One conformance example, e.g. ``incident_detected``."""
    found: dict[str, Any] = json.loads(
        (cdevents_dir() / "conformance" / f"{name}.json").read_text()
    )
    return found


def conformance_names() -> list[str]:
    return sorted(p.stem for p in (cdevents_dir() / "conformance").glob("*.json"))


def github_payload(event: str, name: str) -> bytes:
    """A GitHub payload as it is on disk (its bytes are what gets signed)."""
    return external(
        "github-webhooks", "payload-examples", "api.github.com", event, name
    ).read_bytes()


def _formats() -> Any:
    """Format checks (uri, date-time) that need no optional package: absolute URIs, RFC 3339."""
    import re
    from datetime import datetime

    from jsonschema import FormatChecker

    checker = FormatChecker()

    def uri(value: object) -> bool:
        return not isinstance(value, str) or bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$", value))

    def date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", value):
            return False
        return bool(datetime.fromisoformat(value.replace("Z", "+00:00")))

    checker.checks("uri")(uri)
    checker.checks("date-time", raises=ValueError)(date_time)
    return checker


@cache
def _registry_and_schemas(root: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    from referencing import Registry, Resource

    directory = Path(root)
    schemas: dict[str, dict[str, Any]] = {}
    resources = []
    for path in sorted(directory.glob("*.json")) + sorted(directory.glob("links/*.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
        event_type = (
            schema.get("properties", {}).get("context", {}).get("properties", {}).get("type")
        )
        if event_type:
            schemas[event_type["default"]] = schema
    return Registry().with_resources(resources), schemas


def schema_errors(event: dict[str, Any]) -> list[str]:
    """What is wrong with ``event`` against the reference 0.5.1 schema of its type.

    Plain jsonschema, draft 2020-12, ``links/`` resolved from the local files;
    independent of Interlock's own validation code.
    """
    from jsonschema import Draft202012Validator

    registry, schemas = _registry_and_schemas(str(cdevents_dir() / "schemas"))
    event_type = event["context"]["type"]
    assert event_type in schemas, f"{event_type} has no schema in CDEvents 0.5.1"
    validator = Draft202012Validator(
        schemas[event_type], registry=registry, format_checker=_formats()
    )
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(event)
    ]

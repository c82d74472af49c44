"""The CDEvents 0.5.1 JSON Schemas: which types exist, and validation of an event.

The schemas ship with Interlock (``schemas/``, a verbatim copy of the
specification's); ``INTERLOCK_CDEVENTS_SCHEMAS`` points at another copy.
They are JSON Schema draft 2020-12 and refer to ``links/…`` by relative
``$ref``; those resolve locally, never over the network.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

# jsonschema (untyped) is imported where it is first used: the CLI and the scheduler
# start faster, and its objects are ``Any`` here.

SPEC_VERSION = "0.5.1"
TYPE_PATTERN = re.compile(
    r"^dev\.cdevents\.(?P<subject>[a-z]+)\.(?P<predicate>[a-z]+)\.(?P<version>\d+\.\d+\.\d+)"
    r"(?:-[0-9A-Za-z.-]+)?$"
)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_lock = threading.Lock()


def schema_dir() -> Path:
    """Where the schema files are read from."""
    override = os.environ.get("INTERLOCK_CDEVENTS_SCHEMAS")
    return Path(override) if override else Path(__file__).parent / "schemas"


@dataclass(frozen=True)
class EventType:
    """``dev.cdevents.<subject>.<predicate>.<version>`` taken apart."""

    subject: str
    predicate: str
    version: str

    @property
    def name(self) -> str:
        return f"{self.subject}.{self.predicate}"

    def __str__(self) -> str:
        return f"dev.cdevents.{self.subject}.{self.predicate}.{self.version}"

    @classmethod
    def parse(cls, text: str) -> EventType | None:
        found = TYPE_PATTERN.match(text)
        if found is None:
            return None
        return cls(found["subject"], found["predicate"], found["version"])


def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI.match(value))


def _uri_reference(value: object) -> bool:
    return not isinstance(value, str) or not any(c.isspace() for c in value)


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    datetime.fromisoformat(value.replace("z", "+00:00").replace("Z", "+00:00"))
    return True


def format_checker() -> Any:
    """The formats the schemas use (uri, uri-reference, date-time), checked without extras."""
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    checker.checks("uri")(_uri)
    checker.checks("uri-reference")(_uri_reference)
    checker.checks("date-time", raises=ValueError)(_date_time)
    return checker


class Schemas:
    """The schemas of one directory: a validator per event type."""

    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise FileNotFoundError(
                f"no CDEvents schemas in {directory}; set INTERLOCK_CDEVENTS_SCHEMAS to the "
                "directory holding the CDEvents 0.5.1 schemas/"
            )
        from referencing import Registry, Resource

        self.directory = directory
        resources = []
        self.by_type: dict[str, dict[str, Any]] = {}
        for path in sorted(directory.glob("*.json")) + sorted(directory.glob("links/*.json")):
            schema = json.loads(path.read_text())
            resources.append((schema["$id"], Resource.from_contents(schema)))
            event_type = (
                schema.get("properties", {})
                .get("context", {})
                .get("properties", {})
                .get("type", {})
                .get("default")
            )
            if isinstance(event_type, str):
                self.by_type[event_type] = schema
        self.registry: Registry[Any] = Registry().with_resources(resources)
        self._checker = format_checker()
        self._validators: dict[str, Any] = {}
        self._types = {
            parsed.name: full
            for full in self.by_type
            if (parsed := EventType.parse(full)) is not None
        }

    def knows(self, event_type: str) -> bool:
        return event_type in self.by_type

    def types(self) -> Mapping[str, str]:
        """``subject.predicate`` → the full type this version of the spec defines."""
        return self._types

    def validator(self, event_type: str) -> Any:
        """A draft 2020-12 validator of ``event_type`` (its links resolved locally)."""
        from jsonschema import Draft202012Validator

        with _lock:
            found = self._validators.get(event_type)
            if found is None:
                found = Draft202012Validator(
                    self.by_type[event_type], registry=self.registry, format_checker=self._checker
                )
                self._validators[event_type] = found
        return found

    def errors(self, event: dict[str, Any]) -> list[tuple[str, str]]:
        """Every problem of ``event`` as (field, message); empty when it is valid."""
        event_type = event.get("context", {}).get("type") if isinstance(event, dict) else None
        if not isinstance(event_type, str) or not self.knows(event_type):
            return [("context.type", f"{event_type!r} is not a CDEvents {SPEC_VERSION} type")]
        found = sorted(
            self.validator(event_type).iter_errors(event), key=lambda e: list(e.absolute_path)
        )
        return [(field_of(e), e.message) for e in found]


def field_of(error: Any) -> str:
    """The dotted path of the field an error is about (a missing one included)."""
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    if error.validator == "required":
        match = re.match(r"^'([^']+)' is a required property", error.message)
        if match:
            parts.append(match.group(1))
    elif error.validator == "additionalProperties":
        match = re.search(r"\('([^']+)' was unexpected\)", error.message)
        if match:
            parts.append(match.group(1))
    out = ""
    for part in parts:
        out += part if part.startswith("[") or not out else f".{part}"
    return out or "(the event)"


@cache
def bundled() -> Schemas:
    """The schemas Interlock validates received events against."""
    return Schemas(schema_dir())

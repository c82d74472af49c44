"""Strict patterns for the names and versions that reach commands and URLs.

Values from the API end up in shell commands (quoted) and URLs; checking them
against a strict pattern first means a hostile string never gets that far.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from interlock.errors import InvalidInput

SERVICE_NAME = re.compile(r"\A[a-z0-9][a-z0-9._-]{0,62}\Z")
ENVIRONMENT_NAME = SERVICE_NAME
STEP_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")
VERSION = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")
DIGEST = re.compile(r"\Asha256:[0-9a-f]{64}\Z")
COMMIT = re.compile(r"\A[0-9a-f]{7,64}\Z")
USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"  # also the config's (JSON Schema)
USER_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._@-]{0,127}\Z")
GROUP_NAME = SERVICE_NAME  # roles and teams: lower case, so one spelling each, as in the config


@dataclass(frozen=True)
class ServiceRef:
    """``SERVICE@VERSION`` as typed on the command line."""

    service: str
    version: str

    def __str__(self) -> str:
        return f"{self.service}@{self.version}"


def check_service_name(value: str, field: str = "service") -> str:
    if not SERVICE_NAME.match(value):
        raise InvalidInput(
            f"{field} {value!r} is not a valid service name: use lower-case letters, digits, "
            "'.', '_' and '-', starting with a letter or digit (at most 63 characters)",
            field=field,
        )
    return value


def check_group_name(value: str, kind: str) -> str:
    """A role or team name as the config allows it (lower case: unique regardless of case)."""
    if not GROUP_NAME.match(value):
        raise InvalidInput(
            f"{kind} {value!r} is not a valid {kind} name: use lower-case letters, digits, "
            "'.', '_' and '-', starting with a letter or digit (at most 63 characters)",
            field=kind,
        )
    return value


def check_version(value: str, field: str = "version") -> str:
    if not VERSION.match(value):
        raise InvalidInput(
            f"{field} {value!r} is not a valid version: use letters, digits, '.', '_', '+' "
            "and '-', starting with a letter or digit (at most 128 characters)",
            field=field,
        )
    return value


def check_digest(value: str, field: str = "digest") -> str:
    if not DIGEST.match(value):
        raise InvalidInput(
            f"{field} {value!r} is not a content digest: expected 'sha256:' and 64 "
            "lower-case hex digits",
            field=field,
        )
    return value


def check_commit(value: str, field: str = "commit") -> str:
    if not COMMIT.match(value):
        raise InvalidInput(
            f"{field} {value!r} is not a git commit id (7 to 64 hex digits)", field=field
        )
    return value


def parse_ref(text: str, field: str = "services") -> ServiceRef:
    """Parse ``api@1.4.2``; raise :class:`InvalidInput` naming what is wrong."""
    service, sep, version = text.partition("@")
    if not sep or not service or not version:
        raise InvalidInput(f"{text!r} is not SERVICE@VERSION (for example api@1.4.2)", field=field)
    try:
        return ServiceRef(check_service_name(service), check_version(version))
    except InvalidInput as exc:
        raise InvalidInput(f"{text!r}: {exc.detail}", field=field) from None

"""``{{ name }}`` placeholders in step definitions.

Values put into a shell command are shell-quoted; values put into a URL are
percent-encoded. Only known names are allowed, so a typo is a validation
error, not an empty string at three in the morning.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from urllib.parse import quote

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")

# Everything a step may refer to; filled in when the step runs.
VARIABLES = frozenset(
    {
        "service",
        "version",
        "digest",
        "commit",
        "environment",
        "release",
        "deployment",
        "step",
        "attempt",
        "idempotency_key",
        "previous_version",
        "previous_digest",
        "reason",
    }
)


def unknown_names(template: str, allowed: frozenset[str] = VARIABLES) -> list[str]:
    """Placeholders in ``template`` that are not known variables (params.X allowed)."""
    bad = []
    for match in PLACEHOLDER.finditer(template):
        name = match.group(1)
        if name in allowed or name.startswith("params."):
            continue
        bad.append(name)
    return bad


def render(
    template: str, values: Mapping[str, str], quote_with: Callable[[str], str] | None = None
) -> str:
    """Replace every placeholder; ``quote_with`` escapes each value for its context."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(name)
        value = str(values[name])
        return quote_with(value) if quote_with else value

    return PLACEHOLDER.sub(substitute, template)


def render_shell(template: str, values: Mapping[str, str]) -> str:
    """Render a shell command; each value becomes exactly one shell word."""
    return render(template, values, shlex.quote)


def render_url(template: str, values: Mapping[str, str]) -> str:
    """Render a URL; each value is percent-encoded."""
    return render(template, values, lambda v: quote(v, safe=""))


ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def env_references(text: str) -> list[str]:
    """Names of ``${VAR}`` references (secrets read from the worker's environment)."""
    return ENV_REFERENCE.findall(text)


def resolve_env(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace ``${VAR}`` with its value; return the text and the secret values used."""
    used: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise KeyError(name)
        used.append(environ[name])
        return environ[name]

    return ENV_REFERENCE.sub(substitute, text), used

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
    """Render a shell command; a value can never become shell syntax.

    Each placeholder is quoted for where it stands in the command: bare, it
    becomes one single-quoted word; inside '...' the quote is closed around it;
    inside "..." the characters still special there (backslash, ", $ and `)
    are escaped. So ``'failing over {{ params.region }}'`` and
    ``echo "{{ reason }}"`` are as safe as a bare ``{{ version }}``.
    """
    out: list[str] = []
    state = ""  # "" outside quotes, "'" or '"' inside them
    i = 0
    while i < len(template):
        match = PLACEHOLDER.match(template, i)
        if match:
            name = match.group(1)
            if name not in values:
                raise KeyError(name)
            value = str(values[name])
            if state == "'":
                out.append("'" + shlex.quote(value) + "'")
            elif state == '"':
                out.append(re.sub(r'(["\\$`])', r"\\\1", value))
            else:
                out.append(shlex.quote(value))
            i = match.end()
            continue
        char = template[i]
        out.append(char)
        if char == "\\" and state != "'" and i + 1 < len(template):
            out.append(template[i + 1])
            i += 2
            continue
        if state == "" and char in ("'", '"'):
            state = char
        elif state == char:
            state = ""
        i += 1
    return "".join(out)


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


_BOTH = re.compile(PLACEHOLDER.pattern + "|" + ENV_REFERENCE.pattern)


def render_with_env(
    template: str,
    values: Mapping[str, str],
    environ: Mapping[str, str],
    quote_with: Callable[[str], str] | None = None,
) -> tuple[str, list[str]]:
    """Fill ``{{ placeholders }}`` and ``${VARS}`` in one pass over the template.

    A value that came from a placeholder is never scanned again, so a release
    reason of ``${AWS_SECRET_ACCESS_KEY}`` stays that text and never becomes
    the worker's secret. Returns the text and the secret values used.
    """
    used: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name, var = match.group(1), match.group(2)
        if var is not None:
            if var not in environ:
                raise KeyError(var)
            used.append(environ[var])
            return environ[var]
        if name not in values:
            raise KeyError(name)
        value = str(values[name])
        return quote_with(value) if quote_with else value

    return _BOTH.sub(substitute, template), used

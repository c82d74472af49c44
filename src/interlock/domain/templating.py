"""``{{ name }}`` placeholders in step definitions.

A shell command gets references to environment variables that hold the
values, never the values themselves; values put into a URL are
percent-encoded. Only known names are allowed, so a typo is a validation
error, not an empty string at three in the morning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
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


ARGUMENT_PREFIX = "INTERLOCK_ARG_"

# Where a word may start: a ``#`` there begins a comment.
_WORD_BREAK = frozenset(" \t\n;&|()<>")
_CODE = frozenset({"sh", "(", "$(", "`"})  # contexts where the shell reads commands


@dataclass(frozen=True)
class ShellCommand:
    """A ``run`` command as it runs: a script for ``sh -c`` and the values it refers to.

    The script holds no value, only references such as ``"${INTERLOCK_ARG_VERSION}"``;
    ``arguments`` (variable name -> value) go into the process's environment.
    """

    script: str
    arguments: Mapping[str, str]

    def shown(self) -> str:
        """The command for the step's log: the script, then each reference's value.

        Values are shown one per line, escaped when they hold anything but plain
        characters, so a value with a line break cannot pass for another line.
        """
        lines = [f"$ {self.script}"]
        for name, value in self.arguments.items():
            plain = re.fullmatch(r"[\w@%+=:,./-]+", value, re.ASCII)
            lines.append(f"  {name}={value if plain else json.dumps(value, ensure_ascii=False)}")
        return "\n".join(lines)


def render_shell(template: str, values: Mapping[str, str]) -> ShellCommand:
    """Turn a ``run`` template into a script whose placeholders are variable references.

    A value is never pasted into the script: each placeholder name gets an
    environment variable (``{{ params.region }}`` -> ``INTERLOCK_ARG_PARAMS_REGION``)
    and the script refers to it, quoted for where it stands: bare it becomes
    ``"${…}"`` (one word, no splitting or globbing), inside "…" or an unquoted
    here-document ``${…}``, inside '…' the quote is closed around ``"${…}"``. The
    shell does not parse an expanded value again, so ``$(…)``, backticks, quotes,
    line breaks and comments in a value stay text. ``${VAR}`` references written
    in the template are left for the shell to read from the step's environment.

    Raises ``KeyError`` for a name without a value and ``ValueError`` where a
    value cannot be referred to safely: a here-document with a quoted delimiter
    (nothing is expanded there), ``$((…))`` (bash evaluates the value as code),
    a placeholder as a here-document's delimiter, or a value holding a NUL byte.
    """
    return _ShellRenderer(template, values).render()


class _ShellRenderer:
    """One pass over a template tracking the shell's quoting contexts on a stack.

    Contexts: ``sh`` (top level), ``(`` subshell, ``$(`` and `` ` `` command
    substitution, ``'`` and ``"`` quotes, ``$((`` arithmetic, ``<<`` the body
    of an unquoted here-document. Getting a context wrong can only misquote a
    reference (split a word, show a quote character); it cannot make a value run.
    """

    def __init__(self, template: str, values: Mapping[str, str]) -> None:
        self.text = template
        self.values = values
        self.out: list[str] = []
        self.variable_of: dict[str, str] = {}  # placeholder name -> variable
        self.arguments: dict[str, str] = {}  # variable -> value
        self.heredocs: list[tuple[str, bool, bool]] = []  # delimiter, strip tabs, quoted

    def render(self) -> ShellCommand:
        self.scan(0, len(self.text), ["sh"])
        return ShellCommand("".join(self.out), dict(self.arguments))

    def variable(self, name: str) -> str:
        if name not in self.values:
            raise KeyError(name)
        if name not in self.variable_of:
            base = ARGUMENT_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper())
            variable, n = base, 1
            while variable in self.arguments:  # {{ a.b }} and {{ a_b }}: two variables
                n += 1
                variable = f"{base}_{n}"
            value = str(self.values[name])
            if "\0" in value:
                raise ValueError(f"the value of {{{{ {name} }}}} holds a NUL byte")
            self.variable_of[name] = variable
            self.arguments[variable] = value
        return self.variable_of[name]

    def reference(self, name: str, stack: list[str]) -> str:
        if "$((" in stack:
            raise ValueError(
                f"{{{{ {name} }}}} stands inside $((…)) or ((…)), where the shell evaluates "
                "a value as an expression (bash runs commands in it): assign it to a variable, "
                "check that it is a number, and compute with that"
            )
        if "<<'" in stack:
            raise ValueError(
                f"{{{{ {name} }}}} stands in a here-document with a quoted delimiter "
                "(<<'EOT'), where nothing is expanded: leave the delimiter unquoted"
            )
        variable = self.variable(name)
        if stack[-1] in ('"', "<<"):
            return "${" + variable + "}"
        if stack[-1] == "'":
            return "'\"${" + variable + "}\"'"
        return '"${' + variable + '}"'

    def scan(self, i: int, end: int, stack: list[str]) -> None:
        text, out = self.text, self.out
        while i < end:
            match = PLACEHOLDER.match(text, i, end)
            if match:
                out.append(self.reference(match.group(1), stack))
                i = match.end()
                continue
            top, char, two = stack[-1], text[i], text[i : i + 2]
            if top == "'":
                if char == "'":
                    stack.pop()
                out.append(char)
                i += 1
                continue
            if char == "\\":
                out.append(text[i : i + 2])
                i += 2
                continue
            if text.startswith("$((", i):
                stack.append("$((")
                out.append("$((")
                i += 3
                continue
            if two == "$(":
                stack.append("$(")
                out.append(two)
                i += 2
                continue
            if char == "`":
                if top == "`":
                    stack.pop()
                else:
                    stack.append("`")
                out.append(char)
                i += 1
                continue
            if top == '"' or top == "<<":
                if char == '"' and top == '"':
                    stack.pop()
                out.append(char)
                i += 1
                continue
            if top == "$((":
                if two == "))":
                    stack.pop()
                    out.append(two)
                    i += 2
                    continue
                if char == "(":
                    stack.append("(")
            elif char in "'\"":
                stack.append(char)
            elif two == "((" and top in _CODE:
                # bash's arithmetic command: its text is evaluated as $((…)) is
                stack.append("$((")
                out.append(two)
                i += 2
                continue
            elif char == "(":
                stack.append("(")
            elif char == ")" and top in ("(", "$("):
                stack.pop()
            elif char == "#" and (i == 0 or text[i - 1] in _WORD_BREAK):
                i = self.comment(i, end, stack)
                continue
            elif two == "<<" and top in _CODE:
                i = self.heredoc_operator(i, end)
                continue
            elif char == "\n" and self.heredocs:
                out.append(char)
                i = self.heredoc_bodies(i + 1, end)
                continue
            out.append(char)
            i += 1

    def comment(self, i: int, end: int, stack: list[str]) -> int:
        """Copy a comment up to its line break; its placeholders become references too."""
        stop = self.text.find("\n", i, end)
        stop = end if stop < 0 else stop
        self.scan_literal(i, stop, stack)
        return stop

    def scan_literal(self, i: int, end: int, stack: list[str]) -> None:
        last = i
        for match in PLACEHOLDER.finditer(self.text, i, end):
            self.out.append(self.text[last : match.start()])
            self.out.append(self.reference(match.group(1), stack))
            last = match.end()
        self.out.append(self.text[last:end])

    def heredoc_operator(self, i: int, end: int) -> int:
        """Copy ``<<[-] WORD`` and note the here-document whose body starts on the next line."""
        text = self.text
        j = i + 2
        if text.startswith("<", j):  # bash's <<< here-string: an ordinary word follows
            self.out.append("<<<")
            return j + 1
        strip = text.startswith("-", j)
        j += strip
        while j < end and text[j] in " \t":
            j += 1
        word, quoted = [], False
        while j < end and text[j] not in _WORD_BREAK:
            char = text[j]
            if char in "'\"":
                close = text.find(char, j + 1, end)
                close = end if close < 0 else close
                word.append(text[j + 1 : close])
                quoted, j = True, close + 1
            elif char == "\\":
                word.append(text[j + 1 : j + 2])
                quoted, j = True, j + 2
            else:
                word.append(char)
                j += 1
        if PLACEHOLDER.search(text, i, j):
            raise ValueError("a placeholder cannot be the delimiter of a here-document")
        self.heredocs.append(("".join(word), strip, quoted))
        self.out.append(text[i:j])
        return j

    def heredoc_bodies(self, i: int, end: int) -> int:
        """Copy the bodies of the here-documents opened on the line that just ended."""
        pending, self.heredocs = self.heredocs, []
        for delimiter, strip, quoted in pending:
            start = line = i
            while line < end:
                stop = self.text.find("\n", line, end)
                stop = end if stop < 0 else stop
                content = self.text[line:stop]
                if (content.lstrip("\t") if strip else content) == delimiter:
                    break
                line = stop + 1
            line = min(line, end)
            if quoted:
                self.scan_literal(start, line, ["<<'"])
            else:
                self.scan(start, line, ["<<"])
            stop = self.text.find("\n", line, end)
            i = end if stop < 0 else stop + 1
            self.out.append(self.text[line:i])
        return i


def render_url(template: str, values: Mapping[str, str]) -> str:
    """Render a URL; each value is percent-encoded."""
    return render(template, values, lambda v: quote(v, safe=""))


FILE_PREFIX = "file:"

# ``${VAR}`` (group 1 names it), or the escape ``$${``, which stands for a literal ``${``
# (not before ``{{``: ``$${{ version }}`` stays ``$$`` and a placeholder).
# ``${file:/path}`` names a file holding a secret (a mounted Kubernetes or Docker secret),
# read when the step runs: its name is ``file:/path``.
ENV_REFERENCE = re.compile(
    r"\$\$(?=\{(?!\{))|\$\{([A-Za-z_][A-Za-z0-9_]*|" + FILE_PREFIX + r"/[^}\s]*)\}"
)


def missing_reference(name: str) -> str:
    """What to do about a ``${VAR}`` (or ``${file:/path}``) that has no value."""
    if name.startswith(FILE_PREFIX):
        return f"cannot read the secret file of ${{{name}}} on the worker"
    return f"no value for ${{{name}}}: set the environment variable on the worker"


def env_references(text: str) -> list[str]:
    """Names of ``${VAR}`` references (secrets read from the worker's environment)."""
    return [name for name in ENV_REFERENCE.findall(text) if name]


def resolve_env(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace ``${VAR}`` with its value (``$${`` with ``${``); return the text and the
    secret values used."""
    used: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"  # the escape
        if name not in environ:
            raise KeyError(name)
        value = environ[name]  # a secret file is read once
        used.append(value)
        return value

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
        if name is None and var is None:
            return "$"  # ``$${``: a literal ``${``
        if var is not None:
            if var not in environ:
                raise KeyError(var)
            value = environ[var]  # a secret file is read once
            used.append(value)
            return value
        if name not in values:
            raise KeyError(name)
        value = str(values[name])
        return quote_with(value) if quote_with else value

    return _BOTH.sub(substitute, template), used


def map_texts(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` (text, or lists and mappings of it, as in a step's settings) with
    ``change`` applied to every text in it."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: map_texts(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [map_texts(v, change) for v in value]
    return value

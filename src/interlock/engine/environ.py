"""A step's environment, and the secret values that must never be shown.

A step's processes do not inherit the whole environment of the server or
worker that runs them: a server holds credentials for every service and
environment, and a step should see only what it needs. They inherit
:data:`BASICS` (what programs need to run: the path, the home directory, the
locale, the time zone, temporary files, proxies and CA bundles), the
variables named in ``secrets:`` and those matching ``inherit_env:``, then
the step's own ``env`` and Interlock's ``INTERLOCK_*`` values. ``${VARS}``
written in the config are read from the whole environment (naming one there
is the opt-in), and their values are secrets too.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from fnmatch import translate
from functools import lru_cache
from urllib.parse import urlsplit

from interlock.domain.masking import mask, variants
from interlock.domain.templating import env_references
from interlock.spec.model import Config

# Names or patterns (fnmatch, case-sensitive) every step inherits.
BASICS = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
# Interlock's own variables whose values are secrets (the server's and the CLI's).
OWN_SECRETS = ("INTERLOCK_TOKEN", "INTERLOCK_ADMIN_TOKEN")


@lru_cache(maxsize=64)
def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(translate(p) for p in patterns))


def inherited(
    environ: Mapping[str, str],
    *,
    secrets: Iterable[str] = (),
    inherit: Iterable[str] = (),
    withheld: Iterable[str] = (),
) -> dict[str, str]:
    """The variables of ``environ`` a step's processes inherit (``withheld`` never)."""
    matches = _matcher((*BASICS, *inherit)).match
    named = set(secrets)
    never = set(withheld)
    return {k: v for k, v in environ.items() if k not in never and (k in named or matches(k))}


def _filled_texts(value: object) -> Iterable[str]:
    """The texts where ``${VARS}`` are filled in: all but shell commands (``run``), where
    ``${NAME}`` is the shell's own reference, read from the step's environment."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if not (key == "run" and isinstance(item, str)):
                yield from _filled_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _filled_texts(item)


def secret_names(config: Config) -> set[str]:
    """Every variable ``config`` treats as a secret: ``secrets:`` and each ``${VAR}`` it fills."""
    found = set(config.secrets)
    for text in _filled_texts(config.model_dump(mode="json", by_alias=True)):
        found.update(env_references(text))
    return found


def own_secret_values(environ: Mapping[str, str], database_url: str = "") -> list[str]:
    """The values of Interlock's own secrets: tokens, the database's password (from the
    environment and from ``database_url``, which ``--database-url`` may have given)."""
    found = [environ[name] for name in OWN_SECRETS if environ.get(name)]
    for url in (environ.get("INTERLOCK_DATABASE_URL", ""), database_url):
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            found.append(password)
    return found


class KnownSecrets:
    """The secret values this process knows of; once known, a value stays masked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._masked: frozenset[str] = frozenset()  # with their variants

    def learn(self, values: Iterable[str]) -> None:
        """Mask ``values`` from now on (each also without surrounding blanks)."""
        new = frozenset(v for v in values if v) - self._values
        if not new:
            return
        with self._lock:
            self._values |= new
            self._masked |= variants(new)

    def learn_config(self, config: Config, environ: Mapping[str, str]) -> None:
        """Mask the values of every variable ``config`` treats as a secret."""
        self.learn(environ[name] for name in secret_names(config) if name in environ)

    def values(self) -> frozenset[str]:
        """A snapshot of the known values."""
        return self._values

    def mask(self, text: str) -> str:
        """``text`` with every known value replaced by ``***``."""
        return mask(text, self._masked)

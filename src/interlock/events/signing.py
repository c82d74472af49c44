"""HMAC-SHA256 signatures of request bodies, and secrets read from the environment.

Interlock signs what it sends with ``X-Interlock-Signature-256:
sha256=<hex>``, the HMAC-SHA256 of the raw body keyed with the webhook's
secret (the scheme GitHub uses for ``X-Hub-Signature-256``). Verification
compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from typing import TypeVar

SIGNATURE_HEADER = "X-Interlock-Signature-256"
GITHUB_SIGNATURE_HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="

T = TypeVar("T")


class MissingSecret(Exception):
    """A ``${VAR}`` secret is referenced but the variable is not set on this server."""

    def __init__(self, variable: str) -> None:
        super().__init__(f"the environment variable {variable} (the secret) is not set")
        self.variable = variable


def secret_variable(reference: str) -> str:
    """The name of the environment variable a ``${VAR}`` reference reads."""
    return reference.removeprefix("${").removesuffix("}")


def secret_value(reference: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The key behind a ``${VAR}`` reference, from the environment (never stored)."""
    environ = os.environ if environ is None else environ
    name = secret_variable(reference)
    value = environ.get(name)
    if not value:
        raise MissingSecret(name)
    return value.encode()


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value of ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret`` (constant time)."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def matching(
    candidates: Iterable[tuple[T, str]],
    body: bytes,
    header: str | None,
    environ: Mapping[str, str] | None = None,
) -> T | None:
    """The first candidate whose secret signed ``body``; candidates are (thing, ``${VAR}``).

    Every candidate is checked, so the time taken does not tell which one
    matched; one whose variable is unset matches nothing.
    """
    found: T | None = None
    for thing, reference in candidates:
        try:
            key = secret_value(reference, environ)
        except MissingSecret:
            continue
        if verify(key, body, header) and found is None:
            found = thing
    return found

"""Secret values replaced by ``***``, in whole texts and in text that arrives in pieces.

A step's output comes in reads of whatever size the pipe gives: a secret may
be split across two of them (a write larger than the pipe buffer, a progress
bar printing a few characters at a time). :func:`split` masks what is safe to
show and holds back the shortest tail that could still become a secret, so the
raw value is never shown, stored or sent, whatever the read boundaries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote

MASK = "***"
# Shorter values would mask common words and numbers everywhere; they are not masked.
MIN_SECRET = 4


@lru_cache(maxsize=4096)
def _forms(value: str) -> tuple[str, ...]:
    found: list[str] = []
    for text in (value, value.strip()):
        if len(text) >= MIN_SECRET:
            found += (text, quote(text, safe=""), quote(text), json.dumps(text)[1:-1])
    return tuple(found)


def variants(values: Iterable[str]) -> frozenset[str]:
    """The texts to hide for ``values``, if long enough: each one, each without
    surrounding blanks (a secret read from a file often ends in a line break), and the
    forms it takes in a URL and inside a JSON string (an error or a response may quote
    it so)."""
    return frozenset(form for value in values for form in _forms(value))


@lru_cache(maxsize=256)
def _beginnings(secrets: frozenset[str]) -> tuple[re.Pattern[str], dict[str, list[str]], int]:
    """The first characters of ``secrets`` (as a character class), the secrets by their
    first character, and the longest one's length."""
    by_first: dict[str, list[str]] = {}
    for secret in secrets:
        by_first.setdefault(secret[0], []).append(secret)
    firsts = re.compile("[" + "".join(re.escape(c) for c in by_first) + "]")
    return firsts, by_first, max(map(len, secrets))


def _held_from(text: str, secrets: frozenset[str]) -> int:
    """Where the longest tail of ``text`` that begins some secret (but not all of it) starts."""
    if not secrets:
        return len(text)
    firsts, by_first, longest = _beginnings(secrets)
    # The leftmost place in reach where the rest of the text begins a secret.
    for found in firsts.finditer(text, max(0, len(text) - longest + 1)):
        rest = text[found.start() :]
        for secret in by_first[rest[0]]:
            if len(secret) > len(rest) and secret.startswith(rest):
                return found.start()
    return len(text)


def split(text: str, secrets: frozenset[str], final: bool = False) -> tuple[str, str]:
    """``text`` masked up to where it is safe to show, and the raw rest to hold back.

    Every occurrence of every secret is masked, overlapping ones as one run.
    Unless ``final``, the rest is the tail that more text could turn into a
    secret: a beginning of a secret at the end of ``text``, and any secret
    that overlaps it (so ``***`` never shows half of one). Feed the rest back
    in front of the next piece.
    """
    if not secrets:
        return text, ""
    found: list[tuple[int, int]] = []
    for secret in secrets:
        at = text.find(secret)
        while at >= 0:
            found.append((at, at + len(secret)))
            at = text.find(secret, at + 1)
    found.sort()
    cut = len(text) if final else _held_from(text, secrets)
    moved = True
    while moved:  # an occurrence across the cut is held back whole
        moved = False
        for start, end in found:
            if start < cut < end:
                cut, moved = start, True
    out: list[str] = []
    shown = 0  # text[:shown] is written out (or masked)
    for start, end in found:
        if end > cut:
            break
        if start < shown:  # overlaps the run just masked: extend it
            shown = max(shown, end)
            continue
        out += (text[shown:start], MASK)
        shown = end
    out.append(text[shown:cut])
    return "".join(out), text[cut:]


def mask(text: str, secrets: frozenset[str]) -> str:
    """``text`` with every occurrence of every secret replaced by ``***``."""
    return split(text, secrets, final=True)[0]

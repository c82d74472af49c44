"""Secret values replaced by ``***``, in whole texts and in text that arrives in pieces.

A step's output comes in reads of whatever size the pipe gives: a secret may
be split across two of them (a write larger than the pipe buffer, a progress
bar printing a few characters at a time). :func:`split` masks what is safe to
show and holds back the shortest tail that could still become a secret, so the
raw value is never shown, stored or sent, whatever the read boundaries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
# Shorter values would mask common words and numbers everywhere; they are not masked.
MIN_SECRET = 4


def variants(values: Iterable[str]) -> set[str]:
    """The texts to hide for ``values``, if long enough: each one, each without
    surrounding blanks (a secret read from a file often ends in a line break), and the
    forms it takes in a URL and inside a JSON string (an error or a response may quote
    it so)."""
    found: set[str] = set()
    for value in values:
        for text in (value, value.strip()):
            if len(text) >= MIN_SECRET:
                found.update((text, quote(text, safe=""), quote(text), json.dumps(text)[1:-1]))
    return found


def _held_from(text: str, secrets: Iterable[str]) -> int:
    """Where the longest tail of ``text`` that begins some secret (but not all of it) starts."""
    cut = len(text)
    for secret in secrets:
        for size in range(min(len(secret) - 1, len(text)), 0, -1):
            if len(text) - size >= cut:
                break  # a shorter tail cannot move the cut further back
            if text.endswith(secret[:size]):
                cut = len(text) - size
                break
    return cut


def split(text: str, secrets: Iterable[str], final: bool = False) -> tuple[str, str]:
    """``text`` masked up to where it is safe to show, and the raw rest to hold back.

    Every occurrence of every secret is masked, overlapping ones as one run.
    Unless ``final``, the rest is the tail that more text could turn into a
    secret: a beginning of a secret at the end of ``text``, and any secret
    that overlaps it (so ``***`` never shows half of one). Feed the rest back
    in front of the next piece.
    """
    secrets = tuple(secrets)
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


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of every secret replaced by ``***``."""
    return split(text, secrets, final=True)[0]

"""Control characters in text: what request values and inbound events may not carry.

A NUL cannot be stored on PostgreSQL, and on SQLite it is stored and breaks
every shell step that later receives the value; other control characters
garble logs and terminals. The bidirectional embedding, override and isolate
controls (U+202A-U+202E, U+2066-U+2069, of Unicode's format characters) make
text show in another order than it is stored ("Trojan Source"): a reason or a
parameter could read one way to an approver and act another. Other format
characters (the zero-width joiner of emoji, the left-to-right mark) stay.
Names, ids and parameters are one line; what people write (reasons, comments,
notes, summaries) may hold tabs and line breaks.
"""

from __future__ import annotations

import re

# Unicode's control characters (category Cc): C0, DEL and C1.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LAYOUT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """What is wrong with ``value`` (its first control character and where), or ``None``.

    A bidirectional embedding, override or isolate control is refused too.

    ``multiline`` text may hold tabs, line feeds and carriage returns.
    """
    found = (_CONTROL_BUT_LAYOUT if multiline else _CONTROL).search(value)
    if found is None:
        bidi = _BIDI.search(value)
        if bidi is None:
            return None
        return (
            f"contains the bidirectional control U+{ord(bidi.group()):04X} at position "
            f"{bidi.start()}; it makes text show in another order than it is stored"
        )
    allowed = (
        "of the control characters only tab and line breaks are accepted"
        if multiline
        else "only printable characters are accepted"
    )
    where = f"U+{ord(found.group()):04X} at position {found.start()}"
    return f"contains the control character {where}; {allowed}"

"""Text a request may carry: no NUL, no other control characters, no bidi controls.

Every string of a request body, query or path is one of these two types, so a
control character is a 422 naming the field, the same on both backends (see
:mod:`interlock.domain.text`). ``Line``: a name, an id, a parameter. ``Text``:
what people write (reasons, comments, notes, summaries), tabs and line breaks
included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

from interlock.domain.text import control_character


def _printable(multiline: bool) -> Callable[[str], str]:
    def check(value: str) -> str:
        problem = control_character(value, multiline=multiline)
        if problem is not None:
            raise ValueError(problem)
        return value

    return check


Line = Annotated[str, AfterValidator(_printable(multiline=False))]
Text = Annotated[str, AfterValidator(_printable(multiline=True))]

"""``secrets:`` and ``inherit_env:``: which of the worker's environment variables a step sees.

A step's processes inherit a short list of basics from the worker (see
``interlock.engine.environ``), the variables named in ``secrets:`` (their
values are masked wherever they appear) and those matching ``inherit_env:``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, Field

OWN_PREFIX = "INTERLOCK_"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
ENV_PATTERN = r"^[A-Za-z0-9_*?]{1,128}$"


def _checked(pattern: str, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{value!r} is not {what}")
        if value.upper().startswith(OWN_PREFIX):
            raise ValueError(
                f"{value!r}: INTERLOCK_* variables are Interlock's own; a step gets the ones "
                "meant for it (INTERLOCK_VERSION, …), never the server's token or database URL"
            )
        return value

    return check


# The pattern is checked by the validator (its message says what a name is) and shown
# in the JSON Schema for editors.
EnvName = Annotated[
    str,
    Field(json_schema_extra={"pattern": ENV_NAME}, description="An environment variable."),
    AfterValidator(
        _checked(
            ENV_NAME,
            "an environment variable's name (letters, digits and '_', not starting with a digit)",
        )
    ),
]
EnvPattern = Annotated[
    str,
    Field(
        json_schema_extra={"pattern": ENV_PATTERN},
        description="An environment variable's name, or a pattern with * and ?, e.g. AWS_*.",
    ),
    AfterValidator(
        _checked(ENV_PATTERN, "a variable's name or a pattern (letters, digits, '_', * and ?)")
    ),
]

SECRETS_FIELD: Any = Field(
    default_factory=list,
    description="Environment variables of the server and workers that hold secrets: steps "
    "inherit them, and their values are masked wherever they appear (step output, errors, "
    "details, the server's log).",
)
INHERIT_ENV_FIELD: Any = Field(
    default_factory=list,
    description="More environment variables steps inherit from the worker, by name or "
    "pattern (AWS_*, KUBECONFIG), beyond PATH, HOME, LANG, LC_*, TZ, TMPDIR, USER, SHELL, "
    "the proxy variables and the names in `secrets`.",
)

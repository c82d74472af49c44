"""``secrets:`` and ``inherit_env:``: which of the worker's environment variables a step sees.

A step's processes inherit a short list of basics from the worker (see
``interlock.engine.environ``), the variables named in ``secrets:`` (their
values are masked wherever they appear) and those matching ``inherit_env:``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

OWN_PREFIX = "INTERLOCK_"


def _not_interlocks_own(value: str) -> str:
    if value.upper().startswith(OWN_PREFIX):
        raise ValueError(
            f"{value!r}: INTERLOCK_* variables are Interlock's own; a step gets the ones meant "
            "for it (INTERLOCK_VERSION, …) and never the server's token or database URL"
        )
    return value


EnvName = Annotated[
    str,
    Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$", description="An environment variable."),
    AfterValidator(_not_interlocks_own),
]
EnvPattern = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_*?]{1,128}$",
        description="An environment variable's name, or a pattern with * and ?, e.g. AWS_*.",
    ),
    AfterValidator(_not_interlocks_own),
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

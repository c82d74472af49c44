"""Building blocks shared by every part of the interlock.yaml schema."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from interlock.domain.bounds import MAX_DURATION, HttpStatus
from interlock.domain.durations import parse_duration, parse_positive_duration
from interlock.domain.names import USER_NAME_PATTERN

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
STEP_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"

_DURATION_TEXT = {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$"}
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                _DURATION_TEXT,
                {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
            ],
            "description": "A duration: 90s, 5m, 2h, 1h30m, 7d, or a number of seconds "
            "(at most 366d).",
        }
    ),
]
# Timeouts and intervals: zero would fail every try, or poll without pause.
PositiveDuration = Annotated[
    float,
    BeforeValidator(parse_positive_duration),
    WithJsonSchema(
        {
            "anyOf": [
                _DURATION_TEXT,
                {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION},
            ],
            "description": "A duration longer than zero: 90s, 5m, 2h, or a number of seconds "
            "(at most 366d).",
        }
    ),
]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
# A user as `interlock user add` accepts it (members of teams and roles, permission subjects).
UserName = Annotated[str, Field(pattern=USER_NAME_PATTERN)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class HttpCall(Strict):
    """An HTTP request made by a step (or a probe)."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "POST"
    url: str = Field(description="May use {{ placeholders }} (percent-encoded) and ${ENV_VARS}.")
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | dict[str, Any] | list[Any] | None = Field(
        default=None, description="Text, or a mapping/list sent as JSON."
    )
    expect_status: HttpStatus | list[HttpStatus] = Field(
        default=200, description="The status (or statuses) that count as success."
    )
    expect_body: str | None = Field(
        default=None, description="A regular expression the response body must match."
    )

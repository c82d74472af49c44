"""``notifications:`` in interlock.yaml: webhooks out, signed event sources in.

Secrets are never written in the file (the file's text is stored with every
config version): a ``secret`` is a ``${VAR}`` reference, read from the
server's environment when it is used.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator, model_validator

from interlock.spec.common import Duration, Name, PositiveDuration, Strict

SECRET_REFERENCE = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"
USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
EVENT_PATTERN = r"^[A-Za-z0-9_.*?\[\]!-]{1,128}$"


def _secret_reference(value: str) -> str:
    if not re.match(SECRET_REFERENCE, value):
        raise ValueError(
            "write the secret as a ${VAR} reference (set VAR in the server's environment): "
            "the file's text is stored, a secret in it would be too"
        )
    return value


SecretRef = Annotated[
    str,
    AfterValidator(_secret_reference),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SECRET_REFERENCE,
            "description": "A ${VAR} reference: the key is read from the server's environment, "
            "never stored.",
            "examples": ["${HOOK_SECRET}"],
        }
    ),
]


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


class Webhook(Strict):
    """Where every audit event (or its CDEvent) is POSTed, in order, at least once."""

    name: Name = Field(description="Names the delivery cursor; a new name starts afresh.")
    url: str = Field(description="http(s) URL; may hold ${VARS} read from the environment.")
    format: Literal["cdevents", "interlock"] = Field(
        default="cdevents",
        description="cdevents: CDEvents 0.5.1 (events without a CDEvents type are skipped); "
        "interlock: every audit event as JSON.",
    )
    secret: SecretRef | None = Field(
        default=None,
        description="HMAC-SHA256 key for X-Interlock-Signature-256 (strongly recommended).",
    )
    events: list[Annotated[str, Field(pattern=EVENT_PATTERN)]] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        description="Patterns (*, ?) matched against the audit action (deployment.succeeded) "
        "and the CDEvents name (pipelinerun.finished); default: all.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra request headers; values may hold ${VARS}."
    )
    timeout: PositiveDuration = Field(default=10.0, description="Per request (at most 60s).")
    backoff: Duration = Field(
        default=1.0, description="Wait after a failed delivery; doubles each time."
    )
    max_backoff: Duration = Field(default=600.0, description="The longest wait between tries.")
    batch: int = Field(
        default=100, ge=1, le=1000, description="Audit events read per database query."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @model_validator(mode="after")
    def _bounds(self) -> Webhook:
        if not 0 < self.timeout <= 60:
            raise ValueError("timeout must be more than 0s and at most 60s")
        if self.backoff <= 0 or self.max_backoff < self.backoff:
            raise ValueError("backoff must be more than 0s and max_backoff at least backoff")
        return self


class InboundSource(Strict):
    """A tool that cannot send a bearer token signs its requests with a shared secret."""

    name: Name
    kind: Literal["cdevents", "github"] = Field(
        default="cdevents",
        description="cdevents: POST /api/v1/events with X-Interlock-Signature-256; "
        "github: POST /api/v1/hooks/github with X-Hub-Signature-256.",
    )
    secret: SecretRef
    as_: Annotated[str, Field(pattern=USER_PATTERN)] = Field(
        alias="as",
        description="The user (a service account) the source acts as; its permissions apply.",
    )


class Notifications(Strict):
    """Events in and out: CDEvents 0.5.1, signed webhooks, GitHub."""

    source: str | None = Field(
        default=None,
        description="CDEvents context.source of the events this server emits (default: "
        "public_url, else /interlock).",
    )
    public_url: str | None = Field(
        default=None,
        description="This server's external URL, for links in events "
        "(e.g. https://interlock.example.com).",
    )
    webhooks: list[Webhook] = Field(default_factory=list)
    inbound: list[InboundSource] = Field(
        default_factory=list, description="Sources that sign their requests (HMAC-SHA256)."
    )
    services: dict[Annotated[str, Field(min_length=1, max_length=512)], Name] = Field(
        default_factory=dict,
        description="Names other tools use (purl name or 'pkg:type/ns/name', CDEvents service "
        "id, GitHub repository or package) → the Interlock service.",
    )
    environments: dict[Annotated[str, Field(min_length=1, max_length=512)], Name] = Field(
        default_factory=dict,
        description="Environment ids other tools use → the Interlock environment.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value).rstrip("/")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError("source is a URI reference: no spaces, not empty")
        return value

    @model_validator(mode="after")
    def _unique(self) -> Notifications:
        for kind, names in (
            ("webhook", [w.name for w in self.webhooks]),
            ("inbound source", [s.name for s in self.inbound]),
        ):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"{kind} names must be unique: {', '.join(repeated)} repeated")
        return self

    def event_source(self) -> str:
        """The ``context.source`` of every CDEvent this server emits."""
        return self.source or self.public_url or "/interlock"

"""``notifications:`` in interlock.yaml: webhooks out, signed event sources in.

Secrets are never written in the file (the file's text is stored with every
config version): a ``secret`` is a ``${VAR}`` reference, read from the
server's environment when it is used.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator, model_validator

from interlock.spec.common import Duration, Name, PositiveDuration, Strict
from interlock.spec.windows import zone_of

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


class _Retried(Strict):
    """Delivery over the network: a try ends after ``timeout``; a failed one waits ``backoff``
    before the next, doubling each time up to ``max_backoff``."""

    timeout: PositiveDuration = Field(default=10.0, description="Per request (at most 60s).")
    backoff: Duration = Field(
        default=1.0, description="Wait after a failed delivery; doubles each time."
    )
    max_backoff: Duration = Field(default=600.0, description="The longest wait between tries.")

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if not 0 < self.timeout <= 60:
            raise ValueError("timeout must be more than 0s and at most 60s")
        if self.backoff <= 0 or self.max_backoff < self.backoff:
            raise ValueError("backoff must be more than 0s and max_backoff at least backoff")
        return self


class Webhook(_Retried):
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
    batch: int = Field(
        default=100, ge=1, le=1000, description="Audit events read per database query."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


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


EVENTS_TO_PEOPLE = (
    "release.created",
    "release.started",
    "release.succeeded",
    "release.failed",
    "release.cancelled",
    "release.rolled_back",
    "gate.waiting",
    "gate.approved",
    "gate.rejected",
    "gate.reminder",
    "gate.escalated",
    "gate.expired",
    "needs_attention",
    "incident.opened",
    "incident.resolved",
    "lock.taken",
    "lock.released",
    "override.used",
    "freeze.started",
    "freeze.ended",
    "digest",
)


def _env_url(value: str) -> str:
    """An http(s) URL, or a ${VAR} reference (an incoming-webhook URL is itself a secret)."""
    if re.match(SECRET_REFERENCE, value):
        return value
    return _http_url(value)


class _Channel(_Retried):
    name: Name = Field(description="Routes and `interlock notify log|test` name it.")
    timeout: PositiveDuration = Field(default=10.0, description="Per message (at most 60s).")
    backoff: Duration = Field(default=2.0, description="Wait after a failure; doubles each time.")


class _UrlChannel(_Channel):
    """A channel that posts to its ``url``, which may itself be a secret (a ${VAR} reference)."""

    @field_validator("url", check_fields=False)  # each kind declares (and describes) its url
    @classmethod
    def _url(cls, value: str) -> str:
        return _env_url(value)


class SlackChannel(_UrlChannel):
    """A Slack incoming webhook; messages in Block Kit, with Approve/Reject buttons."""

    kind: Literal["slack"]
    url: str = Field(description="The incoming-webhook URL, best as a ${VAR} reference.")
    signing_secret: SecretRef | None = Field(
        default=None,
        description="The Slack app's signing secret: enables the Approve/Reject buttons "
        "(POST /api/v1/hooks/slack).",
    )


class TeamsChannel(_UrlChannel):
    """A Microsoft Teams incoming webhook or Workflows URL; messages as Adaptive Cards."""

    kind: Literal["teams"]
    url: str = Field(description="The webhook or Workflows URL, best as a ${VAR} reference.")


class WebhookChannel(_UrlChannel):
    """The message as JSON, signed like the event webhooks (X-Interlock-Signature-256)."""

    kind: Literal["webhook"]
    url: str
    secret: SecretRef | None = None


class EmailChannel(_Channel):
    """E-mail over SMTP: a text and an HTML part; approvers get their own links."""

    kind: Literal["email"]
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (port 587), tls (port 465) or none."
    )
    username: str | None = Field(default=None, description="Login; may be a ${VAR} reference.")
    password: SecretRef | None = Field(default=None, description="A ${VAR} reference.")
    sender: str = Field(alias="from", min_length=3, max_length=320)
    to: list[Annotated[str, Field(min_length=3, max_length=320)]] = Field(
        default_factory=list,
        description="Addresses that get every routed message (besides the approvers).",
    )
    approvers: bool = Field(
        default=True,
        description="A waiting gate's message also goes to each person who may approve it, "
        "with approve and reject links of their own.",
    )


Channel = Annotated[
    SlackChannel | TeamsChannel | WebhookChannel | EmailChannel, Field(discriminator="kind")
]


def _event_name(value: str) -> str:
    import fnmatch

    if not any(fnmatch.fnmatchcase(e, value) for e in EVENTS_TO_PEOPLE):
        raise ValueError(
            f"{value!r} matches no event; the events are: {', '.join(EVENTS_TO_PEOPLE)}"
        )
    return value


class Route(Strict):
    """Which events go to which channels; every filter given must match."""

    channels: list[Name] = Field(min_length=1)
    events: list[Annotated[str, Field(pattern=EVENT_PATTERN), AfterValidator(_event_name)]] = Field(
        default_factory=lambda: ["*"], min_length=1, description="Patterns (*, ?)."
    )
    environments: list[Name] | None = Field(default=None, description="Default: any.")
    services: list[Name] | None = Field(default=None, description="Default: any.")
    teams: list[Name] | None = Field(
        default=None, description="Services owned by these teams. Default: any."
    )


class Person(Strict):
    """How to reach a user (the stored user's e-mail is used when none is given here)."""

    email: str | None = Field(default=None, min_length=3, max_length=320)
    slack: str | None = Field(
        default=None,
        pattern=r"^[UW][A-Z0-9]{2,31}$",
        description="The Slack user id (U…): Slack buttons act as this user.",
    )


class Escalation(Strict):
    after: PositiveDuration
    to: dict[Literal["role", "team"], Name] = Field(min_length=1, max_length=1)


class Digest(Strict):
    """Once a day, each person gets by mail the approval gates that wait on them."""

    at: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM")
    timezone: str = Field(default="UTC", description="An IANA name, e.g. Europe/Berlin.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone_of(value)
        return value


class GateReminders(Strict):
    """While an approval gate waits: remind, then escalate."""

    remind: PositiveDuration | None = Field(
        default=None, description="Tell the approvers again this often while it waits."
    )
    escalate: Escalation | None = Field(
        default=None,
        description="After this long, these people may approve the gate too, and are told.",
    )
    digest: Digest | None = Field(
        default=None, description="A daily mail to each person of what waits on them."
    )
    link_expires: PositiveDuration | None = Field(
        default=None,
        description="Approval links expire after this (default: as long as an approval counts, "
        "the gate's `expires`, 7d).",
    )


class Notifications(Strict):
    """Events in and out: CDEvents 0.5.1, signed webhooks, GitHub; messages to people."""

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
    channels: list[Channel] = Field(
        default_factory=list, description="Where messages to people go (docs/notifications.md)."
    )
    routes: list[Route] = Field(default_factory=list)
    people: dict[Annotated[str, Field(pattern=USER_PATTERN)], Person] = Field(
        default_factory=dict, description="How to reach users (e-mail, Slack id)."
    )
    gates: GateReminders = Field(default_factory=GateReminders)
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
            ("channel", [c.name for c in self.channels]),
        ):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"{kind} names must be unique: {', '.join(repeated)} repeated")
        known = {c.name for c in self.channels}
        for route in self.routes:
            unknown = [c for c in route.channels if c not in known]
            if unknown:
                raise ValueError(
                    f"routes name channels that are not defined: {', '.join(unknown)} "
                    f"(channels: {', '.join(sorted(known)) or 'none'})"
                )
        slack_ids = [p.slack for p in self.people.values() if p.slack]
        if len(slack_ids) != len(set(slack_ids)):
            raise ValueError("two people have the same Slack id")
        return self

    def channel(self, name: str) -> SlackChannel | TeamsChannel | WebhookChannel | EmailChannel:
        """The channel named ``name`` (KeyError if there is none)."""
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)

    def event_source(self) -> str:
        """The ``context.source`` of every CDEvent this server emits."""
        return self.source or self.public_url or "/interlock"

"""``sso:`` in interlock.yaml: sign-in to the web UI with an OpenID Connect provider.

The client secret is never written in the file (its text is stored with every
config version): it is a ``${VAR}`` reference read from the server's environment
when a person signs in. Roles and teams come from the claims the provider sends:
a group in the ``groups`` claim, or the domain of a verified e-mail address.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from interlock.spec.common import Name, PositiveDuration, Strict
from interlock.spec.notifications import SecretRef

CLAIM_PATTERN = r"^[A-Za-z0-9_:./-]{1,128}$"
DOMAIN_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)+$"


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


class Grant(Strict):
    """The roles and teams a group or an e-mail domain gives who signs in."""

    roles: list[Name] = Field(default_factory=list, description="Roles (as under `roles:`).")
    teams: list[Name] = Field(default_factory=list, description="Teams (as under `teams:`).")


class Sso(Strict):
    """Single sign-on with OpenID Connect (authorization code flow with PKCE)."""

    issuer: str = Field(
        description="The provider's issuer URL; its /.well-known/openid-configuration is read.",
        examples=["https://login.example.com/realms/acme"],
    )
    client_id: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="The client (application) id registered with the provider."
    )
    client_secret: SecretRef | None = Field(
        default=None,
        description="The client secret as a ${VAR} reference; leave out for a public client "
        "(PKCE only).",
    )
    redirect_url: str | None = Field(
        default=None,
        description="The callback URL registered with the provider (…/auth/sso/callback); "
        "default: this server's own address as the browser reached it.",
    )
    scopes: list[Annotated[str, Field(pattern=CLAIM_PATTERN)]] = Field(
        default_factory=lambda: ["openid", "email", "profile"],
        description="Scopes asked for; `openid` is always added.",
    )
    username_claim: Annotated[str, Field(pattern=CLAIM_PATTERN)] = Field(
        default="preferred_username",
        description="The claim that names the user in Interlock (else `email`).",
    )
    groups_claim: Annotated[str, Field(pattern=CLAIM_PATTERN)] = Field(
        default="groups", description="The claim listing the person's groups."
    )
    groups: dict[Annotated[str, Field(min_length=1, max_length=256)], Grant] = Field(
        default_factory=dict, description="A group of the provider: what its members get."
    )
    email_domains: dict[str, Grant] = Field(
        default_factory=dict,
        description="The domain of a verified e-mail address: what its people get.",
    )
    session: PositiveDuration = Field(
        default=8 * 3600.0, description="How long a browser session lasts (default 8h)."
    )
    label: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        default="single sign-on", description="Shown on the button: Sign in with <label>."
    )

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return _http_url(value).rstrip("/")

    @field_validator("email_domains")
    @classmethod
    def _domains(cls, value: dict[str, Grant]) -> dict[str, Grant]:
        found = {}
        for domain, grant in value.items():
            if not re.match(DOMAIN_PATTERN, domain.lower()):
                raise ValueError(f"{domain!r} is not a domain name like example.com")
            found[domain.lower()] = grant
        return found

    @field_validator("redirect_url")
    @classmethod
    def _redirect(cls, value: str | None) -> str | None:
        if value is not None and not _http_url(value).endswith("/auth/sso/callback"):
            raise ValueError("the redirect URL is this server's /auth/sso/callback")
        return value

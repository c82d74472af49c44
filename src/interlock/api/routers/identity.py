"""Users, service accounts, API tokens, and role/team memberships."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from interlock.api.deps import AppDep, Id, PrincipalDep
from interlock.api.paging import Cursor, limit_query, page_of
from interlock.api.schemas import Page
from interlock.api.text import Line
from interlock.domain.bounds import MAX_TOKEN_LIFETIME
from interlock.domain.durations import parse_duration
from interlock.errors import Forbidden, InvalidInput, NotFound

router = APIRouter(tags=["identity"])


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Line = Field(min_length=1, max_length=128)
    kind: Literal["user", "service"] = "user"
    display_name: Line | None = None
    email: Line | None = None


class UserOut(BaseModel):
    name: str
    kind: str
    display_name: str | None
    email: str | None
    disabled: bool
    created_at: datetime
    created_by: str
    roles: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Line = Field(default="cli", min_length=1, max_length=128)
    expires_in: Line | None = Field(default="90d", description="e.g. 30d, 12h; null: never.")


class TokenOut(BaseModel):
    id: int
    user: str
    name: str
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    token: str | None = Field(default=None, description="The secret; shown only once.")


def _user_out(app: Any, user: Any) -> UserOut:
    config = app.configs.active().config
    who = app.identity.principal(user, config.roles, config.teams)
    return UserOut(
        **{
            k: getattr(user, k)
            for k in (
                "name",
                "kind",
                "display_name",
                "email",
                "disabled",
                "created_at",
                "created_by",
            )
        },
        roles=sorted(who.roles),
        teams=sorted(who.teams),
    )


def _token_out(user: str, token: Any, secret: str | None = None) -> TokenOut:
    return TokenOut(
        id=token.id,
        user=user,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        created_by=token.created_by,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
        token=secret,
    )


@router.get("/users/me", response_model=UserOut)
def me(app: AppDep, who: PrincipalDep) -> UserOut:
    """Who the token belongs to, with roles and teams."""
    return _user_out(app, app.identity.user(who.name))


@router.get("/users", response_model=Page[UserOut])
def users(
    app: AppDep,
    who: PrincipalDep,
    cursor: Cursor = None,
    limit: int = limit_query(100, 1000),
) -> Page[UserOut]:
    """Every user and service account, in the order they were added."""
    app.access.require(who, "users.manage")
    return page_of(
        lambda after, n: app.identity.users(limit=n, after=after),
        key=lambda u: u.id,
        cursor=cursor,
        limit=limit,
        out=lambda u: _user_out(app, u),
    )


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def add_user(body: UserIn, app: AppDep, who: PrincipalDep) -> UserOut:
    """Add a person or a service account (audited)."""
    app.access.require(who, "users.manage")
    user = app.identity.add_user(
        actor=who.name,
        name=body.name,
        kind=body.kind,
        display_name=body.display_name,
        email=body.email,
    )
    return _user_out(app, user)


def _may_manage_tokens(app: Any, who: Any, user: str) -> None:
    """Your own tokens, or anyone's with users.manage (an admin's only by an admin)."""
    if user == who.name:
        return
    app.access.require(who, "users.manage")
    if not who.is_admin():
        target = app.identity.user(user)
        config = app.configs.active().config
        if app.identity.principal(target, config.roles, config.teams).is_admin():
            raise Forbidden(f"only an admin manages the tokens of {user}, an admin")


@router.post("/users/{name}/tokens", response_model=TokenOut, status_code=status.HTTP_201_CREATED)
def create_token(name: Line, body: TokenIn, app: AppDep, who: PrincipalDep) -> TokenOut:
    """A new API token; its secret is in the answer and never shown again.

    A token made for yourself cannot outlive the one you use (a stolen token
    cannot mint a permanent one); `never` needs users.manage.
    """
    _may_manage_tokens(app, who, name)
    try:
        seconds = (
            parse_duration(body.expires_in, maximum=MAX_TOKEN_LIFETIME)
            if body.expires_in is not None
            else None
        )
    except ValueError as exc:
        raise InvalidInput(str(exc), field="expires_in") from None
    if seconds is not None and seconds <= 0:
        raise InvalidInput("a token must last longer than 0s; `never` is null", field="expires_in")
    if not app.access.allows(who, "users.manage"):
        own = app.identity.token(who.token_id) if who.token_id else None
        if own is not None and own.expires_at is not None:
            left = (own.expires_at - app.engine.clock.now()).total_seconds()
            if seconds is None or seconds > left:
                raise InvalidInput(
                    f"a token you make for yourself expires by the time yours does "
                    f"(in {int(left)}s); ask for less, or ask an administrator",
                    field="expires_in",
                )
        elif seconds is None:
            raise InvalidInput("a token that never expires needs users.manage", field="expires_in")
    token, secret = app.identity.create_token(
        actor=who.name, user=name, name=body.name, expires_in=seconds
    )
    return _token_out(name, token, secret)


@router.get("/users/{name}/tokens", response_model=Page[TokenOut])
def tokens(
    name: Line,
    app: AppDep,
    who: PrincipalDep,
    cursor: Cursor = None,
    limit: int = limit_query(100, 1000),
) -> Page[TokenOut]:
    """A user's tokens (never their secrets), oldest first."""
    _may_manage_tokens(app, who, name)
    return page_of(
        lambda after, n: app.identity.tokens(name, limit=n, after=after),
        key=lambda t: t.id,
        cursor=cursor,
        limit=limit,
        out=lambda t: _token_out(name, t),
    )


@router.delete("/tokens/{token_id}")
def revoke(token_id: Id, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Revoke a token at once (audited)."""
    try:
        owner = app.identity.token_owner(token_id)
        _may_manage_tokens(app, who, owner)
    except Forbidden:
        raise NotFound(f"no token {token_id}") from None
    app.identity.revoke_token(actor=who.name, token_id=token_id)
    return {"id": token_id, "revoked": True}


@router.get("/memberships")
def memberships(app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Roles and teams: from interlock.yaml and from the API."""
    app.access.require(who, "users.manage")
    config = app.configs.active().config
    stored = app.identity.memberships()
    return {
        "config": {"roles": config.roles, "teams": config.teams},
        "api": [{"kind": k, "group": g, "user": u} for k, g, u in stored],
    }


def _membership(
    app: Any, who: Any, kind: str, group: str, user: str, member: bool
) -> dict[str, Any]:
    app.access.require(who, "users.manage")
    if kind == "role" and group == "admin" and not who.is_admin():
        raise Forbidden("only an admin changes who is an admin")
    changed = app.identity.set_membership(
        actor=who.name, kind=kind, group=group, user=user, member=member
    )
    return {"kind": kind, "group": group, "user": user, "member": member, "changed": changed}


@router.put("/roles/{role}/members/{user}")
def add_role_member(role: Line, user: Line, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Add a user to a role (audited)."""
    return _membership(app, who, "role", role, user, True)


@router.delete("/roles/{role}/members/{user}")
def remove_role_member(role: Line, user: Line, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Remove a user from a role given by API (audited)."""
    return _membership(app, who, "role", role, user, False)


@router.put("/teams/{team}/members/{user}")
def add_team_member(team: Line, user: Line, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Add a user to a team (audited)."""
    return _membership(app, who, "team", team, user, True)


@router.delete("/teams/{team}/members/{user}")
def remove_team_member(team: Line, user: Line, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Remove a user from a team given by API (audited)."""
    return _membership(app, who, "team", team, user, False)

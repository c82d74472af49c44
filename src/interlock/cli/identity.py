"""``interlock user``, ``token``, ``role`` and ``team``: who may do what."""

from __future__ import annotations

import click

from interlock.cli.client import Client
from interlock.cli.output import FORMAT_OPTION, emit_json, table
from interlock.cli.paging import listed, page_options


@click.group()
def user() -> None:
    """People and service accounts."""


@user.command("add")
@click.argument("name")
@click.option("--service", "service", is_flag=True, help="A service account (e.g. CI).")
@click.option("--display-name")
@click.option("--email")
@FORMAT_OPTION
def add(name: str, service: bool, display_name: str | None, email: str | None, fmt: str) -> None:
    """Add a person (or, with --service, a service account)."""
    found = Client().post(
        "/api/v1/users",
        {
            "name": name,
            "kind": "service" if service else "user",
            "display_name": display_name,
            "email": email,
        },
    )
    if fmt == "json":
        emit_json(found)
        return
    click.echo(
        f"added {found['kind']} {found['name']}; give it a token with "
        f"`interlock token create --user {found['name']}`"
    )


@user.command("list")
@page_options
@FORMAT_OPTION
def list_users(cursor: int | None, every: bool, limit: int | None, fmt: str) -> None:
    """Users with roles and teams, in the order they were added."""
    with Client() as client:
        found = listed(client, "/api/v1/users", cursor=cursor, every=every, limit=limit)
    if fmt == "json":
        emit_json(found)
        return
    rows = [{**u, "roles": ", ".join(u["roles"]), "teams": ", ".join(u["teams"])} for u in found]
    table(
        rows,
        [
            ("name", "NAME"),
            ("kind", "KIND"),
            ("roles", "ROLES"),
            ("teams", "TEAMS"),
            ("disabled", "DISABLED"),
        ],
    )


@user.command("me")
@FORMAT_OPTION
def me(fmt: str) -> None:
    """Who your token belongs to."""
    found = Client().get("/api/v1/users/me")
    if fmt == "json":
        emit_json(found)
        return
    click.echo(
        f"{found['name']} ({found['kind']}); roles: {', '.join(found['roles']) or '-'}; "
        f"teams: {', '.join(found['teams']) or '-'}"
    )


@click.group()
def token() -> None:
    """API tokens: shown once, stored hashed, expiring, revocable."""


@token.command("create")
@click.option("--user", "user_", help="For another user (needs users.manage).")
@click.option("--name", default="cli", show_default=True)
@click.option("--expires", default="90d", show_default=True, help="e.g. 30d; `never`.")
@FORMAT_OPTION
def create(user_: str | None, name: str, expires: str, fmt: str) -> None:
    """Create a token; the secret is printed once."""
    client = Client()
    owner = user_ or client.get("/api/v1/users/me")["name"]
    found = client.post(
        f"/api/v1/users/{owner}/tokens",
        {"name": name, "expires_in": None if expires == "never" else expires},
    )
    if fmt == "json":
        emit_json(found)
        return
    click.echo(found["token"])
    click.echo(
        f"token {found['id']} for {owner} ({found['name']}, expires "
        f"{found['expires_at'] or 'never'}); this is the only time it is shown",
        err=True,
    )


@token.command("list")
@click.option("--user", "user_")
@page_options
@FORMAT_OPTION
def list_tokens(
    user_: str | None, cursor: int | None, every: bool, limit: int | None, fmt: str
) -> None:
    """Tokens of a user (default: you)."""
    with Client() as client:
        owner = user_ or client.get("/api/v1/users/me")["name"]
        found = listed(
            client, f"/api/v1/users/{owner}/tokens", cursor=cursor, every=every, limit=limit
        )
    if fmt == "json":
        emit_json(found)
        return
    table(
        found,
        [
            ("id", "ID"),
            ("name", "NAME"),
            ("prefix", "STARTS WITH"),
            ("created_at", "CREATED"),
            ("expires_at", "EXPIRES"),
            ("last_used_at", "LAST USED"),
            ("revoked_at", "REVOKED"),
        ],
        empty="no tokens",
    )


@token.command("revoke")
@click.argument("token_id", type=int)
def revoke(token_id: int) -> None:
    """Revoke a token at once."""
    Client().delete(f"/api/v1/tokens/{token_id}")
    click.echo(f"token {token_id} revoked")


def _membership_group(kind: str) -> click.Group:
    @click.group(name=kind, help=f"Members of a {kind} (besides those in interlock.yaml).")
    def group() -> None:
        pass

    @group.command("add", help=f"Add USER to the {kind} NAME.")
    @click.argument("name")
    @click.argument("user_name", metavar="USER")
    def add_member(name: str, user_name: str) -> None:
        with Client() as client:
            client.request("PUT", f"/api/v1/{kind}s/{name}/members/{user_name}")
        click.echo(f"{user_name} is in {kind} {name}")

    @group.command("remove", help=f"Remove USER from the {kind} NAME.")
    @click.argument("name")
    @click.argument("user_name", metavar="USER")
    def remove_member(name: str, user_name: str) -> None:
        with Client() as client:
            client.request("DELETE", f"/api/v1/{kind}s/{name}/members/{user_name}")
        click.echo(f"{user_name} is no longer in {kind} {name} (by API)")

    return group


role = _membership_group("role")
team = _membership_group("team")

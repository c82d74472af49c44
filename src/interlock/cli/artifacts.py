"""``interlock artifact``: what CI built, pinned by digest."""

from __future__ import annotations

from datetime import datetime

import click

from interlock.cli.client import Client
from interlock.cli.output import FORMAT_OPTION, emit_json, table
from interlock.cli.paging import listed, page_options


@click.group()
def artifact() -> None:
    """Builds registered by CI: register, list, show, report what actually runs."""


@artifact.command("register")
@click.argument("service")
@click.argument("version")
@click.option("--digest", required=True, metavar="sha256:…", help="The artifact's content digest.")
@click.option("--commit", metavar="SHA", help="The git commit it was built from.")
@click.option("--repo", metavar="URL", help="Its source repository.")
@click.option("--build-url", metavar="URL", help="The CI build that made it.")
@click.option("--committed-at", metavar="TIME", help="Commit time (for lead time), with zone.")
@FORMAT_OPTION
def register(
    service: str,
    version: str,
    digest: str,
    commit: str | None,
    repo: str | None,
    build_url: str | None,
    committed_at: str | None,
    fmt: str,
) -> None:
    """Register SERVICE VERSION; the same version with another digest is refused."""
    from interlock.errors import InvalidInput

    if committed_at is not None:
        try:
            datetime.fromisoformat(committed_at.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"--committed-at {committed_at!r} is not an ISO time", field="committed_at"
            ) from None
    found = Client().post(
        "/api/v1/artifacts",
        {
            "service": service,
            "version": version,
            "digest": digest,
            "commit": commit,
            "repo": repo,
            "build_url": build_url,
            "committed_at": committed_at,
        },
    )
    if fmt == "json":
        emit_json(found)
        return
    note = "registered" if found["new"] else "already registered (same digest)"
    click.echo(f"{service}@{version} {note}: {found['digest']}")


@artifact.command("list")
@click.option("--service")
@page_options
@FORMAT_OPTION
def list_(
    service: str | None, cursor: int | None, every: bool, limit: int | None, fmt: str
) -> None:
    """Registered artifacts, newest first."""
    with Client() as client:
        found = listed(
            client, "/api/v1/artifacts", cursor=cursor, every=every, service=service, limit=limit
        )
    if fmt == "json":
        emit_json(found)
        return
    rows = [
        {
            **a,
            "digest": (a["digest"] or "")[:19],
            "commit": (a["commit"] or "")[:10],
            "blocked": a["block_reason"] or "",
        }
        for a in found
    ]
    table(
        rows,
        [
            ("service", "SERVICE"),
            ("version", "VERSION"),
            ("digest", "DIGEST"),
            ("commit", "COMMIT"),
            ("registered_at", "REGISTERED"),
            ("blocked", "BLOCKED"),
        ],
        empty="no artifacts registered",
    )


@artifact.command("show")
@click.argument("service")
@click.argument("version")
@FORMAT_OPTION
def show(service: str, version: str, fmt: str) -> None:
    """One artifact."""
    found = Client().get(f"/api/v1/artifacts/{service}/{version}")
    if fmt == "json":
        emit_json(found)
        return
    for key in (
        "service",
        "version",
        "digest",
        "commit",
        "repo",
        "build_url",
        "committed_at",
        "registered_at",
        "registered_by",
        "block_reason",
    ):
        if found.get(key):
            click.echo(f"{key:14} {found[key]}")


@artifact.command("observed")
@click.argument("service")
@click.argument("environment")
@click.argument("version")
def observed(service: str, environment: str, version: str) -> None:
    """Report that VERSION of SERVICE actually runs in ENVIRONMENT (drift shows in status)."""
    Client().post(
        "/api/v1/observations", {"service": service, "environment": environment, "version": version}
    )
    click.echo(f"recorded: {service} {version} runs in {environment}")

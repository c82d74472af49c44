"""``interlock config``: show and reload the server's active config."""

from __future__ import annotations

import click

from interlock.cli.client import Client
from interlock.cli.output import FORMAT_OPTION, emit_json


@click.group()
def config() -> None:
    """Show or reload the server's active config."""


@config.command("show")
@FORMAT_OPTION
def show(fmt: str) -> None:
    """The active config's version, hash and text."""
    found = Client().get("/api/v1/config")
    if fmt == "json":
        emit_json(found)
        return
    click.echo(
        f"# version {found['version']}, sha256 {found['hash'][:12]}, {found['path']}, "
        f"loaded {found['loaded_at']} by {found['loaded_by']}"
    )
    click.echo(found["text"], nl=False)


@config.command("reload")
@FORMAT_OPTION
def reload(fmt: str) -> None:
    """Make the server load its config file again (an invalid file is refused)."""
    found = Client().post("/api/v1/config/reload")
    if fmt == "json":
        emit_json(found)
        return
    if found["changed"]:
        click.echo(f"config version {found['version']} is now active")
    else:
        click.echo(f"config unchanged (version {found['version']})")

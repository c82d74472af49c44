"""``interlock config``: show the server's active config, what a reload would change,
reload it, and review changes that need approval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from interlock.cli.client import Client
from interlock.cli.output import FORMAT_OPTION, emit_json
from interlock.cli.settings import CONFIG_OPTION


@click.group()
def config() -> None:
    """Show, diff, reload or review the server's config."""


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


def _line(change: dict[str, Any]) -> str:
    mark = {"added": "+", "removed": "-", "changed": "~"}[change["change"]]
    fields = f": {', '.join(change['fields'])}" if change["fields"] else ""
    return f"{mark} {change['what']} {change['name']}{fields}"


def _changes(changes: list[dict[str, Any]], reviewed: list[dict[str, Any]]) -> None:
    if not changes:
        click.echo("no changes")
        return
    needs = {(c["what"], c["name"]) for c in reviewed}
    for change in changes:
        note = "   (needs approval)" if (change["what"], change["name"]) in needs else ""
        click.echo(_line(change) + note)


def _offline_diff(against: Path, config_path: Path) -> dict[str, Any]:
    """The diff of two local configs, as the server would answer it."""
    from interlock.spec.diff import diff_configs, needs_review
    from interlock.spec.loader import load_config

    old, new = load_config(against), load_config(config_path)
    changes = diff_configs(old.config, new.config)
    return {
        "path": str(new.path),
        "hash": new.hash,
        "active_version": None,
        "against": str(old.path),
        "changes": [c.to_json() for c in changes],
        "needs_approval": [c.to_json() for c in needs_review(old.config, changes)],
    }


@config.command("diff")
@click.option(
    "--against",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Compare with this config file instead of the server's active config (offline: "
    "e.g. the main branch's, in CI).",
)
@CONFIG_OPTION
@FORMAT_OPTION
def diff(against: Path | None, config_path: Path, fmt: str) -> None:
    """What `config reload` would change: services, environments, gates and steps added (+),
    removed (-) or changed (~), and which changes need approval.

    Without --against, the server compares its own config file with its active config."""
    found = (
        _offline_diff(against, config_path)
        if against is not None
        else Client().get("/api/v1/config/diff")
    )
    if fmt == "json":
        emit_json(found)
        return
    base = f"the active version {found['active_version']}" if against is None else str(against)
    click.echo(f"# {found['path']} (sha256 {found['hash'][:12]}) against {base}")
    _changes(found["changes"], found["needs_approval"])
    if found["needs_approval"]:
        click.echo(
            f"{len(found['needs_approval'])} change(s) need approval: `config reload --reason` "
            "asks for it"
        )


@config.command("reload")
@click.option("--reason", default="", help="Why: kept in the audit with the diff.")
@FORMAT_OPTION
def reload(reason: str, fmt: str) -> None:
    """Make the server load its config file again (an invalid file is refused; a change
    that needs approval waits for it)."""
    found = Client().post("/api/v1/config/reload", {"reason": reason})
    if fmt == "json":
        emit_json(found)
        return
    pending = found.get("pending")
    if pending:
        click.echo(
            f"config change {pending['id']} waits for approval "
            f"({len(pending['approvals'])} of {pending['needed']}); version "
            f"{found['version']} stays active until then"
        )
        click.echo(f"approve: interlock config approve {pending['id']}")
        return
    if found["changed"]:
        click.echo(f"config version {found['version']} is now active")
        for change in found.get("changes", []):
            click.echo("  " + _line(change))
    else:
        click.echo(f"config unchanged (version {found['version']})")


@config.command("changes")
@FORMAT_OPTION
def changes(fmt: str) -> None:
    """Config changes that needed approval, newest first."""
    found = Client().get("/api/v1/config/changes")
    if fmt == "json":
        emit_json(found)
        return
    if not found:
        click.echo("no config changes needed approval")
    for change in found:
        click.echo(
            f"{change['id']}  {change['state']:<10}  by {change['requested_by']}  "
            f"{len(change['approvals'])}/{change['needed'] or '-'} approvals  {change['reason']}"
        )


@config.command("approve")
@click.argument("change_id", type=int)
@click.option("--comment", default="")
@FORMAT_OPTION
def approve(change_id: int, comment: str, fmt: str) -> None:
    """Approve a pending config change (never your own); enough approvals apply it."""
    found = Client().post(f"/api/v1/config/changes/{change_id}/approve", {"comment": comment})
    if fmt == "json":
        emit_json(found)
        return
    if found["state"] == "applied":
        click.echo(f"config change {change_id} applied: version {found['version']} is active")
    elif found["state"] == "superseded":
        click.echo(
            f"config change {change_id} is superseded: the active config changed since; "
            "reload again"
        )
    else:
        click.echo(
            f"config change {change_id}: {len(found['approvals'])} of {found['needed']} approvals"
        )


@config.command("reject")
@click.argument("change_id", type=int)
@click.option("--comment", default="")
def reject(change_id: int, comment: str) -> None:
    """Reject a pending config change (or withdraw your own)."""
    found = Client().post(f"/api/v1/config/changes/{change_id}/reject", {"comment": comment})
    click.echo(f"config change {change_id} is {found['state']}")

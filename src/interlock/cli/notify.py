"""``interlock notify``: the channels to people, their delivery log, and a test message."""

from __future__ import annotations

from urllib.parse import quote

import click

from interlock.cli.client import Client, fetch
from interlock.cli.output import FORMAT_OPTION, emit_json, stamp, table
from interlock.errors import InterlockError


@click.group()
def notify() -> None:
    """Messages to people (notifications.channels): channels, delivery log, test."""


@notify.command("channels")
@FORMAT_OPTION
def channels(fmt: str) -> None:
    """Each channel: its kind, the messages waiting, the last error."""
    found = fetch("/api/v1/notifications/channels")
    if fmt == "json":
        emit_json(found)
        return
    rows = [{**c, "next_attempt_at": stamp(c["next_attempt_at"])} for c in found]
    table(
        rows,
        [
            ("name", "NAME"),
            ("kind", "KIND"),
            ("pending", "PENDING"),
            ("next_attempt_at", "NEXT TRY"),
            ("last_error", "LAST ERROR"),
        ],
        empty="no channels configured (notifications.channels in interlock.yaml)",
    )


@notify.command("log")
@click.option("--channel", help="Only this channel.")
@click.option("--state", type=click.Choice(["pending", "delivered"]), help="Only these.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@FORMAT_OPTION
def log(channel: str | None, state: str | None, limit: int, fmt: str) -> None:
    """The delivery log, newest first: what was sent where, tries, the last error."""
    found = fetch("/api/v1/notifications/log", channel=channel, state=state, limit=limit)
    if fmt == "json":
        emit_json(found)
        return
    rows = [
        {
            **e,
            "created_at": stamp(e["created_at"]),
            "done": stamp(e["delivered_at"])
            or (f"retry {stamp(e['next_attempt_at'])}" if e["next_attempt_at"] else "waiting"),
            "recipient": e["recipient"] or "",
            "last_error": e["last_error"] or "",
        }
        for e in found
    ]
    table(
        rows,
        [
            ("id", "ID"),
            ("channel", "CHANNEL"),
            ("created_at", "AT"),
            ("title", "MESSAGE"),
            ("recipient", "TO"),
            ("state", "STATE"),
            ("attempts", "TRIES"),
            ("done", "DELIVERED"),
            ("last_error", "LAST ERROR"),
        ],
        empty="no messages yet",
    )


@notify.command("test")
@click.argument("channel")
@click.option("--to", help="E-mail channels: the address (default: the channel's `to`, or yours).")
@FORMAT_OPTION
def test(channel: str, to: str | None, fmt: str) -> None:
    """Send a test message on CHANNEL now and say whether it arrived."""
    path = f"/api/v1/notifications/channels/{quote(channel, safe='')}/test"
    with Client() as client:
        found = client._json(client.request("POST", path, params={"to": to} if to else {}, json={}))
    if fmt == "json":
        emit_json(found)
    elif found["delivered"]:
        click.echo(f"{channel} ({found['kind']}): test message delivered")
    if not found["delivered"]:
        if fmt != "json":
            click.echo(f"{channel} ({found['kind']}): not delivered: {found['error']}", err=True)
        raise SystemExit(InterlockError.exit_code)

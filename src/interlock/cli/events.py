"""``interlock webhook``: where each outbound webhook stands; skip a stuck event, retry now."""

from __future__ import annotations

from urllib.parse import quote

import click

from interlock.cli.client import Client, fetch
from interlock.cli.output import FORMAT_OPTION, emit_json, stamp, table


@click.group()
def webhook() -> None:
    """Outbound webhooks (notifications.webhooks): delivery cursor, backlog, errors."""


@webhook.command("list")
@FORMAT_OPTION
def list_(fmt: str) -> None:
    """Each webhook: delivered up to which audit event, how many wait, the last error."""
    found = fetch("/api/v1/webhooks")
    if fmt == "json":
        emit_json(found)
        return
    rows = [
        {
            **w,
            "cursor": "-" if w["cursor"] is None else w["cursor"],
            "pending": "-" if w["pending"] is None else w["pending"],
            "last_success_at": stamp(w["last_success_at"]),
            "last_error": (
                f"{stamp(w['last_error_at'])} {w['last_error']}" if w["last_error"] else ""
            ),
            "signed": "yes" if w["signed"] else "no",
        }
        for w in found
    ]
    table(
        rows,
        [
            ("name", "NAME"),
            ("url", "URL"),
            ("format", "FORMAT"),
            ("signed", "SIGNED"),
            ("cursor", "CURSOR"),
            ("pending", "PENDING"),
            ("last_success_at", "LAST SUCCESS"),
            ("failures", "FAILURES"),
            ("last_error", "LAST ERROR"),
        ],
        empty="no webhooks configured (notifications.webhooks in interlock.yaml)",
    )


def _path(name: str, action: str) -> str:
    return f"/api/v1/webhooks/{quote(name, safe='')}/{action}"


@webhook.command("skip")
@click.argument("name")
@click.option(
    "--through",
    type=click.IntRange(min=1),
    required=True,
    help="Skip every audit event up to and including this sequence number.",
)
@click.option("--reason", required=True, help="Why these events are never sent (audited).")
@FORMAT_OPTION
def skip(name: str, through: int, reason: str, fmt: str) -> None:
    """Move NAME's cursor past a stuck event: it and those before it are never sent.

    For a receiver that refuses one event for good: `webhook list` shows the
    event in LAST ERROR ("event 42: HTTP 400 ..."); `--through 42` skips it
    and delivery goes on from the next one. Needs webhooks.manage.
    """
    with Client() as client:
        found = client.post(_path(name, "skip"), {"through": through, "reason": reason})
    if fmt == "json":
        emit_json(found)
        return
    click.echo(
        f"{name}: skipped the events up to {through}; {found['pending']} pending,"
        " delivery resumes at the next tick"
    )


@webhook.command("retry")
@click.argument("name")
@FORMAT_OPTION
def retry(name: str, fmt: str) -> None:
    """Try NAME again now instead of waiting out its backoff. Needs webhooks.manage."""
    with Client() as client:
        found = client.post(_path(name, "retry"))
    if fmt == "json":
        emit_json(found)
        return
    click.echo(f"{name}: {found['pending']} pending, delivery resumes at the next tick")

"""``interlock webhook``: where each outbound webhook stands."""

from __future__ import annotations

from typing import Any

import click

from interlock.cli.client import Client
from interlock.cli.output import FORMAT_OPTION, emit_json, table


@click.group()
def webhook() -> None:
    """Outbound webhooks (notifications.webhooks): delivery cursor, backlog, errors."""


def _when(value: Any) -> str:
    return str(value)[:19].replace("T", " ") if value else ""


@webhook.command("list")
@FORMAT_OPTION
def list_(fmt: str) -> None:
    """Each webhook: delivered up to which audit event, how many wait, the last error."""
    client = Client()
    try:
        found = client.get("/api/v1/webhooks")
    finally:
        client.close()
    if fmt == "json":
        emit_json(found)
        return
    rows = [
        {
            **w,
            "cursor": "-" if w["cursor"] is None else w["cursor"],
            "pending": "-" if w["pending"] is None else w["pending"],
            "last_success_at": _when(w["last_success_at"]),
            "last_error": (
                f"{_when(w['last_error_at'])} {w['last_error']}" if w["last_error"] else ""
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

"""``interlock audit``: log, verify, checkpoint, export."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click

from interlock.cli.client import Client
from interlock.cli.output import FORMAT_OPTION, emit_json, table
from interlock.errors import EXIT_FAILED, InvalidInput


@click.group()
def audit() -> None:
    """Read, verify, checkpoint and export the audit trail."""


@audit.command("log")
@click.option("--after", type=int, default=None, help="Only events after this sequence.")
@click.option("--object", "object_", metavar="TYPE[:ID]", help="e.g. release:12")
@click.option("--actor", help="Only this actor's events.")
@click.option("--action", "actions", multiple=True, help="Only this action (repeatable).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option("--all", "all_", is_flag=True, help="Every event, however many.")
@FORMAT_OPTION
def log(
    after: int | None,
    object_: str | None,
    actor: str | None,
    actions: tuple[str, ...],
    limit: int,
    all_: bool,
    fmt: str,
) -> None:
    """Every action, in order: who, what, when, why."""
    object_type = object_id = None
    if object_:
        object_type, _, object_id = object_.partition(":")
    client = Client()
    events = []
    cursor = after
    while True:
        page = client.get(
            "/api/v1/audit",
            after=cursor,
            object_type=object_type,
            object_id=object_id or None,
            actor=actor,
            action=list(actions) or None,
            limit=limit,
        )
        events.extend(page["items"])
        if not all_ or not page["items"] or page["next_cursor"] is None:
            break
        cursor = page["items"][-1]["seq"]
    if fmt == "json":
        emit_json(events)
        return
    rows = []
    for e in events:
        change = ""
        if (
            isinstance(e.get("before"), dict)
            and isinstance(e.get("after"), dict)
            and "state" in e["before"]
            and "state" in e["after"]
        ):
            change = f"{e['before']['state']} → {e['after']['state']}"
        rows.append(
            {
                "seq": e["seq"],
                "at": datetime.fromisoformat(e["at"]).astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                "actor": e["actor"],
                "action": e["action"],
                "object": f"{e['object_type']}:{e['object_id']}",
                "change": change,
                "reason": (e.get("reason") or "")[:80],
            }
        )
    table(
        rows,
        [
            ("seq", "SEQ"),
            ("at", "AT"),
            ("actor", "ACTOR"),
            ("action", "ACTION"),
            ("object", "OBJECT"),
            ("change", "CHANGE"),
            ("reason", "WHY"),
        ],
        empty="no events",
    )


def _verify_file(path: Path, checkpoints: list[str]) -> dict:  # type: ignore[type-arg]
    from interlock.audit.chain import Checkpoint, StoredEvent, verify

    def events() -> Iterator[StoredEvent]:
        with path.open() as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                    yield StoredEvent(
                        seq=int(raw["seq"]),
                        at=float(raw["ts"]),
                        actor=raw["actor"],
                        action=raw["action"],
                        object_type=raw["object_type"],
                        object_id=raw["object_id"],
                        body=raw["body"],
                        prev_hash=raw["prev_hash"],
                        hash=raw["hash"],
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    raise InvalidInput(
                        f"{path}:{number}: not an exported audit event ({exc})"
                    ) from None

    kept = [Checkpoint.parse(c) for c in checkpoints]
    result = verify(events(), checkpoints=kept)
    head = result.head
    return {
        "ok": result.ok,
        "count": result.count,
        "problems": result.problems,
        "head": {"seq": head.seq, "hash": head.hash, "checkpoint": str(head)} if head else None,
    }


@audit.command("verify")
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    metavar="SEQ:HASH",
    help="A checkpoint kept outside the database (repeatable).",
)
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify an exported file offline instead of the server's log.",
)
@FORMAT_OPTION
def verify_(checkpoints: tuple[str, ...], file_: Path | None, fmt: str) -> None:
    """Prove the log is intact; exit 1 and name the event where it breaks."""
    try:
        if file_ is not None:
            result = _verify_file(file_, list(checkpoints))
        else:
            result = Client().get("/api/v1/audit/verify", checkpoint=list(checkpoints) or None)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="checkpoint") from None
    if fmt == "json":
        emit_json(result)
    elif result["ok"]:
        head = result["head"]
        click.echo(
            f"audit log intact: {result['count']} events"
            + (f", head {head['checkpoint']}" if head else "")
        )
    else:
        click.echo(f"audit log BROKEN ({len(result['problems'])} problems):", err=True)
        for problem in result["problems"][:20]:
            click.echo(f"  event {problem['seq']}: {problem['message']}", err=True)
    if not result["ok"]:
        sys.exit(EXIT_FAILED)


@audit.command("checkpoint")
@FORMAT_OPTION
def checkpoint(fmt: str) -> None:
    """Print the head (sequence and hash) to keep outside the database."""
    found = Client().get("/api/v1/audit/checkpoint")
    if fmt == "json":
        emit_json(found)
        return
    click.echo(found["checkpoint"])
    click.echo(
        f"{found['count']} events; keep this line somewhere the database's "
        "administrators cannot change, and pass it to `interlock audit verify "
        "--checkpoint`",
        err=True,
    )


@audit.command("export")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
def export(out: Path | None) -> None:
    """Every event with its hashes as JSON lines (verify offline with --file)."""
    client = Client()
    response = client.request("GET", "/api/v1/audit/export")
    if out is None:
        click.echo(response.text, nl=False)
        return
    out.write_text(response.text)
    lines = response.text.count("\n")
    click.echo(f"wrote {lines} events to {out}", err=True)

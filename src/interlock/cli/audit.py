"""``interlock audit``: log, verify, checkpoint, export, evidence."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from interlock.cli.client import Client, timeout_option
from interlock.cli.output import FORMAT_OPTION, emit_json, table
from interlock.errors import EXIT_FAILED, InterlockError, InvalidInput


@click.group()
def audit() -> None:
    """Read, verify, checkpoint and export the audit trail; evidence for auditors."""


@audit.command("log")
@click.option(
    "--after",
    type=int,
    default=None,
    metavar="SEQ",
    help="Events after this sequence, oldest first (read the log forward).",
)
@click.option(
    "--cursor",
    "--before",
    "before",
    type=click.IntRange(min=1),
    default=None,
    metavar="SEQ",
    help="Events before this sequence (page back through older events; --before is the same).",
)
@click.option("--object", "object_", metavar="TYPE[:ID]", help="e.g. release:12")
@click.option("--actor", help="Only this actor's events.")
@click.option("--action", "actions", multiple=True, help="Only this action (repeatable).")
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="At most this many events: the newest ones, or with --after the first ones.",
)
@click.option("--all", "all_", is_flag=True, help="Every event, however many.")
@FORMAT_OPTION
def log(
    after: int | None,
    before: int | None,
    object_: str | None,
    actor: str | None,
    actions: tuple[str, ...],
    limit: int,
    all_: bool,
    fmt: str,
) -> None:
    """Every action, in order: who, what, when, why.

    Shows the newest events (like a tail), oldest first; `--cursor SEQ` pages back,
    `--after SEQ` reads forward from a sequence, `--all` prints every event.
    """
    object_type = object_id = None
    if object_:
        object_type, _, object_id = object_.partition(":")
    filters = {
        "object_type": object_type,
        "object_id": object_id or None,
        "actor": actor,
        "action": list(actions) or None,
    }
    forward = after is not None and before is None  # `--after` alone reads the log forward
    with Client() as client:
        events, more = _fetch(client, forward, after, before, limit, all_, filters)
        hint = _more_hint(client, events, forward, after, before, filters) if more else None
    if hint:
        click.echo(hint, err=True)
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


def _fetch(
    client: Client,
    forward: bool,
    after: int | None,
    before: int | None,
    limit: int,
    all_: bool,
    filters: dict[str, Any],
) -> tuple[list[dict[str, Any]], bool]:
    """The events to show, oldest first, and whether more match than were fetched."""
    events: list[dict[str, Any]] = []
    cursor = after if forward else before
    while True:
        page = client.get(
            "/api/v1/audit",
            after=cursor if forward else after,
            cursor=None if forward else cursor,
            newest_first=None if forward else True,
            limit=limit,
            **filters,
        )
        events.extend(page["items"])
        more = bool(page["items"]) and page["next_cursor"] is not None
        if not all_ or not more:
            break
        cursor = page["items"][-1]["seq"]
    if not forward:
        events.reverse()  # fetched newest first; shown oldest first, like a tail
    return events, more


def _more_hint(
    client: Client,
    shown: list[dict[str, Any]],
    forward: bool,
    after: int | None,
    before: int | None,
    filters: dict[str, Any],
) -> str:
    """One line for stderr: how many events were shown of how many, and how to see the rest."""
    more = "raise --limit (at most 1000) or use --all"
    if forward:
        return (
            f"showing the first {len(shown)} events after {after}; for the next ones add "
            f"--after {shown[-1]['seq']}, or {more}"
        )
    total = ""
    if before is None and after is None and not any(filters.values()):
        try:  # every event, unfiltered: the chain's head counts them
            total = f" of {client.get('/api/v1/audit/checkpoint')['count']}"
        except (InterlockError, KeyError, TypeError):
            pass
    return (
        f"showing the newest {len(shown)}{total} events; for older ones add "
        f"--cursor {shown[0]['seq']}, or {more}"
    )


def _verify_file(path: Path, checkpoints: list[str]) -> dict:  # type: ignore[type-arg]
    from interlock.audit.chain import Checkpoint, verify
    from interlock.audit.export_file import read_export

    kept = [Checkpoint.parse(c) for c in checkpoints]
    result = verify(read_export(path), checkpoints=kept)
    head = result.head
    return {
        "ok": result.ok,
        "count": result.count,
        "problems": result.problems,
        "head": {"seq": head.seq, "hash": head.hash, "checkpoint": str(head)} if head else None,
    }


def _against(used: dict[str, Any] | None, where: str) -> str:
    if used is None:
        return ""
    return (
        f"checked against {where} checkpoint {used['checkpoint']} (published {used['at']} "
        f"by {used['instance']}, {used['file']}:{used['line']})"
    )


def _local_checkpoint(place: Path) -> dict[str, Any]:
    """The newest checkpoint of a checkpoint file (or directory) on this machine."""
    from interlock.audit.published import checkpoint_file, read_latest

    found = read_latest(checkpoint_file(place))
    if found is None:
        raise InvalidInput(
            f"{checkpoint_file(place)}: no published checkpoint in it", field="checkpoint_file"
        )
    return {
        "seq": found.seq,
        "hash": found.hash,
        "checkpoint": str(found.checkpoint),
        "at": found.at.isoformat(),
        "instance": found.instance,
        "file": str(found.path),
        "line": found.line,
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
    "--checkpoint-file",
    type=click.Path(exists=True, path_type=Path),
    envvar="INTERLOCK_CHECKPOINT_FILE",
    help="A published checkpoint file (or its directory) on this machine: check against its "
    "newest line. Env: INTERLOCK_CHECKPOINT_FILE.",
)
@click.option(
    "--published/--no-published",
    default=True,
    show_default=True,
    help="Check against the newest checkpoint the server published (--audit-checkpoints).",
)
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify an exported file offline instead of the server's log.",
)
@timeout_option
@FORMAT_OPTION
def verify_(
    checkpoints: tuple[str, ...],
    checkpoint_file: Path | None,
    published: bool,
    file_: Path | None,
    timeout: float,
    fmt: str,
) -> None:
    """Prove the log is intact; exit 1 and name the event where it breaks.

    By default the chain must also hold the newest checkpoint the server
    published outside the database: a log cut at the end, or re-hashed from
    the start, fails against it.
    """
    local = _local_checkpoint(checkpoint_file) if checkpoint_file else None
    kept = list(checkpoints) + ([local["checkpoint"]] if local else [])
    try:
        if file_ is not None:
            result = _verify_file(file_, kept)
        else:
            result = Client(timeout=timeout, long_call=True).get(
                "/api/v1/audit/verify",
                checkpoint=kept or None,
                published=None if published else False,
            )
    except ValueError as exc:
        raise InvalidInput(str(exc), field="checkpoint") from None
    result["checkpoint_file"] = local
    used = [
        line
        for line in (
            _against(result.get("published"), "the server's published"),
            _against(local, "the"),
        )
        if line
    ]
    if fmt == "json":
        emit_json(result)
    elif result["ok"]:
        head = result["head"]
        click.echo(
            f"audit log intact: {result['count']} events"
            + (f", head {head['checkpoint']}" if head else "")
        )
        for line in used:
            click.echo(line)
        if not used and file_ is None and published:
            click.echo(
                "no published checkpoint to check against: a cut or re-hashed log would pass; "
                "start the server with --audit-checkpoints DIR",
                err=True,
            )
    else:
        count = len(result["problems"])
        click.echo(f"audit log BROKEN ({count} problem{'s' if count != 1 else ''}):", err=True)
        for problem in result["problems"][:20]:
            click.echo(f"  event {problem['seq']}: {problem['message']}", err=True)
        for line in used:
            click.echo(line, err=True)
    if not result["ok"]:
        sys.exit(EXIT_FAILED)


@audit.command("checkpoint")
@click.option(
    "--publish",
    is_flag=True,
    help="Also have the server append it to its checkpoint file (--audit-checkpoints) now.",
)
@FORMAT_OPTION
def checkpoint(publish: bool, fmt: str) -> None:
    """Print the head (sequence and hash) to keep outside the database."""
    if publish:
        done = Client().post("/api/v1/audit/checkpoint")
        if fmt == "json":
            emit_json(done)
            return
        click.echo(done["checkpoint"])
        click.echo(f"published to {done['file']}:{done['line']}", err=True)
        return
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
@timeout_option
def export(out: Path | None, timeout: float) -> None:
    """Every event with its hashes as JSON lines (verify offline with --file)."""
    client = Client(timeout=timeout, long_call=True)
    response = client.request("GET", "/api/v1/audit/export")
    if out is None:
        click.echo(response.text, nl=False)
        return
    out.write_text(response.text)
    lines = response.text.count("\n")
    click.echo(f"wrote {lines} events to {out}", err=True)


@audit.command("evidence")
@click.option(
    "--since",
    default="90d",
    show_default=True,
    help="Start: 2024-05-01, an ISO time, or how long ago (90d).",
)
@click.option(
    "--until", default="now", show_default=True, help="End (exclusive; a bare date includes it)."
)
@click.option("--env", help="The environment (default: those marked production).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv", "html"]),
    default="json",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@timeout_option
def evidence(
    since: str, until: str, env: str | None, fmt: str, out: Path | None, timeout: float
) -> None:
    """Evidence for auditors (SOC 2 CC8.1, SOX): every change in the period.

    Each change has its reason and ticket, artifact digest and commit, gates
    and checks, approvers, outcome, rollback and break-glass overrides with
    their review, and cites the audit events it was built from. The document
    carries the chain's head and the published checkpoint it was verified
    against. Findings (an author among the approvers, an override not
    reviewed) are flagged. Exit 1 when the chain does not verify.
    """
    params = {"since": since, "until": until, "env": env, "format": fmt}
    response = Client(timeout=timeout, long_call=True).request(
        "GET", "/api/v1/audit/evidence", params={k: v for k, v in params.items() if v}
    )
    if out is None:
        click.echo(response.text, nl=False)
    else:
        out.write_bytes(response.content)
    verified = response.headers.get("X-Interlock-Chain-Verified", "true") == "true"
    findings = int(response.headers.get("X-Interlock-Findings", "0"))
    changes = response.headers.get("X-Interlock-Changes", "?")
    where = f" to {out}" if out else ""
    click.echo(
        f"wrote {changes} changes{where}; audit chain "
        f"{'verified' if verified else 'BROKEN'}; {findings} findings",
        err=True,
    )
    if not verified:
        sys.exit(EXIT_FAILED)

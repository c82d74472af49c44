"""``interlock release``: create, list, show, watch, logs, cancel."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import click

from interlock.cli.client import Client
from interlock.cli.output import FORMAT_OPTION, emit_json, state, table
from interlock.cli.paging import page_options, paged
from interlock.cli.waits import wait_lines
from interlock.errors import (
    EXIT_FAILED,
    EXIT_NEEDS_ATTENTION,
    EXIT_OK,
    EXIT_TIMEOUT,
    InvalidInput,
)

FINAL = {
    "succeeded": EXIT_OK,
    "failed": EXIT_FAILED,
    "cancelled": EXIT_FAILED,
    "needs_attention": EXIT_NEEDS_ATTENTION,
}


@click.group()
def release() -> None:
    """Create, watch, show, list and cancel releases."""


def _when(value: str | None) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _items(release_: dict[str, Any]) -> str:
    return " ".join(f"{i['service']}@{i['version']}" for i in release_["items"])


@release.command("create")
@click.argument("refs", nargs=-1, required=True, metavar="SERVICE@VERSION...")
@click.option("--reason", required=True, help="Why: a ticket and a sentence.")
@click.option("--until", metavar="ENV", help="Stop after this environment.")
@click.option(
    "--from",
    "start",
    metavar="ENV",
    help="Start here; the artifacts must have succeeded in the environment before.",
)
@click.option(
    "--at", "at", metavar="TIME", help="Start later, e.g. 2026-12-01T10:00:00Z (not in the past)."
)
@click.option(
    "--on-behalf-of",
    metavar="USER",
    help="For service accounts (CI): the person the release is for.",
)
@click.option(
    "--digest",
    "digests",
    multiple=True,
    metavar="SERVICE=sha256:…",
    help="Pin a service's artifact digest (repeatable).",
)
@click.option("--watch", "watch_", is_flag=True, help="Watch it until it ends.")
@FORMAT_OPTION
def create(
    refs: tuple[str, ...],
    reason: str,
    until: str | None,
    start: str | None,
    at: str | None,
    on_behalf_of: str | None,
    digests: tuple[str, ...],
    watch_: bool,
    fmt: str,
) -> None:
    """Start a release; prints its id (the whole release with --format json)."""
    from interlock.domain.names import parse_ref

    pinned = {}
    for entry in digests:
        service, sep, digest = entry.partition("=")
        if not sep:
            raise InvalidInput(f"--digest {entry!r}: write SERVICE=sha256:…", field="digest")
        pinned[service] = digest
    items = []
    for ref in refs:
        parsed = parse_ref(ref)
        items.append(
            {
                "service": parsed.service,
                "version": parsed.version,
                "digest": pinned.pop(parsed.service, None),
            }
        )
    if pinned:
        raise InvalidInput(
            f"--digest for a service not in the release: {', '.join(pinned)}", field="digest"
        )
    body: dict[str, Any] = {"items": items, "reason": reason}
    if until:
        body["until"] = until
    if start:
        body["from"] = start
    if on_behalf_of:
        body["on_behalf_of"] = on_behalf_of
    if at:
        body["at"] = at
    client = Client()
    created = client.post("/api/v1/releases", body)
    if fmt == "json" and not watch_:
        emit_json(created)
        return
    if fmt != "json":  # with --watch, stdout holds only the final release as JSON
        click.echo(created["id"])
    when = f" at {_when(created['scheduled_at'])}" if created.get("scheduled_at") else ""
    click.echo(
        f"release {created['id']} created: {_items(created)} → "
        f"{' → '.join(created['environments'])}{when}; watch it with "
        f"`interlock release watch {created['id']}`",
        err=True,
    )
    if watch_:
        raise SystemExit(_watch(client, created["id"], None, fmt))


@release.command("list")
@click.option("--state", "states", multiple=True, help="Only releases in this state.")
@click.option("--service", help="Only releases of this service.")
@click.option("--by", "created_by", metavar="USER", help="Only releases this user created.")
@page_options
@click.option("--before", type=click.IntRange(min=1), hidden=True, help="The same as --cursor.")
@FORMAT_OPTION
def list_(
    states: tuple[str, ...],
    service: str | None,
    created_by: str | None,
    cursor: int | None,
    every: bool,
    limit: int | None,
    before: int | None,
    fmt: str,
) -> None:
    """Releases, newest first; `--cursor ID` shows the ones older than ID, `--all` every one."""
    cursor = cursor or before
    with Client() as client:
        found, next_cursor = paged(
            client,
            "/api/v1/releases",
            cursor=cursor,
            every=every,
            limit=limit,
            state=list(states) or None,
            service=service,
            created_by=created_by,
        )
    page: dict[str, Any] = {"items": found, "next_cursor": next_cursor}
    if fmt == "json":
        emit_json(page)
        return
    rows = [
        {
            "id": r["id"],
            "state": r["state"],
            "items": _items(r),
            "where": r["environment"] or "",
            "by": r["created_by"],
            "created": _when(r["created_at"]),
            "reason": r["reason"][:60],
        }
        for r in page["items"]
    ]
    table(
        rows,
        [
            ("id", "ID"),
            ("state", "STATE"),
            ("items", "SERVICES"),
            ("where", "ENV"),
            ("by", "BY"),
            ("created", "CREATED"),
            ("reason", "REASON"),
        ],
        empty="no releases match"
        if states or service or created_by or cursor
        else "no releases yet",
        styles={"state": state},
    )


def _duration(start: str | None, end: str | None) -> str:
    if not start:
        return ""
    begin = datetime.fromisoformat(start)
    finish = datetime.fromisoformat(end) if end else datetime.now(begin.tzinfo)
    from interlock.domain.durations import format_duration

    return format_duration(max(0.0, (finish - begin).total_seconds()))


def _took(step: dict[str, Any]) -> str:
    """How long a step ran: to its end, or to its last try's end while it waits for a
    person (not a time that keeps growing), or until now while it runs."""
    end = step["finished_at"]
    if end is None and step["state"] not in ("running", "waiting", "ready"):
        tries = [a["finished_at"] for a in step.get("attempts") or [] if a["finished_at"]]
        if not tries:
            return ""
        end = max(tries)
    return _duration(step["started_at"], end)


@release.command("show")
@click.argument("release_id", type=int)
@FORMAT_OPTION
def show(release_id: int, fmt: str) -> None:
    """One release: what, why, who, where it is, and every step."""
    found = Client().get(f"/api/v1/releases/{release_id}")
    if fmt == "json":
        emit_json(found)
        return
    progress = found.get("progress") or {}
    click.echo(f"release {found['id']}  {found['state']}  {_items(found)}")
    click.echo(f"  reason:   {found['reason']}")
    click.echo(f"  by:       {found['created_by']} at {_when(found['created_at'])}")
    click.echo(
        f"  route:    {' → '.join(found['environments'])} (config v{found['config_version']})"
    )
    if progress:
        click.echo(
            f"  progress: {progress['environments_done']}/"
            f"{progress['environments_total']} environments, "
            f"{progress['steps_done']}/{progress['steps_total']} steps"
        )
    if found.get("error"):
        click.echo(f"  error:    {found['error']}")
    for wait in found.get("waits", []):
        for line in wait_lines(wait, _when):
            click.echo(line)
    for dep in found["deployments"]:
        click.echo("")
        rows = [
            {
                "id": s["id"],
                "step": s["key"],
                "state": s["state"],
                "attempt": _tries(s),
                "took": _took(s),
                "error": s["error"] or "",
            }
            for s in dep["steps"]
        ]
        table(
            rows,
            [
                ("id", "ID"),
                ("step", "STEP"),
                ("state", "STATE"),
                ("attempt", "TRY"),
                ("took", "TOOK"),
                ("error", "NOTE"),
            ],
            title=f"{dep['environment']}: deployment {dep['id']} {dep['state']}{_services(dep)}",
            empty=f"{dep['environment']}: deployment {dep['id']} {dep['state']}",
            styles={"state": state},
        )


def _services(deployment: dict[str, Any]) -> str:
    """`` (api: deployed, web: rolled_back)`` for trains and rollbacks."""
    found = deployment.get("services") or {}
    if len(found) < 2 and deployment["state"] not in ("rolled_back", "rolling_back"):
        return ""
    return " (" + ", ".join(f"{k}: {v}" for k, v in found.items()) + ")"


def _watch(client: Client, release_id: int, timeout: float | None, fmt: str) -> int:
    seen: dict[tuple[int, str], str] = {}
    last_state = None
    revision = -1
    started = time.monotonic()
    current: dict[str, Any] = {}
    while True:
        wait = 20.0
        if timeout is not None:
            left = timeout - (time.monotonic() - started)
            if left <= 0 and current:  # asked at least once: `--timeout 0` looks once
                if fmt == "json":
                    emit_json(current)
                click.echo(
                    f"release {release_id} is still {current.get('state')} after {timeout:g}s",
                    err=True,
                )
                return EXIT_TIMEOUT
            wait = max(0.0, min(wait, left))
        current = client.get(f"/api/v1/releases/{release_id}", since=revision, wait=wait)
        revision = current["revision"]
        if fmt != "json":
            _print_changes(current, seen, last_state)
        last_state = current["state"]
        if current["state"] in FINAL and current["state"] != "running":
            if fmt == "json":
                emit_json(current)
            else:
                progress = current.get("progress") or {}
                took = _duration(current["created_at"], current["finished_at"])
                message = (
                    f"release {release_id} {current['state']}"
                    + (f" after {took}" if took else "")
                    + f" ({progress.get('environments_done', 0)}/"
                    f"{progress.get('environments_total', 0)} environments, "
                    f"{progress.get('steps_done', 0)}/{progress.get('steps_total', 0)} "
                    "steps)"
                )
                if current.get("error"):
                    message += f": {current['error']}"
                click.echo(message)
            return FINAL[current["state"]]


def _print_changes(
    current: dict[str, Any], seen: dict[tuple[int, str], str], last_state: str | None
) -> None:
    now = datetime.now().strftime("%H:%M:%S")
    if current["state"] != last_state and current["state"] not in FINAL:
        where = f" ({current['environment']})" if current.get("environment") else ""
        click.echo(f"[{now}] release {current['id']} {current['state']}{where}")
    progress = current.get("progress") or {}
    for dep in current["deployments"]:
        key = (dep["id"], "")
        ended = dep["finished_at"] is not None
        if seen.get(key) != dep["state"] and not ended:
            seen[key] = dep["state"]
            click.echo(f"[{now}] {dep['environment']}: deployment {dep['id']} {dep['state']}")
        for step in dep["steps"]:
            marker = f"{step['state']}:{step['attempt']}"
            if seen.get((dep["id"], step["key"])) == marker or step["state"] == "pending":
                continue
            seen[(dep["id"], step["key"])] = marker
            counted = f"[{now}] [{progress.get('steps_done', 0)}/{progress.get('steps_total', 0)}]"
            ran = (dep["id"], step["key"] + "#ran")
            if step["attempt"] and seen.get(ran) != str(step["attempt"]):
                # This try started and ended between two looks: it ran all the same, so
                # the watcher shows it rather than jumping from try N to try N+2.
                seen[ran] = str(step["attempt"])
                if step["state"] != "running":
                    started = {**step, "state": "running"}
                    click.echo(
                        f"{counted} {dep['environment']}  {step['key']}  running"
                        f"{_step_detail(started)}"
                    )
            click.echo(
                f"{counted} {dep['environment']}  {step['key']}  {step['state']}"
                f"{_step_detail(step)}"
            )
        if ended and seen.get(key) != dep["state"]:
            seen[key] = dep["state"]
            click.echo(f"[{now}] {dep['environment']}: deployment {dep['id']} {dep['state']}")
    for wait in current.get("waits", []):
        if wait["kind"] == "check":
            continue  # its tries are the step lines above
        marker = f"wait:{wait['kind']}:{wait.get('deployment')}:{wait.get('step_id')}"
        marker += f":{wait.get('behind_deployment')}"
        if seen.get((0, marker)) == wait["summary"]:
            continue  # printed once, and again only when it changes (an approval given)
        seen[(0, marker)] = wait["summary"]
        click.echo(f"[{now}] waiting: {wait['summary']}")


def _tries(step: dict[str, Any]) -> str:
    """The TRY column: a polled gate counts its looks, which have no maximum."""
    if not step["attempt"]:
        return ""
    if step.get("kind") == "gate" or step["attempt"] > step["max_attempts"]:
        return str(step["attempt"])
    return f"{step['attempt']}/{step['max_attempts']}"


def _step_detail(step: dict[str, Any]) -> str:
    """What a watcher wants to know about a step that just changed."""
    state, attempt, most = step["state"], step["attempt"], step["max_attempts"]
    error = step.get("error")
    before = [a for a in step.get("attempts") or [] if a["attempt"] == attempt - 1]
    lost = bool(before) and before[0]["outcome"] in ("lost", "released")
    # A gate that polls (a check, a metric, a soak, a window) looks again and again, as
    # does a step that waits (for a sign-off, for the runbook run it started): each look
    # is a try, with no maximum, and only a try after a lost worker says so.
    looks = step.get("kind") == "gate" or (attempt > most and not lost)
    if state == "running":
        if lost:
            return f" (attempt {attempt}: run again after its worker was lost)"
        if looks:
            return f" (try {attempt})"
        return f" (attempt {attempt}/{most})"
    if state == "ready" and attempt:  # between tries
        if looks:
            return f" (try {attempt}" + (f": {error})" if error else ")")
        return f" (try {attempt + 1} next, after: {error or 'its worker was lost'})"
    detail = ""
    if state in ("succeeded", "failed") and step["started_at"]:
        detail = f" in {_duration(step['started_at'], step['finished_at'])}"
    if error and state != "succeeded":
        detail += f": {error}"
    return detail


@release.command("watch")
@click.argument("release_id", type=int)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    help="Give up after this many seconds (exit 8); 0 looks once and does not wait.",
)
@FORMAT_OPTION
def watch(release_id: int, timeout: float | None, fmt: str) -> None:
    """Follow a release live; exit 0 if it succeeds, non-zero if not (for CI)."""
    raise SystemExit(_watch(Client(), release_id, timeout, fmt))


@release.command("logs")
@click.argument("release_id", type=int)
@click.option(
    "--step",
    help="Only this step or gate: NAME (every environment), SERVICE/NAME, or "
    "ENVIRONMENT/SERVICE/NAME as the log headers print it; a step that runs a runbook "
    "shows the output of the run's steps.",
)
@click.option(
    "--attempt",
    type=click.IntRange(min=1),
    help="This try of each step instead of the latest (a retry, or a run after a lost worker).",
)
@FORMAT_OPTION
def logs(release_id: int, step: str | None, attempt: int | None, fmt: str) -> None:
    """The output of the release's steps (the latest try of each, or --attempt N)."""
    with Client() as client:
        found = client.get(f"/api/v1/releases/{release_id}/logs", step=step, attempt=attempt)
    if fmt == "json":
        emit_json(found)
        return
    for entry in found:
        click.echo(
            f"==> {entry['key']} (attempt {entry['attempt']}"
            f"{', running' if not entry['finished'] else ''}) <=="
        )
        text = entry["text"]
        click.echo(text, nl=bool(text) and not text.endswith("\n"))


@release.command("cancel")
@click.argument("release_id", type=int)
@click.option("--reason", default="cancelled from the CLI", show_default=True)
@FORMAT_OPTION
def cancel(release_id: int, reason: str, fmt: str) -> None:
    """Cancel a release: nothing new starts; running steps are stopped."""
    found = Client().post(f"/api/v1/releases/{release_id}/cancel", {"reason": reason})
    if fmt == "json":
        emit_json(found)
        return
    click.echo(f"release {release_id} {found['state']}")


@release.command("block")
@click.argument("ref", metavar="[SERVICE@]VERSION")
@click.option("--reason", required=True)
def block(ref: str, reason: str) -> None:
    """Mark a version bad: it is never released again, and deployments of it stop.

    A bare VERSION is enough when only one service has it.
    """
    client = Client()
    service, version = _versioned(client, ref)
    client.post(f"/api/v1/artifacts/{service}/{version}/block", {"reason": reason})
    click.echo(f"{service}@{version} is blocked; running deployments of it are stopping")


def _versioned(client: Client, ref: str) -> tuple[str, str]:
    from interlock.domain.names import check_version, parse_ref

    if "@" in ref:
        parsed = parse_ref(ref, field="version")
        return parsed.service, parsed.version
    check_version(ref)
    services = client.get(f"/api/v1/versions/{ref}/services")
    if len(services) == 1:
        return str(services[0]), ref
    if not services:
        raise InvalidInput(
            f"no service has a version {ref!r}; write SERVICE@VERSION", field="version"
        )
    raise InvalidInput(
        f"several services have version {ref!r} ({', '.join(services)}); write SERVICE@VERSION",
        field="version",
    )


@release.command("unblock")
@click.argument("ref", metavar="[SERVICE@]VERSION")
@click.option("--reason", required=True)
def unblock(ref: str, reason: str) -> None:
    """Allow a blocked version again."""
    client = Client()
    service, version = _versioned(client, ref)
    client.post(f"/api/v1/artifacts/{service}/{version}/unblock", {"reason": reason})
    click.echo(f"{service}@{version} is no longer blocked")


def _attach_notes() -> None:
    from interlock.cli.insight import notes

    release.add_command(notes, "notes")


_attach_notes()

"""What is being released: ``release notes``, ``diff`` and ``calendar``.

The server reads the git repositories and the inventory; these commands print
what it answers as Markdown, tables or JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from interlock.cli.client import Client
from interlock.cli.output import FORMAT_OPTION, emit_json, table

F = TypeVar("F", bound=Callable[..., Any])


def _format_option(choices: list[str], default: str) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help="Output format.",
    )


@click.command("notes")
@click.argument("release_id", metavar="ID", type=int)
@click.option(
    "--env",
    "environment",
    metavar="ENV",
    help="Compare with what runs here (default: the last environment of the release's route).",
)
@_format_option(["markdown", "json"], "markdown")
def notes(release_id: int, environment: str | None, fmt: str) -> None:
    """Commits and tickets per service since the version that ran in the environment."""
    found = Client().get(f"/api/v1/releases/{release_id}/notes", environment=environment)
    if fmt == "json":
        emit_json(found)
    else:
        click.echo(notes_markdown(found), nl=False)
    for service in found["services"]:
        if service.get("problem"):
            click.echo(f"warning: {service['problem']}", err=True)


@click.command("diff")
@click.argument("env_a", metavar="ENV_A")
@click.argument("env_b", metavar="ENV_B")
@_format_option(["table", "json", "markdown"], "table")
def diff(env_a: str, env_b: str, fmt: str) -> None:
    """Which services differ between two environments, and the commits in between."""
    found = Client().get(f"/api/v1/diff/{env_a}/{env_b}")
    if fmt == "json":
        emit_json(found)
        return
    if fmt == "markdown":
        click.echo(diff_markdown(found), nl=False)
        return
    a, b = found["a"], found["b"]
    rows = [
        {
            "service": s["service"],
            "a": _v(s["a"]),
            "b": _v(s["b"]),
            "change": _change(found, s),
            "tickets": " ".join(t["key"] for t in _tickets(s)),
        }
        for s in found["services"]
    ]
    table(
        rows,
        [("service", "SERVICE"), ("a", a.upper()), ("b", b.upper()), ("change", "CHANGE")]
        + [("tickets", "TICKETS")],
        empty=f"nothing runs in {a} or {b} yet",
    )
    for s in found["services"]:
        for side in ("a", "b"):
            commits = s[f"only_in_{side}"]
            if not commits["total"]:
                continue
            click.echo(
                f"\n{s['service']}: only in {found[side]} ({_count(commits)}, newest first):"
            )
            for c in reversed(commits["commits"]):
                click.echo(f"  {c['short']} {c['subject']} ({c['author']})")
        if s.get("problem"):
            click.echo(f"\n{s['service']}: {s['problem']}")


@click.command("calendar")
@click.option(
    "--days", default=90, show_default=True, type=click.IntRange(1, 400), help="How far ahead."
)
@FORMAT_OPTION
def calendar(days: int, fmt: str) -> None:
    """Scheduled releases and freeze periods; the server also serves them as iCalendar."""
    client = Client()
    found = client.get("/api/v1/calendar", days=days)
    if fmt == "json":
        emit_json(found)
        return
    table(
        [
            {
                "id": r["id"],
                "when": _when(r["scheduled_at"]),
                "items": " ".join(f"{i['service']}@{i['version']}" for i in r["items"]),
                "route": " → ".join(r["route"]),
                "reason": r["reason"],
                "by": r["created_by"],
            }
            for r in found["releases"]
        ],
        [
            ("id", "ID"),
            ("when", "SCHEDULED"),
            ("items", "ITEMS"),
            ("route", "ROUTE"),
            ("reason", "REASON"),
            ("by", "BY"),
        ],
        title="Scheduled releases",
        empty=f"no releases scheduled in the next {days} days",
    )
    click.echo()
    table(
        [
            {
                "from": _when(f["start"]),
                "to": _when(f["end"]),
                "envs": ", ".join(f["environments"]),
                "reason": f["reason"],
                "source": f["source"],
            }
            for f in found["freezes"]
        ],
        [
            ("from", "FROM"),
            ("to", "TO"),
            ("envs", "ENVIRONMENTS"),
            ("reason", "REASON"),
            ("source", "SOURCE"),
        ],
        title="Freezes",
        empty=f"no freezes in the next {days} days",
    )
    for problem in found["problems"]:
        click.echo(f"warning: {problem}", err=True)
    click.echo(
        f"\nsubscribe: {client.url}{found['feed']}?token=… (a read-only user's token)", err=True
    )


# -- Markdown ---------------------------------------------------------------------------------

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def md(text: str) -> str:
    """``text`` as literal Markdown: no emphasis, links or HTML from commit messages."""
    return _SPECIAL.sub(r"\\\1", text)


def notes_markdown(found: dict[str, Any]) -> str:
    """Release notes as Markdown: a heading per service, its commits and tickets."""
    env = found["environment"]
    title = "Rollback" if found["kind"] == "rollback" else "Release"
    lines = [f"# {title} {found['release']} → {md(env)}", ""]
    lines += [f"{md(found['reason'])}", ""]
    lines += [f"By {md(found['created_by'])}; route {md(' → '.join(found['route']))}.", ""]
    for s in found["services"]:
        old = s["old"]["version"] if s["old"] else "(none)"
        lines += [f"## {md(s['service'])}: {md(old)} → {md(s['new']['version'])}", ""]
        if s["problem"]:
            lines += [f"> {md(s['problem'])}", ""]
            continue
        added = s["added"]
        if s["first"]:
            lines += [
                f"Nothing of {md(s['service'])} ran in {md(env)} before. "
                + (
                    f"The list is bounded: the last {len(added['commits'])} of "
                    f"{added['total']} commits up to {md(s['new']['version'])}."
                    if added["truncated"]
                    else f"All {added['total']} commits up to {md(s['new']['version'])}."
                ),
                "",
            ]
        elif not added["total"] and not s["removed"]["total"]:
            lines += [f"No new commits: {md(env)} already runs this commit.", ""]
        elif added["total"]:
            lines += [f"{_count(added)} `{s['old']['short']}..{s['new']['short']}`:", ""]
        lines += _commit_lines(added)
        removed = s["removed"]
        if removed["total"]:
            lines += [
                f"Leaves out {_count(removed)} that run in {md(env)} now "
                "(a rollback, or a version from another branch):",
                "",
                *_commit_lines(removed),
            ]
        if added["tickets"]:
            lines += [f"Tickets: {_ticket_links(added['tickets'])}", ""]
    if sum(1 for s in found["services"] if s["added"]["tickets"]) > 1:
        lines += ["## Tickets", "", *(f"- {_ticket_links([t])}" for t in found["tickets"]), ""]
    return "\n".join(lines)


def diff_markdown(found: dict[str, Any]) -> str:
    """An environment diff as Markdown: a table of versions, then the commits per service."""
    a, b = found["a"], found["b"]
    lines = [f"# {md(a)} ↔ {md(b)}", ""]
    if not found["services"]:
        return "\n".join([*lines, f"Nothing runs in {md(a)} or {md(b)} yet.", ""])
    lines += [f"| service | {md(a)} | {md(b)} | |", "|---|---|---|---|"]
    for s in found["services"]:
        lines.append(
            f"| {md(s['service'])} | {md(_v(s['a']))} | {md(_v(s['b']))} | "
            f"{md(_change(found, s))} |"
        )
    lines.append("")
    for s in found["services"]:
        if s["same"]:
            continue
        lines += [f"## {md(s['service'])}", ""]
        if s["problem"]:
            lines += [f"> {md(s['problem'])}", ""]
        for side in ("a", "b"):
            commits = s[f"only_in_{side}"]
            if commits["total"]:
                lines += [f"Only in {md(found[side])} ({_count(commits)}):", ""]
                lines += _commit_lines(commits)
                if commits["tickets"]:
                    lines += [f"Tickets: {_ticket_links(commits['tickets'])}", ""]
    return "\n".join(lines)


def _commit_lines(found: dict[str, Any]) -> list[str]:
    if not found["commits"]:
        return []
    newest_first = reversed(found["commits"])
    return [f"- `{c['short']}` {md(c['subject'])} ({md(c['author'])})" for c in newest_first] + [""]


def _ticket_links(tickets: list[dict[str, Any]]) -> str:
    return ", ".join(f"[{t['key']}]({t['url']})" if t["url"] else md(t["key"]) for t in tickets)


def _count(found: dict[str, Any]) -> str:
    n = found["total"]
    text = f"{n} commit{'s' if n != 1 else ''}"
    return f"{text}, the newest {len(found['commits'])} listed" if found["truncated"] else text


def _tickets(service: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = service["only_in_a"]["tickets"] + service["only_in_b"]["tickets"]
    return found


def _v(version: dict[str, Any] | None) -> str:
    return version["version"] if version else "-"


def _change(found: dict[str, Any], s: dict[str, Any]) -> str:
    if s["same"]:
        return "same"
    if s["a"] is None or s["b"] is None:
        return f"only in {found['a'] if s['a'] else found['b']}"
    if s["problem"]:
        return "differs (commits unknown)"
    if s["diverged"]:
        return (
            f"diverged: {s['only_in_a']['total']} only in {found['a']}, "
            f"{s['only_in_b']['total']} only in {found['b']}"
        )
    if s["ahead"]:
        side = "a" if s["ahead"] == found["a"] else "b"
        return f"{s['ahead']} is ahead by {_count(s[f'only_in_{side}'])}"
    return "differs (same commit)"


def _when(value: str | None) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M %Z")

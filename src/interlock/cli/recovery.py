"""``interlock rollback``, ``resolve``, ``incident`` and ``runbook``."""

from __future__ import annotations

import click

from interlock.cli.client import Client
from interlock.cli.output import FORMAT_OPTION, emit_json, table
from interlock.cli.paging import listed, page_options
from interlock.errors import InvalidInput


@click.command()
@click.argument("service")
@click.option("--env", "environment", required=True, metavar="ENV")
@click.option("--to", "to", metavar="VERSION", help="Default: the last good version there.")
@click.option("--reason", required=True)
@click.option("--dry-run", is_flag=True, help="Print exactly what would run; change nothing.")
@click.option("--watch", "watch_", is_flag=True, help="Follow it until it ends.")
@FORMAT_OPTION
def rollback(
    service: str,
    environment: str,
    to: str | None,
    reason: str,
    dry_run: bool,
    watch_: bool,
    fmt: str,
) -> None:
    """Put SERVICE in ENV back on its last good version (or --to VERSION)."""
    client = Client()
    found = client.post(
        "/api/v1/rollbacks",
        {
            "service": service,
            "environment": environment,
            "to": to,
            "reason": reason,
            "dry_run": dry_run,
        },
    )
    if fmt == "json" and not watch_:
        emit_json(found)
        return
    if dry_run:
        click.echo(
            f"would roll {service} in {environment} back from {found['from']} to "
            f"{found['to']}" + (f" ({found['digest']})" if found.get("digest") else "")
        )
        for number, step in enumerate(found["steps"], 1):
            click.echo(f"   {number}. {step['key']}  ({step['executor']})")
            click.echo(f"      {step['runs']}")
        return
    click.echo(found["release"])
    click.echo(
        f"rollback of {service} in {environment}: {found['from']} → {found['to']} "
        f"(release {found['release']})",
        err=True,
    )
    if watch_:
        from interlock.cli.releases import _watch

        raise SystemExit(_watch(client, found["release"], None, fmt))


@click.command()
@click.argument("step_id", type=int)
@click.option("--retry", "action", flag_value="retry", help="Run it again.")
@click.option("--skip", "action", flag_value="skip", help="Count it as done (it ran).")
@click.option("--fail", "action", flag_value="fail", help="Fail the deployment, no rollback.")
@click.option("--rollback", "action", flag_value="rollback", help="Fail it and roll back.")
@click.option("--reason", required=True)
def resolve(step_id: int, action: str | None, reason: str) -> None:
    """Decide about a step that needs attention (see `release show`)."""
    if action is None:
        raise InvalidInput("choose one of --retry, --skip, --fail or --rollback", field="action")
    found = Client().post(f"/api/v1/steps/{step_id}/resolve", {"action": action, "reason": reason})
    click.echo(f"step {found['key']}: {action} → {found['state']}")


@click.group()
def incident() -> None:
    """Incidents: failures in an environment, linked to the deployment that caused them."""


@incident.command("open")
@click.option("--service")
@click.option("--env", "environment", required=True, metavar="ENV")
@click.option("--summary", required=True)
@click.option(
    "--deployment",
    type=int,
    help="Default: the latest deployment of that service that finished there (after a step ran).",
)
@FORMAT_OPTION
def open_(
    service: str | None, environment: str, summary: str, deployment: int | None, fmt: str
) -> None:
    """Open an incident by hand."""
    found = Client().post(
        "/api/v1/incidents",
        {
            "service": service,
            "environment": environment,
            "summary": summary,
            "deployment": deployment,
        },
    )
    if fmt == "json":
        emit_json(found)
        return
    linked = f", caused by deployment {found['deployment_id']}" if found["deployment_id"] else ""
    click.echo(f"incident {found['id']} open{linked}")


@incident.command("resolve")
@click.argument("incident_id", type=int)
@click.option("--note", required=True, help="How it was resolved.")
def resolve_incident(incident_id: int, note: str) -> None:
    """Resolve an incident by hand."""
    Client().post(f"/api/v1/incidents/{incident_id}/resolve", {"note": note})
    click.echo(f"incident {incident_id} resolved")


@incident.command("list")
@click.option("--open", "only_open", is_flag=True)
@click.option("--service")
@click.option("--env", "environment")
@page_options
@FORMAT_OPTION
def list_incidents(
    only_open: bool,
    service: str | None,
    environment: str | None,
    cursor: int | None,
    every: bool,
    limit: int | None,
    fmt: str,
) -> None:
    """Incidents, newest first."""
    with Client() as client:
        found = listed(
            client,
            "/api/v1/incidents",
            cursor=cursor,
            every=every,
            limit=limit,
            state="open" if only_open else None,
            service=service,
            environment=environment,
        )
    if fmt == "json":
        emit_json(found)
        return
    rows = [{**i, "summary": i["summary"][:70], "resolution": i["resolution"] or ""} for i in found]
    table(
        rows,
        [
            ("id", "ID"),
            ("state", "STATE"),
            ("service", "SERVICE"),
            ("environment", "ENV"),
            ("opened_at", "OPENED"),
            ("resolved_at", "RESOLVED"),
            ("resolution", "HOW"),
            ("deployment_id", "CAUSED BY"),
            ("summary", "SUMMARY"),
        ],
        empty="no incidents",
    )


@incident.command("show")
@click.argument("incident_id", type=int)
@FORMAT_OPTION
def show_incident(incident_id: int, fmt: str) -> None:
    """One incident."""
    found = Client().get(f"/api/v1/incidents/{incident_id}")
    if fmt == "json":
        emit_json(found)
        return
    for key in (
        "id",
        "state",
        "service",
        "environment",
        "summary",
        "opened_at",
        "opened_by",
        "deployment_id",
        "release_id",
        "resolved_at",
        "resolved_by",
        "resolution",
        "resolution_note",
    ):
        if found.get(key) is not None:
            click.echo(f"{key:16} {found[key]}")
    for run in found.get("runbook_runs", []):
        click.echo(f"runbook run      {run['id']} {run['runbook']} {run['state']}")


@click.group()
def runbook() -> None:
    """Runbooks as code: list, run, show, sign."""


@runbook.command("list")
@FORMAT_OPTION
def list_runbooks(fmt: str) -> None:
    """The runbooks of the active config."""
    found = Client().get("/api/v1/runbooks")
    if fmt == "json":
        emit_json(found)
        return
    rows = [
        {
            "name": b["name"],
            "params": ", ".join(b["params"]),
            "steps": len(b["steps"]),
            "manual": sum(1 for s in b["steps"] if s["manual"]),
            "description": b["description"] or "",
        }
        for b in found
    ]
    table(
        rows,
        [
            ("name", "NAME"),
            ("params", "PARAMS"),
            ("steps", "STEPS"),
            ("manual", "MANUAL"),
            ("description", "DESCRIPTION"),
        ],
        empty="no runbooks",
    )


@runbook.command("run")
@click.argument("name")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE")
@click.option("--env", "environment", metavar="ENV")
@click.option("--incident", type=int, help="Attach the run to this incident.")
@click.option("--reason")
@FORMAT_OPTION
def run(
    name: str,
    params: tuple[str, ...],
    environment: str | None,
    incident: int | None,
    reason: str | None,
    fmt: str,
) -> None:
    """Start a run of runbook NAME; prints the run id."""
    values = {}
    for entry in params:
        key, sep, value = entry.partition("=")
        if not sep:
            raise InvalidInput(f"--param {entry!r}: write KEY=VALUE", field="param")
        values[key] = value
    found = Client().post(
        f"/api/v1/runbooks/{name}/runs",
        {"params": values, "environment": environment, "incident": incident, "reason": reason},
    )
    if fmt == "json":
        emit_json(found)
        return
    click.echo(found["id"])


def _print_run(found: dict) -> None:  # type: ignore[type-arg]
    click.echo(
        f"run {found['id']}  {found['runbook']}  {found['state']}"
        + (f"  (incident {found['incident']})" if found.get("incident") else "")
    )
    for step in found["steps"]:
        line = f"  {step['name']:24} {step['state']}"
        if step.get("manual"):
            manual = step["manual"]
            line += f"  [manual, signed off by {manual.get('role') or manual.get('team')}]"
        click.echo(line)
        if step.get("manual") and step["state"] == "waiting":
            click.echo(f"      {step['manual']['instructions']}")


@runbook.command("show")
@click.argument("run_id", type=int)
@FORMAT_OPTION
def show_run(run_id: int, fmt: str) -> None:
    """One run: every step, and what manual steps ask of whom."""
    found = Client().get(f"/api/v1/runbook-runs/{run_id}")
    if fmt == "json":
        emit_json(found)
        return
    _print_run(found)


@runbook.command("sign")
@click.argument("run_id", type=int)
@click.argument("step")
@click.option("--comment")
def sign(run_id: int, step: str, comment: str | None) -> None:
    """Sign off manual STEP of run RUN_ID."""
    found = Client().post(f"/api/v1/runbook-runs/{run_id}/steps/{step}/sign", {"comment": comment})
    click.echo(f"run {run_id}: {found['step']} {found['state']}")


@runbook.command("runs")
@page_options
@FORMAT_OPTION
def runs(cursor: int | None, every: bool, limit: int | None, fmt: str) -> None:
    """Runs, newest first."""
    with Client() as client:
        found = listed(client, "/api/v1/runbook-runs", cursor=cursor, every=every, limit=limit)
    if fmt == "json":
        emit_json(found)
        return
    table(
        found,
        [
            ("id", "ID"),
            ("runbook", "RUNBOOK"),
            ("state", "STATE"),
            ("environment", "ENV"),
            ("created_by", "BY"),
            ("created_at", "AT"),
            ("incident", "INCIDENT"),
        ],
        empty="no runs yet",
    )

"""``interlock metrics``: delivery metrics from the server's records, each with its definition."""

from __future__ import annotations

from typing import Any

import click

from interlock.cli.client import Client
from interlock.cli.metric_options import (
    BANDS_OPTION,
    FREQUENCY_UNIT_OPTION,
    MIN_EVENTS_OPTION,
    STATISTIC_OPTION,
)
from interlock.cli.output import FORMAT_OPTION, emit_json, table


def _plain(value: Any) -> str:
    from rich.markup import escape

    return escape("" if value is None else str(value))


def _number(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@click.command()
@click.option("--service", help="Only releases holding this service.")
@click.option("--env", help="The environment to measure (default: those marked production).")
@click.option("--team", help="Only the services this team owns.")
@click.option(
    "--since",
    metavar="DATE",
    help="Start: 2024-05-01, an ISO time, or how long ago (30d). Default: 90 days before --until.",
)
@click.option(
    "--until", metavar="DATE", help="End, exclusive (a bare date includes that day). Default: now."
)
@click.option(
    "--frequency",
    type=click.Choice(["deployments", "days"]),
    default="deployments",
    show_default=True,
    help="Deployment frequency counts deployments, or days with at least one.",
)
@FREQUENCY_UNIT_OPTION
@STATISTIC_OPTION
@click.option(
    "--restore",
    type=click.Choice(["incident", "deployment"]),
    default="incident",
    show_default=True,
    help="Time to restore: incident opened -> resolved, or failed -> next good deployment.",
)
@BANDS_OPTION
@MIN_EVENTS_OPTION
@click.option(
    "--manual-steps",
    is_flag=True,
    help="Rank the manual steps by what they cost people: the ones to automate first.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=500),
    default=20,
    show_default=True,
    help="With --manual-steps: how many steps to show.",
)
@FORMAT_OPTION
def metrics(
    service: str | None,
    env: str | None,
    team: str | None,
    since: str | None,
    until: str | None,
    frequency: str,
    frequency_unit: str,
    statistic: str,
    restore: str,
    bands: str,
    min_events: int,
    manual_steps: bool,
    limit: int,
    fmt: str,
) -> None:
    """Delivery and coordination metrics from Interlock's records, with their definitions.

    Deployment frequency, lead time, change failure rate, time to restore,
    rework rate, pipeline runs, approval wait, share of manual steps, release
    concentration and schedule slip, with the DORA band of each key metric.
    Examples:

    \b
        interlock metrics                            # production, the last 90 days
        interlock metrics --team payments --since 2024-01-01 --statistic p90
        interlock metrics --manual-steps             # what to automate next
    """
    params = {
        "service": service,
        "env": env,
        "team": team,
        "since": since,
        "until": until,
        "frequency": frequency,
        "frequency_unit": frequency_unit,
        "statistic": statistic,
        "restore": restore,
        "bands": bands,
        "min_events": min_events,
    }
    client = Client()
    if manual_steps:
        found = client.get("/api/v1/metrics/manual-steps", **params, limit=limit)
        if fmt == "json":
            emit_json(found)
        else:
            _print_manual_steps(found)
        return
    report = client.get("/api/v1/metrics", **params)
    if fmt == "json":
        emit_json(report)
        return
    _print_report(report)


def _head(scope: dict[str, Any], notes: list[str]) -> None:
    services = ", ".join(scope["services"]) if scope["services"] is not None else "all services"
    click.echo(f"Environments: {', '.join(scope['environments'])}; {services}")
    click.echo(f"Period: {scope['period']}")
    for note in notes:
        click.echo(f"note: {note}")


def _print_report(report: dict[str, Any]) -> None:
    _head(report["scope"], report["notes"])
    words = report["definitions"]
    click.echo(
        "Definitions: "
        + "; ".join(f"{key.replace('_', ' ')}: {value}" for key, value in words.items())
    )
    metrics = report["metrics"]
    table(
        metrics,
        [("title", "Metric"), ("display", "Value"), ("band_note", "Band"), ("n", "n")],
        styles={"band_note": _plain, "title": _plain},
    )
    click.echo("\nWhat each number counts:")
    for metric in metrics:
        click.echo(f"  {metric['title']}: {metric['definition']}")
    by_key = {m["key"]: m for m in metrics}
    concentration = by_key.get("release_concentration")
    if concentration and concentration["details"].get("top_person"):
        details = concentration["details"]
        click.echo(
            f"\nReleases: {details['top_person']} ran {details['top_count']} of"
            f" {concentration['n']}; {details['distinct_people']} people release;"
            f" bus factor {details['bus_factor']}"
        )
    pipelines = by_key.get("pipeline_run_frequency") or {}
    rows = pipelines.get("details", {}).get("pipelines", [])
    if rows:
        click.echo("")
        table(
            [
                {
                    **row,
                    "per_unit": _number(row["per_unit"]),
                    "gap_variation": _number(row["gap_variation"]),
                }
                for row in rows
            ],
            [
                ("pipeline", "Pipeline"),
                ("environment", "Environment"),
                ("runs", "Runs"),
                ("failed", "Failed"),
                ("per_unit", f"Per {pipelines['unit']}"),
                ("gap_variation", "Gap variation"),
            ],
            title="Pipeline runs",
            styles={"pipeline": _plain},
        )


def _print_manual_steps(found: dict[str, Any]) -> None:
    _head(found["scope"], found["notes"])
    table(
        [{**s, "per_unit": _number(s["per_unit"])} for s in found["steps"]],
        [
            ("step", "Manual step"),
            ("runs", "Runs"),
            ("per_unit", f"Per {found['unit']}"),
            ("signed_off", "Signed off"),
            ("waiting", "Waiting"),
            ("median_signoff_display", "Median sign-off"),
            ("total_signoff_display", "Total sign-off"),
        ],
        empty="no manual steps ran in this period",
        styles={"step": _plain},
    )
    if found.get("more"):
        click.echo(f"more manual steps cost less: raise --limit ({len(found['steps'])})", err=True)
    click.echo(f"\n{found['definition']}")

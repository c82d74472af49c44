"""``interlock assess``: diagnose manual release coordination from what a team already has."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from interlock.cli.metric_options import (
    BANDS_OPTION,
    FREQUENCY_UNIT_OPTION,
    MIN_EVENTS_OPTION,
    STATISTIC_OPTION,
)
from interlock.cli.output import FORMAT_OPTION, emit_json, table
from interlock.domain.durations import parse_duration
from interlock.errors import InvalidInput


def _zone(name: str) -> tzinfo:
    if name.strip().upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"--timezone {name!r} is not a time zone; use an IANA name like Europe/Berlin or UTC"
        ) from None


def _duration(option: str, text: str) -> float:
    if text.strip() == "0":
        return 0.0
    try:
        return parse_duration(text)  # at most MAX_DURATION (366d); its error says so
    except ValueError as exc:
        raise InvalidInput(f"{option}: {exc}") from None


def _moment(option: str, text: str | None, zone: tzinfo, *, end_of_day: bool) -> datetime | None:
    from interlock.metrics.assess.dates import parse_when

    if text is None:
        return None
    try:
        when = parse_when(text, zone)
    except ValueError as exc:
        raise InvalidInput(f"{option}: {exc}") from None
    if when is None:
        raise InvalidInput(f"{option}: give a date such as 2024-03-01")
    return when.in_production_by() if end_of_day else when.at


def _plain(value: Any) -> str:
    from rich.markup import escape

    return escape("" if value is None else str(value))


_SEEN = {True: "seen", False: "not seen", None: "cannot tell"}


@click.command()
@click.option("--git", "git", type=click.Path(path_type=Path), help="A git repository to read.")
@click.option(
    "--tag-pattern",
    default="*",
    show_default=True,
    help="Glob of the tags that are releases, e.g. 'v*' or 'payments-*'.",
)
@click.option(
    "--releases",
    type=click.Path(path_type=Path),
    help="The release spreadsheet: .csv or .xlsx, one row per release of a service.",
)
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Name the column holding a field: date, service, version, run_by, approver,"
    " planned_date, notes, outcome, labels, time. Repeat for each.",
)
@click.option("--sheet", help="The worksheet of an .xlsx file (default: the first).")
@click.option(
    "--incidents",
    type=click.Path(path_type=Path),
    help="Incidents (.csv or .xlsx): opened, resolved, service, version that caused it.",
)
@click.option("--out", type=click.Path(path_type=Path), help="Write the HTML report here.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, allow_dash=True),
    help="Write the assessment as JSON here ('-' for standard output).",
)
@click.option(
    "--timezone",
    "timezone_name",
    default="UTC",
    show_default=True,
    help="Time zone of dates written without one; days and weekdays are counted in it.",
)
@click.option("--service", help="The service's name when the spreadsheet has no service column.")
@click.option(
    "--service-separator",
    default=";,/+\\n",
    show_default=True,
    help="Characters that split a cell listing several services (a train); \\n is a new line.",
)
@click.option(
    "--service-path",
    "service_paths",
    multiple=True,
    metavar="NAME=GLOB",
    help="The paths of a service in a monorepo (cart=src/cart/*); repeat. Default: the"
    " services/<name>/, apps/<name>/, packages/<name>/ and components/<name>/ layouts.",
)
@click.option("--since", help="Start of the period (a date, or date and time), inclusive.")
@click.option("--until", help="End of the period, inclusive of that day when no time is given.")
@click.option(
    "--lookback",
    default="30d",
    show_default=True,
    help="The first tag of a series brings the commits made this long before it.",
)
@click.option(
    "--incident-window",
    default="7d",
    show_default=True,
    help="An incident naming no version is linked to a deployment this long before it at most;"
    " 0 links none by time.",
)
@click.option(
    "--hotfix-within",
    default="3d",
    show_default=True,
    help="A patch release this soon after a release is a hotfix.",
)
@STATISTIC_OPTION
@FREQUENCY_UNIT_OPTION
@click.option(
    "--count",
    "frequency_count",
    type=click.Choice(["deployments", "days"]),
    default="deployments",
    show_default=True,
    help="Deployment frequency counts deployments, or days with a deployment.",
)
@click.option(
    "--restore-from",
    type=click.Choice(["incident", "deployment"]),
    help="Time to restore from incidents (default with --incidents) or failed deployments.",
)
@BANDS_OPTION
@MIN_EVENTS_OPTION
@FORMAT_OPTION
def assess(
    git: Path | None,
    tag_pattern: str,
    releases: Path | None,
    mapping: tuple[str, ...],
    sheet: str | None,
    incidents: Path | None,
    out: Path | None,
    json_path: Path | None,
    timezone_name: str,
    service: str | None,
    service_separator: str,
    service_paths: tuple[str, ...],
    since: str | None,
    until: str | None,
    lookback: str,
    incident_window: str,
    hotfix_within: str,
    statistic: str,
    frequency_unit: str,
    frequency_count: str,
    restore_from: str | None,
    bands: str,
    min_events: int,
    fmt: str,
) -> None:
    """Diagnose manual release coordination from a spreadsheet, git and incidents.

    Needs no server. Writes a self-contained HTML report (--out) and JSON
    (--json), and prints a summary. Example:

    \b
        interlock assess --git . --tag-pattern 'v*' --releases releases.xlsx \\
            --map "Released by=run_by" --out report.html
    """
    from interlock.metrics.assess import AssessOptions, write_html, write_json
    from interlock.metrics.assess import assess as run_assessment
    from interlock.metrics.definitions import Definitions

    within = _duration("--hotfix-within", hotfix_within)
    zone = _zone(timezone_name)
    separators = service_separator.replace("\\n", "\n").replace("\\t", "\t")
    if not separators:
        raise InvalidInput("--service-separator: give at least one character")
    definitions = Definitions.parse(
        statistic=statistic,
        frequency_unit=frequency_unit,
        frequency_count=frequency_count,
        restore_from=restore_from or ("incident" if incidents else "deployment"),
        bands=bands,
        min_events=min_events,
    )
    options = AssessOptions(
        git=git,
        tag_pattern=tag_pattern,
        releases=releases,
        mapping=mapping,
        sheet=sheet,
        incidents=incidents,
        zone=zone,
        hotfix_within=within,
        definitions=definitions,
        service=service,
        service_separators=separators,
        service_paths=service_paths,
        since=_moment("--since", since, zone, end_of_day=False),
        until=_moment("--until", until, zone, end_of_day=True),
        lookback=timedelta(seconds=_duration("--lookback", lookback)),
        incident_window=timedelta(seconds=_duration("--incident-window", incident_window)),
    )
    result = run_assessment(options)
    written: list[Path] = []
    to_stdout = json_path is not None and str(json_path) == "-"
    if out is not None:
        write_html(result, out, json_file=None if to_stdout or json_path is None else json_path)
        written.append(out)
    if json_path is not None and not to_stdout:
        write_json(result, json_path)
        written.append(json_path)
    if fmt == "json" or to_stdout:
        emit_json(result.as_dict())
        for path in written:
            click.echo(f"wrote {path}", err=True)
        return
    for warning in result.warnings():  # before the tables, where they are seen
        click.echo(f"warning: {warning}", err=True)
    sys.stderr.flush()
    _summary(result)
    for path in written:
        click.echo(f"wrote {path}")
    if not written:
        click.echo("(no files written: add --out report.html and/or --json assessment.json)")


def _summary(result: Any) -> None:
    services = len(result.services)
    deployments, rows = result.inputs["release_count"], result.inputs["release_rows"]
    counted = f"{rows} releases" + (f" ({deployments} deployments)" if rows != deployments else "")
    click.echo(f"Assessed {counted} of {services} service(s), {result.period or 'no period'}")
    from interlock.metrics.assess.words import human_value

    table(
        [{**m.as_dict(), "display": human_value(m)} for m in result.metrics],
        [("title", "Metric"), ("display", "Value"), ("band_note", "Band"), ("n", "n")],
        title="Delivery metrics",
        styles={"band_note": _plain, "title": _plain},
    )
    table(
        [
            {"title": s.title, "seen": _SEEN[s.observed], "evidence": s.evidence}
            for s in result.signs
        ],
        [("title", "Warning sign"), ("seen", "Seen"), ("evidence", "Evidence")],
        title="Warning signs of manual coordination",
        styles={"evidence": _plain, "title": _plain},
    )
    if result.links:
        click.echo(f"Incidents linked to deployments ({len(result.links)}):")
        for link in result.links[:20]:
            click.echo(f"  {link}")
        if len(result.links) > 20:
            click.echo(f"  ... {len(result.links) - 20} more in the report")
    click.echo("Steps to take first:")
    for number, step in enumerate(result.steps, 1):
        click.echo(f"  {number}. {step.title}")
    sys.stdout.flush()

"""The release spreadsheet and the incident list, read row by row.

A row that cannot be used is reported with its row number and left out; the
other rows are still used. A row with a usable date but a bad secondary cell
(a planned date, an outcome) is kept without that cell, and reported too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

from interlock.errors import InvalidInput
from interlock.metrics.assess.dates import When, parse_when, with_time
from interlock.metrics.assess.headers import (
    FIELD_WORDS,
    INCIDENT_FIELDS,
    INCIDENT_KEYWORDS,
    RELEASE_FIELDS,
    RELEASE_KEYWORDS,
    column_zone,
)
from interlock.metrics.assess.tables import (
    Table,
    find_columns,
    parse_mapping,
    read_table,
    unused_columns,
)
from interlock.metrics.events import Outcome

DEFAULT_SERVICE_SEPARATORS = ";,/+\n"
"""Characters that split a cell listing several services: ``billing; ledger; checkout``."""

_SEPARATOR_LIKE = set(";,/+|&\n\\")

_OUTCOMES = {
    "": Outcome.SUCCEEDED,
    "ok": Outcome.SUCCEEDED,
    "success": Outcome.SUCCEEDED,
    "successful": Outcome.SUCCEEDED,
    "succeeded": Outcome.SUCCEEDED,
    "done": Outcome.SUCCEEDED,
    "deployed": Outcome.SUCCEEDED,
    "released": Outcome.SUCCEEDED,
    "live": Outcome.SUCCEEDED,
    "failed": Outcome.FAILED,
    "fail": Outcome.FAILED,
    "failure": Outcome.FAILED,
    "error": Outcome.FAILED,
    "rolled back": Outcome.ROLLED_BACK,
    "rollback": Outcome.ROLLED_BACK,
    "reverted": Outcome.ROLLED_BACK,
    "cancelled": Outcome.CANCELLED,
    "canceled": Outcome.CANCELLED,
    "aborted": Outcome.CANCELLED,
    "skipped": Outcome.CANCELLED,
    "postponed": Outcome.CANCELLED,
}


@dataclass(frozen=True)
class RowProblem:
    """A cell that could not be read: where, what, and whether the row was still used."""

    file: str
    row: int
    message: str
    row_used: bool = False

    def __str__(self) -> str:
        used = "row kept without that cell" if self.row_used else "row left out"
        return f"{self.file}, row {self.row}: {self.message} ({used})"


@dataclass(frozen=True)
class ReleaseRow:
    """One row of the release sheet: one release, of one service or of several (a train)."""

    row: int
    when: When
    services: tuple[str, ...]
    version: str | None
    run_by: str | None
    approver: str | None
    planned: When | None
    notes: str
    outcome: Outcome
    labels: str = ""


@dataclass(frozen=True)
class IncidentRow:
    row: int
    id: str
    opened: When
    resolved: When | None
    service: str | None
    version: str | None
    summary: str = ""


@dataclass(frozen=True)
class Sheet:
    """What a spreadsheet gave: usable rows, problems, and the column behind each field."""

    path: Path
    columns: dict[str, str]  # field -> header text
    releases: list[ReleaseRow] = field(default_factory=list)
    incidents: list[IncidentRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)  # headers of columns no field was read from


def text(cell: object) -> str:
    """A cell as text: ``1.0`` from a number cell becomes ``1``, blanks become ``""``."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _cell(cells: tuple[object, ...], index: int | None) -> object:
    return cells[index] if index is not None and index < len(cells) else None


def read_releases(
    path: Path,
    *,
    zone: tzinfo,
    mapping: Iterable[str] = (),
    sheet: str | None = None,
    default_service: str = "app",
    separators: str = DEFAULT_SERVICE_SEPARATORS,
) -> Sheet:
    """Release rows of a spreadsheet; ``mapping`` holds ``--map`` pairs.

    A service cell listing several services (split at any of ``separators``)
    makes one row of a release train. A name still holding a separator-like
    character after the split is reported, with the rows.
    """
    table = read_table(path, sheet)
    columns = find_columns(
        table, RELEASE_FIELDS, parse_mapping(mapping, FIELD_WORDS), ["date"], RELEASE_KEYWORDS
    )
    result = Sheet(
        path,
        {f: table.header[i] for f, i in columns.items()},
        unused=unused_columns(table, columns),
    )
    odd: dict[str, list[int]] = {}
    for number, cells in table.rows:
        row = _release_row(
            table,
            columns,
            number,
            cells,
            _zones(table, columns, zone),
            (default_service, separators),
            result.problems,
        )
        if row is not None:
            result.releases.append(row)
            for name in row.services:
                if _SEPARATOR_LIKE & set(name):
                    odd.setdefault(name, []).append(number)
    for name, rows in odd.items():
        shown = ", ".join(str(r) for r in rows[:10]) + (" and more" if len(rows) > 10 else "")
        result.problems.append(
            RowProblem(
                path.name,
                rows[0],
                f"service {name!r} (rows {shown}) holds a separator-like character; if the"
                " cell lists several services, name the separator with --service-separator",
                row_used=True,
            )
        )
    return result


def split_services(cell: str, separators: str) -> tuple[str, ...]:
    """``"billing; ledger"`` -> ``("billing", "ledger")``; each name once, in order."""
    names = [cell]
    for sep in separators:
        names = [part for name in names for part in name.split(sep)]
    return tuple(dict.fromkeys(n.strip() for n in names if n.strip()))


def _release_row(
    table: Table,
    columns: Mapping[str, int],
    number: int,
    cells: tuple[object, ...],
    zones: Mapping[str, tzinfo],  # per field: the zone its header names, else the assumed one
    service_rule: tuple[str, str],  # (the default service, the separators)
    problems: list[RowProblem],
) -> ReleaseRow | None:
    def get(name: str) -> object:
        return _cell(cells, columns.get(name))

    name = table.path.name
    try:
        when = parse_when(get("date"), zones["date"])
    except ValueError as exc:
        problems.append(RowProblem(name, number, f"{_header(table, columns, 'date')}: {exc}"))
        return None
    if when is None:
        problems.append(RowProblem(name, number, f"{_header(table, columns, 'date')} is empty"))
        return None
    try:  # a separate time column ("Date", "Time")
        when = with_time(when, get("time"))
    except ValueError as exc:
        where = _header(table, columns, "time")
        problems.append(RowProblem(name, number, f"{where}: {exc}", row_used=True))
    planned: When | None = None
    try:
        planned = parse_when(get("planned_date"), zones["planned_date"])
    except ValueError as exc:
        where = _header(table, columns, "planned_date")
        problems.append(RowProblem(name, number, f"{where}: {exc}", row_used=True))
    outcome_text = " ".join(text(get("outcome")).lower().replace("-", " ").split())
    outcome = _OUTCOMES.get(outcome_text)
    if outcome is None:
        allowed = "succeeded, failed, rolled back, cancelled"
        problems.append(
            RowProblem(
                name,
                number,
                f"{_header(table, columns, 'outcome')} {outcome_text!r} is not one of"
                f" {allowed}; read as succeeded",
                row_used=True,
            )
        )
        outcome = Outcome.SUCCEEDED
    return ReleaseRow(
        row=number,
        when=when,
        services=split_services(text(get("service")), service_rule[1]) or (service_rule[0],),
        version=text(get("version")) or None,
        run_by=text(get("run_by")) or None,
        approver=text(get("approver")) or None,
        planned=planned,
        notes=text(get("notes")),
        outcome=outcome,
        labels=text(get("labels")),
    )


_DATE_FIELDS = frozenset({"date", "planned_date", "opened", "resolved"})


def _zones(table: Table, columns: Mapping[str, int], zone: tzinfo) -> dict[str, tzinfo]:
    """Per field, the zone its dates without one are read in."""
    found: dict[str, tzinfo] = defaultdict(lambda: zone)
    for name, index in columns.items():
        if name not in _DATE_FIELDS:
            continue
        try:
            named = column_zone(table.header[index])
        except ValueError as exc:
            raise InvalidInput(f"{table.path}: {exc}") from None
        if named is not None:
            found[name] = named
    return found


def _named(table: Table, columns: Mapping[str, int]) -> dict[str, str]:
    return {f: table.header[i] for f, i in columns.items()}


def _header(table: Table, columns: Mapping[str, int], field: str) -> str:
    index = columns.get(field)
    return f"column {table.header[index]!r}" if index is not None else field


def read_incidents(path: Path, *, zone: tzinfo, sheet: str | None = None) -> Sheet:
    """Incident rows: opened (required), resolved, service, version that caused it, id."""
    table = read_table(path, sheet)
    columns = find_columns(table, INCIDENT_FIELDS, {}, ["opened"], INCIDENT_KEYWORDS)
    result = Sheet(
        path,
        {f: table.header[i] for f, i in columns.items()},
        unused=unused_columns(table, columns),
    )
    name = path.name
    zones = _zones(table, columns, zone)
    for number, cells in table.rows:

        def get(field: str, cells: tuple[object, ...] = cells) -> object:
            return _cell(cells, columns.get(field))

        try:
            opened = parse_when(get("opened"), zones["opened"])
        except ValueError as exc:
            where = _header(table, columns, "opened")
            result.problems.append(RowProblem(name, number, f"{where}: {exc}"))
            continue
        if opened is None:
            where = _header(table, columns, "opened")
            result.problems.append(RowProblem(name, number, f"{where} is empty"))
            continue
        try:
            resolved = parse_when(get("resolved"), zones["resolved"])
        except ValueError as exc:
            where = _header(table, columns, "resolved")
            result.problems.append(RowProblem(name, number, f"{where}: {exc}", row_used=True))
            resolved = None
        result.incidents.append(
            IncidentRow(
                row=number,
                id=text(get("id")) or f"incident on row {number}",
                opened=opened,
                resolved=resolved,
                service=text(get("service")) or None,
                version=text(get("version")) or None,
                summary=text(get("summary")),
            )
        )
    return result

"""Reading a spreadsheet (CSV or XLSX) into numbered rows, and finding its columns.

Row numbers are the ones a person sees in a spreadsheet program: the header
is usually row 1 and the first release row 2. Columns are found by their
header, case and punctuation ignored, from a list of usual names per field; a
``--map "Header text=field"`` names a column the usual names do not cover.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from interlock.errors import InvalidInput

MAX_BYTES = 50_000_000  # a release sheet is far smaller; this guards memory


@dataclass(frozen=True)
class Table:
    path: Path
    header: tuple[str, ...]
    header_row: int
    rows: list[tuple[int, tuple[object, ...]]]  # (row number, cells), blank rows left out


def normalize(name: object) -> str:
    """``"Released By:"`` -> ``"released by"``: how headers and field names are compared."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", str(name).lower()).split())


def read_table(path: Path, sheet: str | None = None) -> Table:
    """The header and the non-blank rows of a ``.csv``, ``.xlsx`` or ``.xlsm`` file."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if path.stat().st_size > MAX_BYTES:
        raise InvalidInput(
            f"{path}: larger than {MAX_BYTES // 1_000_000} MB; is it the right file?"
        )
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        raw = _xlsx_rows(path, sheet)
    elif suffix in (".csv", ".txt", ".tsv"):
        if sheet:
            raise InvalidInput(f"{path}: --sheet applies to .xlsx files only")
        raw = _csv_rows(path)
    elif suffix == ".xls":
        raise InvalidInput(f"{path}: the old .xls format is not read; save it as .xlsx or .csv")
    else:
        raise InvalidInput(f"{path}: expected a .csv or .xlsx file")
    numbered = [(number, cells) for number, cells in raw if any(_filled(c) for c in cells)]
    if not numbered:
        raise InvalidInput(f"{path}: the file is empty; expected a header row and release rows")
    # a title above the table ("Release log 2024") fills one cell; a header fills several
    first = next((i for i, (_, c) in enumerate(numbered[:10]) if _width(c) >= 2), 0)
    header_row, header_cells = numbered[first]
    header = tuple("" if cell is None else str(cell).strip() for cell in header_cells)
    return Table(path, header, header_row, numbered[first + 1 :])


def _width(cells: tuple[object, ...]) -> int:
    return sum(1 for cell in cells if _filled(cell))


def _filled(cell: object) -> bool:
    return cell is not None and str(cell).strip() != ""


def _csv_rows(path: Path) -> list[tuple[int, tuple[object, ...]]]:
    raw = path.read_bytes()
    try:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode Text"
            text = raw.decode("utf-16")
        else:
            text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{path}: not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8'"
        ) from None
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:8192], delimiters=",;\t"
        )
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    rows: list[tuple[int, tuple[object, ...]]] = []
    try:
        for cells in reader:
            # a quoted cell may span lines: count records, as a spreadsheet counts rows
            rows.append((len(rows) + 1, tuple(cells)))
    except csv.Error as exc:
        raise InvalidInput(f"{path}, row {len(rows) + 1}: not valid CSV ({exc})") from None
    return rows


def _xlsx_rows(path: Path, sheet: str | None) -> list[tuple[int, tuple[object, ...]]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: not a readable .xlsx workbook ({exc})") from None
    try:
        if sheet is None:
            worksheet = book.worksheets[0]
        elif sheet in book.sheetnames:
            worksheet = book[sheet]
        else:
            names = ", ".join(book.sheetnames)
            raise InvalidInput(f"{path}: no sheet named {sheet!r}; the sheets are: {names}")
        return [
            (number, tuple(cells))
            for number, cells in enumerate(worksheet.iter_rows(min_row=1, values_only=True), 1)
        ]
    finally:
        book.close()


def parse_mapping(pairs: Iterable[str], fields: Mapping[str, str]) -> dict[str, str]:
    """``["Release Date=date", ...]`` -> ``{"date": "Release Date"}``.

    ``fields`` maps every accepted field word (``who``, ``run_by``) to its field.
    """
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, word = pair.rpartition("=")
        if not sep or not column.strip() or not word.strip():
            raise InvalidInput(f"--map {pair!r}: write it as 'Column header=field'")
        field = fields.get(normalize(word).replace(" ", "_"))
        if field is None:
            allowed = ", ".join(sorted(set(fields.values())))
            raise InvalidInput(
                f"--map {pair!r}: unknown field {word.strip()!r}; use one of {allowed}"
            )
        mapping[field] = column.strip()
    return mapping


def header_keys(name: object) -> list[str]:
    """The forms a header is matched by: ``"Deployed At (UTC)"`` -> ``deployed at utc``,
    ``deployed at``; ``"Service(s)"`` -> ``service s``, ``service``; plurals as singulars."""
    full = normalize(name)
    bare = normalize(re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", str(name)))
    keys = [full, bare]
    for key in (full, bare):
        words = key.split()
        if words and len(words[-1]) > 3 and words[-1].endswith("s"):
            keys.append(" ".join([*words[:-1], words[-1][:-1]]))
    return [k for k in dict.fromkeys(keys) if k]


def find_columns(
    table: Table,
    aliases: Mapping[str, tuple[str, ...]],
    mapping: Mapping[str, str],
    required: Iterable[str],
    keywords: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, int]:
    """Which column holds each field: ``{"date": 0, "service": 2}``.

    A ``mapping`` entry wins over the usual names; then a header equal to a
    usual name (parenthesised notes like ``(UTC)`` and plurals aside); then,
    for the columns still free, a header holding one of the field's
    ``keywords`` (``Release Captain`` holds ``captain``), fields in the order
    given. A mapped header that is not in the file, or a required field with
    no column, raises :class:`InvalidInput` naming ``--map``.
    """
    positions: dict[str, int] = {}
    for index, name in enumerate(table.header):
        for key in header_keys(name):
            positions.setdefault(key, index)
    found: dict[str, int] = {}
    for field, column in mapping.items():
        spot = next((positions[k] for k in header_keys(column) if k in positions), None)
        if spot is None:
            headers = ", ".join(repr(h) for h in table.header if h)
            raise InvalidInput(
                f"{table.path}: --map names column {column!r}, which is not in the header"
                f" (row {table.header_row}): {headers}"
            )
        found[field] = spot
    taken = set(found.values())
    for field, names in aliases.items():
        if field in found:
            continue
        for name in (field, *names):
            spot = positions.get(normalize(name))
            if spot is not None and spot not in taken:
                found[field] = spot
                taken.add(spot)
                break
    for field, words in (keywords or {}).items():
        if field in found:
            continue
        for index, name in enumerate(table.header):
            tokens = normalize(name).split()
            if index not in taken and any(t.startswith(w) for w in words for t in tokens):
                found[field] = index
                taken.add(index)
                break
    missing = [field for field in required if field not in found]
    if missing:
        headers = ", ".join(repr(h) for h in table.header if h)
        raise InvalidInput(
            f"{table.path}: no column for {', '.join(missing)} in the header (row"
            f" {table.header_row}): {headers}; name it with --map 'Header={missing[0]}'"
        )
    return found


def unused_columns(table: Table, found: Mapping[str, int]) -> list[str]:
    """Headers of the columns no field was found in, in file order (blank headers aside)."""
    used = set(found.values())
    return [h for i, h in enumerate(table.header) if i not in used and h.strip()]

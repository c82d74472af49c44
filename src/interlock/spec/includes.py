"""``include:``: a config split over several files, each owned by a team.

The main file lists paths or globs relative to itself (``services/*.yaml``,
``teams/*/interlock.yaml``). Each included file holds the same top-level keys
as the main file, but only those a team owns: services, templates, runbooks,
teams, roles and permissions. A name defined in two places is an error naming
both; every position keeps the file it stands in.

What a server stores is one text, the *bundle*: the main file, then each
included file after a marker line naming it. Parsing a bundle reads the files
from it, never from the disk, so every server on the database (and a restart)
sees exactly the config that was validated, and the bundle's hash changes when
any of its files does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interlock.spec.yaml_tree import MAX_CONFIG_BYTES, Loc, Position, Positions

INCLUDABLE = ("services", "templates", "runbooks", "teams", "roles", "permissions")
MAX_INCLUDED_FILES = 1000
MAX_BUNDLE_BYTES = 16 * MAX_CONFIG_BYTES

_MARKER = "#--- interlock include: {name} ---"
_MARKER_LINE = re.compile(r"^#--- interlock include: (.+) ---$", re.MULTILINE)
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Source:
    """One included file: its name as written in the bundle (relative to the main file)."""

    name: str
    path: Path
    text: str


class IncludeProblem(Exception):
    """An include that cannot be read: the message, at ``where`` of the main file."""

    def __init__(self, where: Position | None, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.where, self.loc, self.message = where, loc, message


def bundle(main: str, sources: list[Source]) -> str:
    """The text stored for a config: the main file, then each included file after its marker."""
    if not sources:
        return main
    parts = [main if main.endswith("\n") else main + "\n"]
    for source in sources:
        text = source.text if source.text.endswith("\n") else source.text + "\n"
        parts.append(_MARKER.format(name=source.name) + "\n" + text)
    return "".join(parts)


def split_bundle(text: str, base_dir: Path) -> tuple[str, list[Source] | None]:
    """The main file's text and the bundled files (``None``: a plain file, read includes
    from the disk)."""
    marks = list(_MARKER_LINE.finditer(text))
    if not marks:
        return text, None
    main = text[: marks[0].start()]
    sources = []
    for n, mark in enumerate(marks):
        end = marks[n + 1].start() if n + 1 < len(marks) else len(text)
        body = text[mark.end() + 1 : end]
        sources.append(Source(mark.group(1), base_dir / mark.group(1), body))
    return main, sources


def read_includes(
    patterns: list[Any], base_dir: Path, main: Path, positions: Positions
) -> list[Source]:
    """The files ``include:`` names, in the order written (each glob sorted), each once."""
    seen: set[Path] = {main.resolve()}
    found: list[Source] = []
    total = 0
    for i, pattern in enumerate(patterns):
        loc: Loc = ("include", i)
        where = positions.of(loc)
        if not isinstance(pattern, str) or not pattern.strip():
            continue  # the model says what is wrong with it
        if Path(pattern).is_absolute():
            raise IncludeProblem(
                where, loc, f"{pattern!r} is absolute: write it relative to this file"
            )
        if _GLOB.search(pattern):
            matches = sorted(p for p in base_dir.glob(pattern) if p.is_file())
        else:
            matches = [base_dir / pattern] if (base_dir / pattern).is_file() else []
        if not matches:
            raise IncludeProblem(where, loc, f"{pattern!r} matches no file under {base_dir}")
        for path in matches:
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            if len(found) >= MAX_INCLUDED_FILES:
                raise IncludeProblem(
                    where, loc, f"more than {MAX_INCLUDED_FILES} files are included"
                )
            text = _read(path, where, loc)
            total += len(text)
            if total > MAX_BUNDLE_BYTES:
                raise IncludeProblem(
                    where,
                    loc,
                    f"the included files hold more than {MAX_BUNDLE_BYTES // 1024 // 1024} MiB",
                )
            name = path.relative_to(base_dir).as_posix()
            if _MARKER_LINE.search(text):
                raise IncludeProblem(
                    where,
                    loc,
                    f"{name} holds a line '#--- interlock include: …', which is "
                    "reserved; change that comment",
                )
            found.append(Source(name, path, text))
    if patterns and not found:
        raise IncludeProblem(
            positions.of(("include",)), ("include",), "include: names no file but this one"
        )
    return found


def _read(path: Path, where: Position | None, loc: Loc) -> str:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise IncludeProblem(where, loc, f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise IncludeProblem(
            where, loc, f"{path} is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise IncludeProblem(where, loc, f"{path} is not UTF-8 text") from None


def _where(position: Position, path: Path) -> str:
    return f"{position.file or path}:{position.line}:{position.column}"


def merge(
    data: dict[str, Any],
    positions: Positions,
    main: Path,
    included: dict[str, Any],
    own: Positions,
    source: Path,
) -> Iterator[tuple[Position, Loc, str]]:
    """Add an included file's sections to ``data``; yield each problem (a name defined
    twice, a key an included file may not hold). Its positions join ``positions``."""
    for key, value in included.items():
        at = _moved(own.keys.get((key,)) or Position(1, 1), source)
        if key not in INCLUDABLE:
            yield (
                at,
                (key,),
                f"an included file may hold only {', '.join(INCLUDABLE)}; {key!r} belongs in "
                f"the main file {main}",
            )
            continue
        if value is None:
            continue  # `services:` with nothing under it (yet)
        if key == "permissions":
            if not isinstance(value, list):
                yield at, (key,), "permissions is a list of rules"
                continue
            rules = data.setdefault(key, [])
            if not isinstance(rules, list):
                continue
            offset = len(rules)
            rules.extend(value)
            _copy(own, positions, key, source, _shifted(offset))
            continue
        if not isinstance(value, dict):
            yield at, (key,), f"{key} is a mapping of names"
            continue
        section = data.setdefault(key, {})
        if not isinstance(section, dict):
            continue
        accepted: set[Any] = set()
        for name, item in value.items():
            here = (key, name)
            if name in section:
                first = positions.keys.get(here) or positions.of(here) or Position(1, 1)
                yield (
                    _moved(own.keys.get(here) or at, source),
                    here,
                    f"{key[:-1] if key.endswith('s') else key} {name!r} is defined twice: "
                    f"here and at {_where(first, main)}",
                )
                continue
            section[name] = item
            accepted.add(name)
        _copy(own, positions, key, source, _kept(accepted))


def _shifted(offset: int) -> Callable[[Loc], Loc | None]:
    """Where a permission rule of an included file stands in the merged list."""

    def relocate(loc: Loc) -> Loc | None:
        index = loc[1]
        return (loc[0], index + offset, *loc[2:]) if isinstance(index, int) else None

    return relocate


def _kept(accepted: set[Any]) -> Callable[[Loc], Loc | None]:
    """The positions of the names an included file adds (not those it defines twice)."""

    def relocate(loc: Loc) -> Loc | None:
        return loc if loc[1] in accepted else None

    return relocate


def _moved(position: Position, source: Path) -> Position:
    return Position(position.line, position.column, source)


def _copy(
    own: Positions,
    positions: Positions,
    key: str,
    source: Path,
    relocate: Callable[[Loc], Loc | None],
) -> None:
    """Copy the positions below ``key`` from an included file's ``own`` into ``positions``,
    each at the location ``relocate`` gives (``None``: not copied)."""
    for table_from, table_to in ((own.values, positions.values), (own.keys, positions.keys)):
        for loc, where in table_from.items():
            if len(loc) < 2 or loc[0] != key:
                continue
            target = relocate(loc)
            if target is not None:
                table_to[target] = Position(where.line, where.column, source)

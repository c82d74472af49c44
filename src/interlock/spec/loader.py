"""Load ``interlock.yaml`` into a :class:`Config`, with errors that point at file:line:column.

YAML is composed into its node tree first so every key and value keeps its
position; pydantic then validates the plain data and each of its errors is
mapped back to the position of the key or value it names. Typos get the
closest valid key as a suggestion.
"""

from __future__ import annotations

import difflib
import hashlib
import pickle
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from interlock.errors import ConfigError
from interlock.spec.common import NAME_PATTERN
from interlock.spec.composition import expand_templates
from interlock.spec.includes import (
    IncludeProblem,
    Source,
    bundle,
    merge,
    read_includes,
    split_bundle,
)
from interlock.spec.model import Config
from interlock.spec.yaml_tree import (
    MAX_CONFIG_BYTES,
    Builder,
    Loc,
    Position,
    Positions,
    Refused,
    compose,
)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config and where it came from."""

    config: Config
    text: str
    hash: str  # sha256 of the file's bytes, hex
    path: Path
    base_dir: Path
    files: tuple[Path, ...] = ()  # the included files, in order


def _issue(
    path: Path, where: Position | None, loc: Loc, message: str, **extra: Any
) -> dict[str, Any]:
    line, column = (where.line, where.column) if where else (1, 1)
    return {
        "file": str(where.file if where and where.file else path),
        "line": line,
        "column": column,
        "field": format_loc(loc),
        "message": message,
        **extra,
    }


def format_loc(loc: Loc) -> str:
    """``services.api.deploy[0].timeout`` for ``('services', 'api', 'deploy', 0, 'timeout')``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    return [annotation]


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (for key suggestions)."""
    current: list[Any] = [root]
    for part in loc:
        following: list[Any] = []
        for candidate in current:
            origin = typing.get_origin(candidate)
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                for name, field in candidate.model_fields.items():
                    if part in (name, field.alias):
                        following.extend(_unwrap(field.annotation))
            elif origin is list and isinstance(part, int):
                following.extend(_unwrap(typing.get_args(candidate)[0]))
            elif origin is dict and isinstance(part, str):
                following.extend(_unwrap(typing.get_args(candidate)[1]))
        current = following
    for candidate in current:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _clean_loc(loc: Loc, data: Any) -> tuple[Loc, bool]:
    """Drop the parts pydantic adds for union members (``'int'``, ``'list[int]'``).

    True with it when the error is about the last key itself (pydantic ends the
    location with ``'[key]'``), not its value; a key written ``[key]`` is a key.
    """
    cleaned: list[str | int] = []
    node = data
    for n, part in enumerate(loc):
        if part == "[key]" and n == len(loc) - 1 and not (isinstance(node, dict) and part in node):
            return tuple(cleaned), True
        if isinstance(node, dict) and part in node:
            cleaned.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            cleaned.append(part)
            node = node[part]
        elif isinstance(node, dict) and len(cleaned) == len(loc) - 1:
            cleaned.append(part)  # a missing or unknown key at the end
        else:
            # a union member's name or a key that is not in the data
            if isinstance(node, dict | list):
                continue
            break
    return tuple(cleaned), False


def _message(error: dict[str, Any], loc: Loc, root: type[BaseModel]) -> tuple[str, Any]:
    kind = error["type"]
    msg = str(error["msg"])
    if kind == "extra_forbidden":
        key = loc[-1]
        model = _model_at(root, loc[:-1])
        allowed = _field_names(model) if model else []
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if allowed and not close:
            hint = f"; allowed keys: {', '.join(allowed)}"
        return f"unknown key {key!r}{hint}", (close[0] if close else None)
    if kind == "missing":
        return f"missing required key {loc[-1]!r}", None
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "string_pattern_mismatch" and "[key]" in loc:
        msg = "names must be lower-case letters, digits, '.', '_' or '-'"
    elif kind == "string_pattern_mismatch":
        lower = (error.get("ctx") or {}).get("pattern") == NAME_PATTERN
        msg = (
            f"must be {'lower-case ' if lower else ''}letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    got = error.get("input")
    if kind not in ("missing",) and not isinstance(got, dict | list) and got is not None:
        msg += f" (got {got!r})"
    return msg, None


def _refused(path: Path, where: Position | None, loc: Loc, message: str) -> ConfigError:
    issue = _issue(path, where, loc, message)
    return ConfigError(_summary([issue]), [issue])


def parse_config(text: str, path: Path) -> Config:
    """Validate ``text``; raise :class:`ConfigError` listing every problem with its position.

    ``text`` is a file, whose ``include:`` files are read from the disk, or a stored
    bundle (:mod:`interlock.spec.includes`), which holds them."""
    return parse_sources(text, path)[0]


def _build(text: str, path: Path) -> tuple[Builder, Any]:
    """The plain data of one file and its builder (positions, duplicate keys)."""
    builder = Builder(path)
    try:
        root = compose(text)
        data = None if root is None else builder.build(root, ())
    except Refused as refused:
        raise _refused(path, refused.where, refused.loc, refused.message) from None
    return builder, data


def parse_sources(text: str, path: Path) -> tuple[Config, list[Source]]:
    """Like :func:`parse_config`, and the included files it read.

    The config is made again from a pickle of it once everything its parse made is
    gone: the config a server keeps for as long as it runs then fills the memory the
    parse freed instead of being spread over it (the YAML nodes, the positions, the
    plain data came between its pieces). With 10,000 services the parsed config held
    56 MB of the process's memory, 27 MB made again (its objects are 22 MB).
    """
    parsed = _parse_sources(text, path)
    try:
        frozen = pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):  # a value that does not pickle
        return parsed
    del parsed
    again: tuple[Config, list[Source]] = pickle.loads(frozen)  # noqa: S301 - made just above
    return again


def _parse_sources(text: str, path: Path) -> tuple[Config, list[Source]]:
    main_text, bundled = split_bundle(text, path.parent)
    builder, data = _build(main_text, path)
    if data is None:
        raise _refused(path, Position(1, 1), (), "the file is empty; run `interlock init`")
    if builder.errors:
        issues = [_issue(path, where, loc, message) for where, loc, message in builder.errors]
        raise ConfigError(_summary(issues), issues)
    if not isinstance(data, dict):
        raise _refused(
            path,
            Position(1, 1),
            (),
            "the top level must be a mapping of keys (version:, environments:, services:), "
            f"not {_kind(data)}",
        )
    positions = builder.positions
    sources: list[Source] = []
    if bundled is not None or data.get("include"):
        sources = _include(data, positions, path, bundled)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        issues = []
        seen: set[str] = set()
        for error in exc.errors():
            loc, about_key = _clean_loc(tuple(error["loc"]), data)
            if about_key:
                where = positions.of(loc, prefer_key=True)
            else:
                prefer_key = error["type"] in ("extra_forbidden",)
                where = positions.of(loc, prefer_key=prefer_key)
            message, suggestion = _message(dict(error), loc, Config)
            if format_loc(loc) in seen:
                continue  # several union members failing on the same value
            seen.add(format_loc(loc))
            extra = {"suggestion": suggestion} if suggestion else {}
            issues.append(_issue(path, where, loc, message, **extra))
        raise ConfigError(_summary(issues), issues) from None
    from interlock.spec.checks import semantic_issues

    problems = semantic_issues(config, path.parent if str(path) else None)
    if problems:
        issues = [_issue(path, positions.of(loc), loc, message) for loc, message in problems]
        raise ConfigError(_summary(issues), issues)
    return expand_templates(config), sources


def _include(
    data: dict[str, Any], positions: Positions, path: Path, bundled: list[Source] | None
) -> list[Source]:
    """Read (or take from the bundle) the included files and merge them into ``data``."""
    patterns = data.get("include")
    if bundled is None:
        if not isinstance(patterns, list):
            return []  # the model says what is wrong with it
        try:
            bundled = read_includes(patterns, path.parent, path, positions)
        except IncludeProblem as problem:
            raise _refused(path, problem.where, problem.loc, problem.message) from None
    issues: list[dict[str, Any]] = []
    for source in bundled:
        builder, included = _build(source.text, source.path)
        for where, loc, message in builder.errors:
            issues.append(_issue(source.path, where, loc, message))
        if included is None:
            continue
        if not isinstance(included, dict):
            issues.append(
                _issue(source.path, Position(1, 1), (), "an included file is a mapping of keys")
            )
            continue
        for where, loc, message in merge(
            data, positions, path, included, builder.positions, source.path
        ):
            issues.append(_issue(path, where, loc, message))
    if issues:
        raise ConfigError(_summary(issues), issues)
    return bundled


def _kind(data: Any) -> str:
    if isinstance(data, list):
        return "a list"
    if data is None:
        return "null"
    return f"the {type(data).__name__} {str(data)[:40]!r}"


def _summary(issues: list[dict[str, Any]]) -> str:
    lines = [f"{i['file']}:{i['line']}:{i['column']}: {i['field']}: {i['message']}" for i in issues]
    count = len(issues)
    head = f"{count} problem{'s' if count != 1 else ''} in the configuration:"
    return "\n".join([head, *lines])


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate the config file at ``path`` (at most ``MAX_CONFIG_BYTES``)."""
    file = Path(path)
    try:
        with file.open("rb") as stream:
            raw = stream.read(MAX_CONFIG_BYTES + 1)  # /dev/zero or a huge file: not all of it
    except FileNotFoundError:
        issue = _issue(file, None, (), "file not found; run `interlock init` to write one")
        raise ConfigError(
            f"{file}: no such file; run `interlock init` to write one", [issue]
        ) from None
    except IsADirectoryError:
        raise _refused(
            file, None, (), "this is a directory: give the path of the config file in it"
        ) from None
    except OSError as exc:
        raise _refused(file, None, (), f"cannot read it: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise _refused(
            file,
            None,
            (),
            f"the file is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB, "
            "the most a config may be",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line_start = before.rfind(b"\n") + 1
        where = Position(
            before.count(b"\n") + 1, len(before[line_start:].decode("utf-8", "replace")) + 1
        )
        raise _refused(
            file,
            where,
            (),
            f"this is not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
        ) from None
    if split_bundle(text, file.parent)[1] is not None:
        raise _refused(
            file,
            None,
            (),
            "a line '#--- interlock include: …' is reserved (it separates the files of a "
            "stored config); change that comment",
        )
    config, sources = parse_sources(text, file)
    stored = bundle(text, sources)
    return LoadedConfig(
        config=config,
        text=stored,
        hash=hashlib.sha256(raw if not sources else stored.encode()).hexdigest(),
        path=file.resolve(),
        base_dir=file.resolve().parent,
        files=tuple(s.path for s in sources),
    )

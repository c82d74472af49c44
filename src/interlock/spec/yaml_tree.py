"""YAML text to plain data, remembering where each value stands, within bounds.

The file is composed into PyYAML's node tree, where an alias is the anchored
node itself: nothing is expanded yet. Building the data expands aliases, so
that is where the bounds hold: how deep values nest, how many values aliases
and ``<<`` merges may add (a "billion laughs" file adds billions from a few
lines), and an alias inside the value it refers to. A file outside them is one
:class:`~interlock.errors.ConfigError` issue with its file and line, found in
bounded time and memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.reader import Reader

Loc = tuple[str | int, ...]

MAX_CONFIG_BYTES = 1024 * 1024  # a config of ~30,000 lines; composing one takes seconds
MAX_DEPTH = 64  # interlock.yaml nests about 10 levels; free-form `with:` and bodies a few more
MAX_ALIAS_VALUES = 100_000  # values added by aliases and merges, beyond those written out
MAX_VALUES = 200_000  # in all: a 30,000-line config holds about 60,000

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"

try:  # the C composer is much faster on large files
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based
    file: Path | None = None  # an included file; None: the file being loaded


class Positions:
    """Where each value (and each mapping key) of the document stands."""

    def __init__(self) -> None:
        self.values: dict[Loc, Position] = {}
        self.keys: dict[Loc, Position] = {}

    def of(self, loc: Loc, prefer_key: bool = False) -> Position | None:
        """The position of ``loc``, or of its nearest ancestor that has one."""
        for end in range(len(loc), -1, -1):
            prefix = loc[:end]
            if prefer_key and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return None


class Refused(Exception):
    """The text cannot become data: one problem, at ``where`` (``loc`` is the field)."""

    def __init__(self, where: Position | None, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.loc = loc
        self.message = message


def position(mark: yaml.Mark) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def position_in(text: str, index: int) -> Position:
    """Line and column of the character at ``index`` of ``text``."""
    start = text.rfind("\n", 0, index) + 1
    return Position(text.count("\n", 0, index) + 1, index - start + 1)


def compose(text: str) -> yaml.Node | None:
    """The node tree of ``text``; :class:`Refused` says where it is not YAML."""
    bad = Reader.NON_PRINTABLE.search(text)
    if bad is not None:
        code = ord(bad.group())
        raise Refused(
            position_in(text, bad.start()),
            (),
            f"the character U+{code:04X} is not allowed in YAML (control characters other "
            "than tab and line breaks are refused); remove it",
        )
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = f"{exc.problem or 'invalid YAML'}" + (f" ({exc.context})" if exc.context else "")
        raise Refused(
            position(mark) if mark else None, (), f"this is not valid YAML: {problem}"
        ) from None
    except yaml.reader.ReaderError as exc:
        where = position_in(text, exc.position) if exc.position < len(text) else None
        raise Refused(where, (), f"this is not valid YAML: {exc.reason}") from None
    except RecursionError:  # pragma: no cover - only the pure-Python composer recurses
        raise Refused(None, (), f"values nest more than {MAX_DEPTH} levels deep") from None


class Builder:
    """Turns a composed YAML node tree into plain data, recording positions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.positions = Positions()
        self.errors: list[tuple[Position, Loc, str]] = []
        self._constructor = yaml.SafeLoader("")
        self._built: set[int] = set()  # nodes built once: building one again expands an alias
        self._open: set[int] = set()  # nodes being built: reaching one again is a cycle
        self._added = 0
        self._values = 0

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        """The plain data of ``node`` (at ``loc``); :class:`Refused` when out of bounds."""
        self.positions.values[loc] = position(node.start_mark)
        if len(loc) > MAX_DEPTH:
            raise Refused(self._where(loc), loc, f"values nest more than {MAX_DEPTH} levels deep")
        self._count(node, loc)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, loc)
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, loc + (i,)) for i, item in enumerate(node.value)]
            return self._mapping(node, loc)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.Node, loc: Loc) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node, merged in self._pairs(node, loc):
            key = self._scalar(key_node, loc)
            key = key if isinstance(key, str) else str(key)
            child = loc + (key,)
            if key in result:
                if not merged:
                    line = self.positions.keys[child].line
                    self.errors.append(
                        (
                            position(key_node.start_mark),
                            child,
                            f"duplicate key {key!r}: it is already set at line {line}",
                        )
                    )
                continue  # a key written out wins over a merged one; an earlier merge wins
            self.positions.keys[child] = position(key_node.start_mark)
            result[key] = self.build(value_node, child)
        return result

    def _pairs(self, node: yaml.Node, loc: Loc) -> list[tuple[yaml.Node, yaml.Node, bool]]:
        """The mapping's (key, value, merged) nodes: its own first, then ``<<`` merges in order."""
        own: list[tuple[yaml.Node, yaml.Node, bool]] = []
        merged: list[tuple[yaml.Node, yaml.Node, bool]] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.errors.append((position(key_node.start_mark), loc, "keys must be plain text"))
                continue
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node, False))
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise Refused(
                        position(value_node.start_mark),
                        loc,
                        "<< merges a mapping (an alias such as *defaults) or a list of them",
                    )
                if id(source) in self._open:
                    self._cycle(source, loc)
                self._count(source, loc)
                self._open.add(id(source))
                try:
                    merged.extend((k, v, True) for k, v, _ in self._pairs(source, loc))
                finally:
                    self._open.discard(id(source))
        return own + merged

    def _count(self, node: yaml.Node, loc: Loc) -> None:
        if id(node) in self._open:
            self._cycle(node, loc)
        self._values += 1
        if self._values > MAX_VALUES:
            raise Refused(self._where(loc), loc, f"the file holds more than {MAX_VALUES:,} values")
        if id(node) not in self._built:
            self._built.add(id(node))
            return
        self._added += 1 + (len(node.value) if isinstance(node, yaml.MappingNode) else 0)
        if self._added > MAX_ALIAS_VALUES:
            raise Refused(
                self._where(loc),
                loc,
                f"aliases and merges here add more than {MAX_ALIAS_VALUES:,} values "
                "(an alias bomb?); write the values out or use fewer aliases",
            )

    def _cycle(self, node: yaml.Node, loc: Loc) -> None:
        anchor = position(node.start_mark)
        raise Refused(
            self._where(loc),
            loc,
            f"a recursive alias: the value anchored at line {anchor.line}, column "
            f"{anchor.column} holds an alias to itself",
        )

    def _where(self, loc: Loc) -> Position | None:
        return self.positions.keys.get(loc) or self.positions.of(loc[:-1] if loc else loc)

    def _scalar(self, node: yaml.Node, loc: Loc) -> Any:
        if node.tag == _STR_TAG:
            return node.value  # what the constructor returns for text, without its cost
        try:
            value = self._constructor.construct_object(node)
            # PyYAML keeps every node it constructed (for aliases, which the builder
            # expands itself): a node and its two marks per true, 6 or 5m of the file,
            # and the loader is a cycle, so they lived until a collection (never, when
            # the server froze its start-up heap with them in it).
            self._constructor.constructed_objects.pop(node, None)
            return value
        except yaml.MarkedYAMLError as exc:
            reason = exc.problem or "it cannot be read"
        except (ValueError, OverflowError) as exc:
            reason = str(exc)
        except Exception:  # noqa: BLE001 - PyYAML's constructors fail in odd ways too
            reason = f"it is not a valid {node.tag.rsplit(':', 1)[-1]}"  # "!!timestamp x"
        shown = node.value if len(node.value) <= 60 else node.value[:57] + "..."
        raise Refused(position(node.start_mark), loc, f"cannot read {shown!r}: {reason}")

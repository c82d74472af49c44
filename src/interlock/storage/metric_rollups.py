"""Reading the delivery facts: whole days from the sums, partial days from the rows.

A period ``[since, until)`` is cut at UTC midnights: the whole days between
the first and the last midnight are read from the per-day sums
(``delivery_days`` and its siblings, a few rows per day), and the partial day
at each end from the narrow rows (``delivery_facts``, by ``finished_at``).
Both give the same columns, added up in Python. A sample of durations is an
:class:`IndexedSample`: its count and mean come from the sums, and a quantile
is one ``ORDER BY value LIMIT 2 OFFSET k`` that walks an index already in
value order, so no query sorts anything (from the largest value down, for a
rank in the upper half: a 90th percentile walks a tenth of the index).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    and_,
    case,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, Select

from interlock.storage import metric_days as metric_days_module
from interlock.storage.facts.delivery_sql import DAY
from interlock.storage.metric_scope import interpolated
from interlock.storage.schema import delivery_facts, metric_blocks, metric_days


@dataclass(frozen=True)
class Span:
    """A period cut at midnights: whole days ``[first_day, end_day)`` and the ends."""

    since: float
    until: float
    first_day: int
    end_day: int

    @classmethod
    def of(cls, since: float, until: float) -> Span:
        first_day = math.ceil(since / DAY)
        end_day = math.floor(until / DAY)
        if end_day <= first_day:  # no whole day: everything is an end
            return cls(since, until, 0, 0)
        return cls(since, until, first_day, end_day)

    @property
    def whole_days(self) -> bool:
        return self.end_day > self.first_day

    def ends(self) -> list[tuple[float, float]]:
        """The partial days, as ``[start, end)`` ranges of seconds (none may be empty)."""
        if not self.whole_days:
            return [(self.since, self.until)]
        found = []
        if self.since < self.first_day * DAY:
            found.append((self.since, float(self.first_day * DAY)))
        if self.end_day * DAY < self.until:
            found.append((float(self.end_day * DAY), self.until))
        return found

    def in_days(self, day: Any) -> ColumnElement[bool]:
        if not self.whole_days:
            return false()
        return and_(day >= self.first_day, day < self.end_day)

    def in_ends(self, at: Any) -> ColumnElement[bool]:
        ranges = self.ends()
        if not ranges:
            return false()
        return or_(*(and_(at >= start, at < end) for start, end in ranges))

    def contains(self, at: Any) -> ColumnElement[bool]:
        return and_(at >= self.since, at < self.until)


def add_rows(rows: Sequence[Any], key: Sequence[str], into: dict[Any, dict[str, float]]) -> None:
    """Add the numeric columns of ``rows`` into ``into``, per ``key`` columns."""
    for row in rows:
        mapping = row._mapping
        group = tuple(mapping[k] for k in key)
        found = into.setdefault(group, {})
        for name, value in mapping.items():
            if name in key:
                continue
            found[name] = found.get(name, 0) + (value or 0)


class IndexedSample:
    """A :class:`~interlock.metrics.stats.Sample` whose values an index keeps in order.

    ``values`` selects one column named ``v`` (raw seconds, never NULL) whose
    ``ORDER BY`` an index serves; ``n``, the clamped ``mean`` and how many
    values are negative (``skewed``) are given (from sums). With ``clamp`` a
    negative value counts as 0, so a quantile is ``max(0, raw quantile)``.
    """

    def __init__(
        self,
        conn: Connection,
        values: Select[Any],
        *,
        n: int,
        mean: float,
        skewed: int = 0,
        clamp: bool = True,
    ) -> None:
        self._conn = conn
        self._values = values
        self.n = n
        self.open = 0  # values still open (not in the sample), when the caller knows
        self._mean = mean
        self.skewed = skewed
        self._clamp = clamp
        self._ranks: dict[int, float] = {}
        self._buckets: tuple[tuple[float, ...], list[int]] | None = None
        self._counting: Callable[[], list[int]] | None = None

    def bucketed(self, bounds: tuple[float, ...], counts: Callable[[], list[int]]) -> None:
        """How many values each histogram bucket holds (bucket ``i``: at most
        ``bounds[i]`` and over the bound before, a negative value in bucket 0; the
        last: over them all), exactly, asked for at the first rank wanted: a rank is
        then walked to from the nearer end of its bucket, not of the index. Counts
        that do not add up to ``n`` are not used."""
        self._buckets = None
        self._counting = lambda: self._use(bounds, counts())

    def _use(self, bounds: tuple[float, ...], counts: list[int]) -> list[int]:
        if len(counts) == len(bounds) + 1 and sum(counts) == self.n:
            self._buckets = (bounds, counts)
        return counts

    def _walk_bucket(self, rank: int) -> bool:
        """Fetch ``rank`` (and a neighbour) walking from the nearer end of its bucket."""
        if self._counting is not None:
            counting, self._counting = self._counting, None
            counting()
        if self._buckets is None:
            return False
        bounds, counts = self._buckets
        column = self._values.selected_columns[0]
        below = 0
        for bucket, count in enumerate(counts):  # noqa: B007 (the bucket found)
            if rank < below + count:
                break
            below += count
        else:
            return False
        last = below + count - 1  # the bucket's highest rank
        if rank - below <= last - rank:  # up from the bound below it
            query = self._values
            if bucket > 0:
                query = query.where(column > bounds[bucket - 1])
            query = query.order_by(column).limit(2).offset(rank - below)
            for index, value in enumerate(self._conn.execute(query).scalars()):
                self._ranks[rank + index] = float(value)
        else:  # down from its own bound (this rank and the one below it)
            query = self._values
            if bucket < len(bounds):
                query = query.where(column <= bounds[bucket])
            start = last - rank
            query = query.order_by(column.desc()).limit(2).offset(start)
            for index, value in enumerate(self._conn.execute(query).scalars()):
                self._ranks[rank - index] = float(value)
        return rank in self._ranks

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"IndexedSample(n={self.n})"

    def mean(self) -> float:
        return self._mean

    def _at(self, rank: int) -> float:
        if rank not in self._ranks and not self._walk_bucket(rank):
            column = self._values.selected_columns[0]
            if rank > self.n // 2:  # nearer the top: walk the index down from the largest
                start = max(self.n - 2 - rank, 0)  # (descending) this rank's and the next's
                query = self._values.order_by(column.desc()).limit(2).offset(start)
                for index, value in enumerate(self._conn.execute(query).scalars()):
                    self._ranks[self.n - 1 - start - index] = float(value)
            else:
                query = self._values.order_by(column).limit(2).offset(rank)
                for index, value in enumerate(self._conn.execute(query).scalars()):
                    self._ranks[rank + index] = float(value)
        value = self._ranks[rank]
        return max(value, 0.0) if self._clamp else value

    def quantile(self, q: float) -> float:
        return interpolated(self.n, q, self._at)

    def count_over(self, threshold: float) -> int:
        if not self.n:
            return 0
        if self._clamp and threshold < 0:
            return self.n  # every clamped value (0 or more) exceeds a negative threshold
        inner = self._values.subquery("over")
        found = self._conn.execute(
            select(func.count()).select_from(inner).where(inner.c[0] > threshold)
        ).scalar_one()
        return int(found)


def walked(column: Any) -> ColumnElement[Any]:
    """``column`` as an expression no index serves.

    A sample's values filtered by time: with the time column plain, SQLite's
    planner would take the time index and sort; this way it walks the index
    that is in value order and filters as it goes.
    """
    found: ColumnElement[Any] = column + literal(0.0, Float())
    return found


def facts_in(span: Span, environments: tuple[str, ...]) -> list[ColumnElement[bool]]:
    """Rows of ``delivery_facts`` in the environments that finished in the span's ends."""
    f = delivery_facts.c
    return [f.environment.in_(environments), span.in_ends(f.finished_at)]


def _period(
    conn: Connection, family: str, b: tuple[str, ...], first_day: int, end_day: int
) -> tuple[set[int], list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """Where the whole UTC days ``[first_day, end_day)`` of one family are counted: the
    blocks the period cuts that were moved already (their days in the period are read
    from the rows), and the conditions on ``metric_blocks`` (whole blocks) and on
    ``metric_days`` (the other days) of :func:`family_sums` and :func:`family_buckets`."""
    block = metric_days_module.BLOCK
    cut = set()
    if first_day % block:
        cut.add(first_day // block)
    if end_day % block:
        cut.add((end_day - 1) // block)
    k, m = metric_blocks.c, metric_days.c
    moved = select(k.block).where(k.block.in_(sorted(cut)), k.family == family).distinct()
    moved_blocks = set(conn.execute(moved).scalars()) if cut else set()
    in_days = [m.family == family, m.b.in_(b), m.day >= first_day, m.day < end_day]
    if moved_blocks:
        day_block = literal_column(f"metric_days.day / {block}", Integer())
        in_days.append(day_block.not_in(sorted(moved_blocks)))
    lowest, highest = -(-first_day // block), end_day // block
    in_blocks = [k.family == family, k.b.in_(b), k.block >= lowest, k.block < highest]
    return moved_blocks, in_blocks, in_days


def family_sums(
    conn: Connection, family: str, b: tuple[str, ...], first_day: int, end_day: int
) -> tuple[int, float, list[tuple[float, float]]]:
    """The count and sum of seconds of one ``metric_days`` family (its ``b`` label one
    of ``b``) over the whole UTC days ``[first_day, end_day)``: whole blocks from
    ``metric_blocks``, other days from ``metric_days``, in one statement. Also the
    ranges of seconds (of blocks the days cut, already moved) to read from the rows.
    """
    block = metric_days_module.BLOCK
    k, m = metric_blocks.c, metric_days.c
    moved_blocks, in_blocks, in_days = _period(conn, family, b, first_day, end_day)
    parts = union_all(
        select(k.events, k.total).where(*in_blocks),
        select(m.events, m.total).where(*in_days),
    ).subquery("family_counts")
    row = conn.execute(
        select(
            func.coalesce(func.sum(parts.c.events), 0), func.coalesce(func.sum(parts.c.total), 0.0)
        )
    ).one()
    rows = []
    for moved_block in sorted(moved_blocks):
        since = max(moved_block * block, first_day)
        until = min((moved_block + 1) * block, end_day)
        rows.append((float(since * DAY), float(until * DAY)))
    return int(row[0]), float(row[1]), rows


def family_buckets(
    conn: Connection,
    family: str,
    b: tuple[str, ...],
    buckets: int,
    first_day: int,
    end_day: int,
    weigh: Callable[[list[tuple[float, float]]], int] | None = None,
) -> tuple[list[int], list[tuple[float, float]], list[tuple[float, float]]]:
    """How many values of one ``metric_days`` histogram family (its ``b`` label one of
    ``b``) each of its ``buckets`` buckets holds over the whole UTC days
    ``[first_day, end_day)``, as :func:`family_sums` reads them (whole blocks from
    ``metric_blocks``, other days from ``metric_days``); and the ranges of seconds
    whose rows are still to be counted in (``add``) or out (``take``).

    A moved block the days cut is counted from the rows of its days in the period,
    or, when fewer rows (``weigh``: how many rows lie in some ranges, say from an
    index in time order; else by days) lie in its days outside, whole from its
    counts less the rows of the days outside.
    """
    block = metric_days_module.BLOCK
    k, m = metric_blocks.c, metric_days.c
    moved_blocks, in_blocks, in_days = _period(conn, family, b, first_day, end_day)
    selects = [
        select(k.bucket, k.events).where(*in_blocks),
        select(m.bucket, m.events).where(*in_days),
    ]
    add: list[tuple[float, float]] = []
    take: list[tuple[float, float]] = []
    for moved_block in sorted(moved_blocks):
        start, end = moved_block * block, (moved_block + 1) * block
        since, until = max(start, first_day), min(end, end_day)
        outside = [(float(a * DAY), float(z * DAY)) for a, z in ((start, since), (until, end))]
        outside = [(a, z) for a, z in outside if z > a]
        inside = [(float(since * DAY), float(until * DAY))]
        if weigh is not None:
            fewer_outside = weigh(outside) < weigh(inside)
        else:
            fewer_outside = sum(z - a for a, z in outside) < (until - since) * DAY
        if not fewer_outside:
            add += inside
            continue
        selects.append(  # the whole block: its counts, and its days counted since
            select(k.bucket, k.events).where(k.family == family, k.b.in_(b), k.block == moved_block)
        )
        selects.append(
            select(m.bucket, m.events).where(
                m.family == family, m.b.in_(b), m.day >= start, m.day < end
            )
        )
        take += outside
    parts = union_all(*selects).subquery("family_buckets")
    counts = [0] * buckets
    for bucket, events in conn.execute(
        select(parts.c.bucket, func.sum(parts.c.events)).group_by(parts.c.bucket)
    ):
        if 0 <= int(bucket) < buckets:
            counts[int(bucket)] += int(events or 0)
    return counts, add, take


def bucket_of(value: Any, bounds: tuple[float, ...]) -> ColumnElement[Any]:
    """The histogram bucket of ``value`` (0 if negative), as ``metric_days`` counts it."""
    clamped = case((value < 0, literal(0.0, Float())), else_=value)
    found: ColumnElement[Any] = case(
        *((clamped <= bound, literal(i, Integer())) for i, bound in enumerate(bounds)),
        else_=literal(len(bounds), Integer()),
    )
    return found


def add_row_buckets(
    conn: Connection,
    counts: list[int],
    rows: Select[Any],
    at: Any,
    ranges: Sequence[tuple[float, float]],
    sign: int = 1,
) -> None:
    """Add to ``counts`` (``sign`` -1: take away) the buckets of the ``rows`` (a select
    of their bucket, labelled ``bucket``) whose ``at`` lies in one of ``ranges``."""
    if not ranges:
        return
    within = or_(*(and_(at >= start, at < end) for start, end in ranges))
    bucket = rows.selected_columns[0]
    for found, n in conn.execute(rows.add_columns(func.count()).where(within).group_by(bucket)):
        counts[int(found)] += sign * int(n)

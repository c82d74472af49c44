"""Running totals for the Prometheus exposition: counts and histogram buckets by label.

Each total covers the events whose time falls in ``[start, end)`` (``None``:
unbounded), so a caller can sum history once and then only what is new. The
event time is when the thing ended: a deployment's or a step's
``finished_at``, an incident's ``opened_at`` (opened) or ``resolved_at``
(restored). Histogram buckets are cumulative counts, as Prometheus wants them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Integer,
    bindparam,
    func,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.sql import ColumnElement

from interlock.storage import metric_days as metric_days_module
from interlock.storage.base import Prepared, QueryBase
from interlock.storage.metric_bounds import BOUNDS
from interlock.storage.metric_days import SEP as DAY_SEP
from interlock.storage.metric_days import compact_metric_days
from interlock.storage.metric_scope import (
    count_where,
    nonnegative,
    number,
    reached,
    seconds,
)
from interlock.storage.schema import (
    delivery_facts,
    delivery_gates,
    deployments,
    incidents,
    metric_blocks,
    metric_days,
    metric_marks,
    nodes,
    releases,
)

Labels = tuple[str, ...]


@dataclass
class Histogram:
    """Cumulative bucket counts (one per bound, ``+Inf`` being ``count``), count and sum."""

    buckets: list[int]
    count: int = 0
    total: float = 0.0

    def add(self, other: Histogram) -> None:
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.count += other.count
        self.total += other.total


@dataclass
class Totals:
    """Everything the exposition sums over time, by label values."""

    deployments: dict[Labels, int] = field(default_factory=dict)
    durations: dict[Labels, Histogram] = field(default_factory=dict)
    lead_times: dict[Labels, Histogram] = field(default_factory=dict)
    incidents: dict[Labels, int] = field(default_factory=dict)
    restores: dict[Labels, Histogram] = field(default_factory=dict)
    approval_waits: dict[Labels, Histogram] = field(default_factory=dict)
    step_runs: dict[Labels, int] = field(default_factory=dict)

    def add(self, other: Totals) -> None:
        for name in COUNTS:
            mine: dict[Labels, int] = getattr(self, name)
            for key, value in getattr(other, name).items():
                mine[key] = mine.get(key, 0) + value
        for name in HISTOGRAMS:
            histograms: dict[Labels, Histogram] = getattr(self, name)
            for key, histogram in getattr(other, name).items():
                if key in histograms:
                    histograms[key].add(histogram)
                else:
                    histograms[key] = Histogram(
                        list(histogram.buckets), histogram.count, histogram.total
                    )

    def to_json(self) -> dict[str, Any]:
        """A JSON form (label values joined by a byte no label can hold), for ``metric_marks``."""
        body: dict[str, Any] = {}
        for name in COUNTS:
            body[name] = {SEP.join(k): v for k, v in getattr(self, name).items()}
        for name in HISTOGRAMS:
            body[name] = {
                SEP.join(k): [h.buckets, h.count, h.total] for k, h in getattr(self, name).items()
            }
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Totals:
        totals = cls()
        for name in COUNTS:
            setattr(totals, name, {_key(k): int(v) for k, v in body[name].items()})
        for name in HISTOGRAMS:
            setattr(
                totals,
                name,
                {
                    _key(k): Histogram([int(b) for b in v[0]], int(v[1]), float(v[2]))
                    for k, v in body[name].items()
                },
            )
        return totals


COUNTS = ("deployments", "incidents", "step_runs")
HISTOGRAMS = ("durations", "lead_times", "restores", "approval_waits")
SEP = "\x1f"  # the unit separator: in no service, environment or state name
DAY = 86400
HISTOGRAM_BOUNDS = {
    "durations": "duration",
    "lead_times": "lead_time",
    "restores": "restore",
    "approval_waits": "approval_wait",
}


def _bounds(bounds: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    return {name: [float(b) for b in found] for name, found in sorted(bounds.items())}


def _key(joined: str) -> Labels:
    return tuple(joined.split(SEP))


@dataclass(frozen=True)
class SavedTotals:
    """A ``metric_marks`` row: the totals of events before ``mark`` (``None``: stale)."""

    generation: int
    mark: float | None
    totals: Totals | None


def _between(column: Any, start: float | None, end: float | None) -> list[ColumnElement[bool]]:
    found = [column.is_not(None)]
    if start is not None:
        found.append(column >= start)
    if end is not None:
        found.append(column < end)
    return found


def _buckets(value: ColumnElement[Any], bounds: Sequence[float]) -> list[ColumnElement[Any]]:
    return [count_where(value <= number(bound)).label(f"le{i}") for i, bound in enumerate(bounds)]


_FORGET_ALL = update(metric_marks).values(
    generation=metric_marks.c.generation + 1, mark=None, totals=null(), saved_at=None
)
# Run as every deployment ends (with the time it ended): compiled once (see base.Prepared).
_FORGET_BEHIND = Prepared(_FORGET_ALL.where(metric_marks.c.mark > bindparam("before")))


def forgetting(before: float) -> tuple[Prepared, dict[str, Any]]:
    """``forget_totals_on(conn, before)`` as a statement to run with others."""
    return _FORGET_BEHIND, {"before": before}


def forget_totals_on(conn: Any, before: float | None) -> None:
    """Saved totals that cover a time before ``before`` (``None``: all) are stale.

    Their generation moves on, so a process that summed them before this
    change neither keeps nor saves them: it sums the history again. (What ends
    less than the collector's lag ago is never behind a mark.)
    """
    if before is None:
        conn.execute(_FORGET_ALL)
    else:
        _FORGET_BEHIND.run(conn, {"before": before})


class MetricTotalsQueries(QueryBase):
    def _histograms(
        self,
        labels: Sequence[ColumnElement[Any]],
        value: ColumnElement[Any],
        source: Any,
        where: Sequence[ColumnElement[bool]],
        bounds: Sequence[float],
    ) -> dict[Labels, Histogram]:
        query = (
            select(
                *labels,
                func.count().label("events"),
                func.coalesce(func.sum(value), 0.0).label("total"),
                *_buckets(value, bounds),
            )
            .select_from(source)
            .where(*where)
            .group_by(*labels)
        )
        found = {}
        for row in self.conn.execute(query):
            key = tuple(str(row[i] or "") for i in range(len(labels)))
            buckets = [int(getattr(row, f"le{b}")) for b in range(len(bounds))]
            found[key] = Histogram(buckets, int(row.events), float(row.total))
        return found

    def _fact_totals(
        self, totals: Totals, finished: list[ColumnElement[bool]], bounds: Any
    ) -> None:
        """The deployments, durations and lead times of the ``delivery_facts`` rows
        ``finished`` selects, added into ``totals``."""
        f = delivery_facts.c
        for row in self.conn.execute(
            select(f.service, f.environment, f.kind, f.state, func.count().label("events"))
            .where(*finished)
            .group_by(f.service, f.environment, f.kind, f.state)
        ):
            key = (row.service, row.environment or "", row.kind, row.state)
            totals.deployments[key] = totals.deployments.get(key, 0) + int(row.events)
        part = Totals()
        part.durations = self._histograms(
            [f.environment],
            nonnegative(f.finished_at - f.started_at),
            delivery_facts,
            [*finished, f.position == 0, f.started_at.is_not(None), reached(f.state)],
            bounds["duration"],
        )
        part.lead_times = self._histograms(
            [f.service, f.environment],
            nonnegative(f.lead),
            delivery_facts,
            [*finished, f.first == 1, f.lead.is_not(None)],
            bounds["lead_time"],
        )
        totals.add(part)

    def _row_totals(
        self, totals: Totals, start: float | None, end: float | None, bounds: Any
    ) -> None:
        """Incidents, restores, approval waits and step runs in ``[start, end)`` from the
        rows, added into ``totals``."""
        g, i, n = delivery_gates.c, incidents.c, nodes.c
        part = Totals()
        for row in self.conn.execute(
            select(i.service, i.environment, func.count().label("events"))
            .where(*_between(i.opened_at, start, end))
            .group_by(i.service, i.environment)
        ):
            part.incidents[(row.service or "", row.environment)] = int(row.events)
        part.restores = self._histograms(
            [i.environment],
            nonnegative(seconds(i.resolved_at) - seconds(i.opened_at)),
            incidents,
            _between(i.resolved_at, start, end),
            bounds["restore"],
        )
        part.approval_waits = self._histograms(
            [g.environment],
            nonnegative(g.wait),
            delivery_gates,
            _between(g.finished_at, start, end),
            bounds["approval_wait"],
        )
        for row in self.conn.execute(
            select(n.executor, n.state, func.count().label("events"))
            .where(
                n.kind == "step", *_between(n.finished_at, start, end), n.started_at.is_not(None)
            )
            .group_by(n.executor, n.state)
        ):
            part.step_runs[(row.executor, row.state)] = int(row.events)
        totals.add(part)

    def _counted_days(self, first_day: int | None, end_day: int | None, bounds: Any) -> Totals:
        """Every total of the whole UTC days ``[first_day, end_day)`` (``None``:
        unbounded): whole blocks from ``metric_blocks``, the other days from
        ``metric_days`` (one statement, so one snapshot of both), and the days of a
        block cut by the range whose counts were already moved from the rows."""
        block = metric_days_module.BLOCK
        lowest = None if first_day is None else -(-first_day // block)  # whole blocks
        highest = None if end_day is None else end_day // block
        cut = set()  # blocks partly in the range (moved ones cannot be split)
        if first_day is not None and first_day % block:
            cut.add(first_day // block)
        if end_day is not None and end_day % block:
            cut.add((end_day - 1) // block)
        k, m = metric_blocks.c, metric_days.c
        in_blocks = []
        if lowest is not None:
            in_blocks.append(k.block >= lowest)
        if highest is not None:
            in_blocks.append(k.block < highest)
        in_days = []
        if first_day is not None:
            in_days.append(m.day >= first_day)
        if end_day is not None:
            in_days.append(m.day < end_day)
        marker = literal_column("-1", Integer())
        keys = ("family", "a", "b", "bucket")
        parts = [
            select(*(k[c] for c in keys), k.events, k.total, marker.label("cut")).where(*in_blocks),
        ]
        if cut:
            moved = select(k.block).where(k.block.in_(sorted(cut))).distinct().subquery("moved")
            day_block = literal_column(f"metric_days.day / {block}", Integer())
            in_days.append(day_block.not_in(select(moved.c.block)))
            blank: ColumnElement[Any] = literal_column("''")
            zero = literal_column("0", Integer())
            parts.append(
                select(blank, blank, blank, zero, zero, literal_column("0.0"), moved.c.block)
            )
        parts.insert(1, select(*(m[c] for c in keys), m.events, m.total, marker).where(*in_days))
        counts = union_all(*parts).subquery("counts")
        c = counts.c
        rows = self.conn.execute(
            select(
                c.family, c.a, c.b, c.bucket, c.cut,
                func.sum(c.events).label("events"), func.sum(c.total).label("total"),
            ).group_by(c.family, c.a, c.b, c.bucket, c.cut)
        ).all()  # fmt: skip
        totals = Totals()
        histograms: dict[str, dict[Labels, Histogram]] = {
            "durations": totals.durations,
            "lead_times": totals.lead_times,
            "restores": totals.restores,
            "approval_waits": totals.approval_waits,
        }
        sizes = {name: len(BOUNDS[bounds]) for name, bounds in HISTOGRAM_BOUNDS.items()}
        for row in rows:
            if int(row.cut) >= 0:  # a moved block the range cuts: its days from the rows
                since = max(int(row.cut) * block, first_day if first_day is not None else 0)
                until = (int(row.cut) + 1) * block
                if end_day is not None:
                    until = min(until, end_day)
                part = _between(delivery_facts.c.finished_at, since * DAY, until * DAY)
                self._fact_totals(totals, part, bounds)
                self._row_totals(totals, float(since * DAY), float(until * DAY), bounds)
                continue
            events = int(row.events)
            if not events:
                continue
            if row.family == "deployments":
                environment, kind, state = row.b.split(DAY_SEP)
                labels = (row.a, environment, kind, state)
                totals.deployments[labels] = totals.deployments.get(labels, 0) + events
            elif row.family == "incidents":
                totals.incidents[(row.a, row.b)] = totals.incidents.get((row.a, row.b), 0) + events
            elif row.family == "step_runs":
                totals.step_runs[(row.a, row.b)] = totals.step_runs.get((row.a, row.b), 0) + events
            elif row.family in histograms:
                key = (row.a, row.b) if row.family == "lead_times" else (row.b,)
                found = histograms[row.family].setdefault(key, Histogram([0] * sizes[row.family]))
                found.count += events
                found.total += float(row.total)
                for index in range(int(row.bucket), sizes[row.family]):
                    found.buckets[index] += events  # cumulative: at or under each bound
        return totals

    def metric_totals(
        self,
        start: float | None,
        end: float | None,
        bounds: Mapping[str, Sequence[float]],
        *,
        rollups: bool = True,
    ) -> Totals:
        """Every total for events in ``[start, end)``; ``bounds`` are histogram buckets by name.

        With ``rollups`` (and ``bounds`` those the per-day counts use), the whole
        UTC days in the range come from their counts (``metric_days``) and only
        the partial days at the ends from the rows.
        """
        f = delivery_facts.c
        totals = Totals()
        first_day = None if start is None else math.ceil(start / DAY)
        end_day = None if end is None else math.floor(end / DAY)
        whole = first_day is None or end_day is None or first_day < end_day
        same = all(
            tuple(float(b) for b in bounds[name]) == tuple(float(b) for b in BOUNDS[name])
            for name in BOUNDS
        )
        if not (rollups and same and whole):
            self._fact_totals(totals, _between(f.finished_at, start, end), bounds)
            self._row_totals(totals, start, end, bounds)
            return totals
        totals.add(self._counted_days(first_day, end_day, bounds))
        edges = []
        if first_day is not None and start is not None and start < first_day * DAY:
            edges.append((start, float(first_day * DAY)))
        if end_day is not None and end is not None and end_day * DAY < end:
            edges.append((float(end_day * DAY), end))
        for since, until in edges:
            self._fact_totals(totals, _between(f.finished_at, since, until), bounds)
            self._row_totals(totals, since, until, bounds)
        return totals

    # -- the totals of the history, saved for the next process (metric_marks) ----------
    def saved_totals(
        self, name: str, bounds: Mapping[str, Sequence[float]] | None = None
    ) -> SavedTotals | None:
        """The saved totals named ``name``: their generation and mark, and with ``bounds``
        the totals themselves (``None`` unless saved with those same histogram bounds)."""
        m = metric_marks.c
        columns = [m.generation, m.mark] + ([m.totals] if bounds is not None else [])
        row = self.conn.execute(select(*columns).where(m.name == name)).first()
        if row is None:
            return None
        totals = None
        if bounds is not None and row.mark is not None and row.totals is not None:
            if row.totals.get("bounds") == _bounds(bounds):
                totals = Totals.from_json(row.totals["totals"])
        mark = float(row.mark) if row.mark is not None else None
        return SavedTotals(int(row.generation), mark, totals)

    def save_totals(
        self,
        name: str,
        generation: int | None,
        mark: float,
        totals: Totals,
        bounds: Mapping[str, Sequence[float]],
        now: float,
    ) -> bool:
        """Save ``totals`` of the events before ``mark``, summed at ``generation``.

        Only over the same generation (nothing made them stale since they were
        summed; ``None``: there was no row) and an older mark; False if not saved.
        Saved, the per-day counts of whole blocks before the mark's day move into
        ``metric_blocks`` (ranges summed later start at the mark or after it).
        """
        m = metric_marks.c
        body = {"bounds": _bounds(bounds), "totals": totals.to_json()}
        values = {"mark": mark, "totals": body, "saved_at": now}
        if generation is None:
            if self.saved_totals(name) is not None:
                return False
            self.conn.execute(insert(metric_marks).values(name=name, generation=0, **values))
            compact_metric_days(self.conn, math.floor(mark / DAY))
            return True
        result = self.conn.execute(
            update(metric_marks)
            .where(
                m.name == name,
                m.generation == generation,
                (m.mark.is_(None)) | (m.mark < mark),
            )
            .values(**values)
        )
        if not result.rowcount:
            return False
        compact_metric_days(self.conn, math.floor(mark / DAY))
        return True

    def forget_totals(self, before: float | None = None) -> None:
        """Saved totals that cover a time before ``before`` (``None``: all) are stale."""
        forget_totals_on(self.conn, before)

    # -- gauges: what is true now (small sets, on indexed columns) ---------------------
    def open_incident_counts(self) -> dict[Labels, int]:
        i = incidents.c
        rows = self.conn.execute(
            select(i.service, i.environment, func.count().label("events"))
            .where(i.state == "open")
            .group_by(i.service, i.environment)
        )
        return {(r.service or "", r.environment): int(r.events) for r in rows}

    def releases_in_progress(self, states: Sequence[str]) -> dict[str, int]:
        r = releases.c
        rows = self.conn.execute(
            select(r.state, func.count().label("events"))
            .where(r.state.in_(states))
            .group_by(r.state)
        )
        return {row.state: int(row.events) for row in rows}

    def approvals_waiting(self) -> dict[str, int]:
        n, d = nodes.c, deployments.c
        rows = self.conn.execute(
            select(d.environment, func.count().label("events"))
            .select_from(nodes.join(deployments, d.id == n.deployment_id))
            .where(n.state == "waiting", n.executor == "approval")
            .group_by(d.environment)
        )
        return {row.environment or "": int(row.events) for row in rows}

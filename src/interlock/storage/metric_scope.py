"""What a metrics query measures, and the SQL every metric query shares.

A :class:`MetricScope` is the measured environments, services and period. A
:class:`RankedSample` is a sample of durations answered by the database in
one query: the values are numbered in order by a window function
(``ROW_NUMBER() OVER (ORDER BY v)``) and only the few rows the statistics need
come back (the first, and the neighbours of the median and of the 90th
percentile), with the count, the mean, how many values were bent to 0 by
clock skew and how many are still open (NULL). The same SQL runs on SQLite
and PostgreSQL. Any other quantile, and ``count_over``, is one more query
(``ORDER BY v LIMIT 2 OFFSET k``, ``COUNT(*) WHERE v > x``) inside the same
transaction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    and_,
    case,
    exists,
    func,
    literal,
    literal_column,
    nulls_last,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.expression import type_coerce

from interlock.metrics.facts import Window
from interlock.storage.base import QueryBase
from interlock.storage.schema import deployments, nodes, release_items

# The quantiles fetched with the sample, as integer fractions (num / den).
PREFETCHED = ((1, 2), (9, 10))


def seconds(column: Any) -> ColumnElement[float]:
    """A ``Timestamp`` column as the plain number of seconds it is stored as."""
    return type_coerce(column, Float())


def number(value: float | int) -> ColumnElement[Any]:
    """A numeric constant written into the SQL (typed the same on both backends)."""
    if isinstance(value, int):
        return literal_column(str(value), Integer())
    return literal_column(repr(float(value)), Float())


def count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """How many rows meet ``condition`` (0, not NULL, when none do)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def nonnegative(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """``value``, with a negative one (clock skew) counted as 0."""
    return case((value < 0, number(0.0)), else_=value)


def interpolated(n: int, q: float, value_at: Callable[[int], float]) -> float:
    """The ``q`` quantile of ``n`` ordered values, linear between the ranks around it.

    ``value_at(k)`` is the ``k``-th smallest value (0-based).
    """
    if not n:
        raise ValueError("the quantile of an empty sample is undefined")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile lies between 0 and 1, not {q}")
    rank = (n - 1) * q
    low = math.floor(rank)
    high = min(low + 1, n - 1)
    return value_at(low) + (rank - low) * (value_at(high) - value_at(low))


class RankedSample:
    """A :class:`~interlock.metrics.stats.Sample` answered by the database.

    ``values`` is a SELECT of one column named ``raw`` (seconds; NULL for
    something still open). With ``clamp`` a negative value counts as 0.
    """

    def __init__(self, conn: Connection, values: Select[Any], *, clamp: bool = True) -> None:
        self._conn = conn
        self._values = values.subquery("sample_values")
        raw = self._values.c.raw
        self._v = nonnegative(raw) if clamp else raw
        self.n = 0
        self.total = 0
        self.skewed = 0
        self._mean = 0.0
        self._ranks: dict[int, float] = {}
        self._load()

    @property
    def open(self) -> int:
        """Rows whose value is NULL: started but not ended."""
        return self.total - self.n

    def _load(self) -> None:
        raw = self._values.c.raw
        inner = select(self._v.label("v"), raw.label("raw")).subquery("sample_inner")
        v = inner.c.v
        ranked = select(
            v,
            (func.row_number().over(order_by=nulls_last(v)) - 1).label("k"),
            func.count(v).over().label("n"),
            func.count().over().label("total"),
            func.avg(v).over().label("mean"),
            func.sum(case((inner.c.raw < 0, 1), else_=0)).over().label("skewed"),
        ).subquery("sample_ranked")
        k, n = ranked.c.k, ranked.c.n
        near = [
            # k within 2 of (n - 1) * q, in integers: both neighbours of the rank
            and_(k * den >= (n - 1) * num - 2 * den, k * den <= (n - 1) * num + 2 * den)
            for num, den in PREFETCHED
        ]
        rows = self._conn.execute(
            select(
                ranked.c.k, ranked.c.v, ranked.c.n, ranked.c.total, ranked.c.mean, ranked.c.skewed
            )
            .where(or_(k == 0, *near))
            .order_by(ranked.c.k)
        ).all()
        if not rows:
            return
        first = rows[0]
        self.n, self.total = int(first.n), int(first.total)
        self.skewed = int(first.skewed or 0)
        self._mean = float(first.mean) if first.mean is not None else 0.0
        self._ranks = {int(r.k): float(r.v) for r in rows if r.v is not None and r.k < self.n}

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"RankedSample(n={self.n})"

    def mean(self) -> float:
        """The mean, from ``AVG`` (0 for an empty sample)."""
        return self._mean

    def quantile(self, q: float) -> float:
        """The ``q`` quantile, linear between ranks (one more query for an unusual ``q``)."""
        return interpolated(self.n, q, self._value)

    def _value(self, rank: int) -> float:
        if rank not in self._ranks:
            self._fetch(rank)
        return self._ranks[rank]

    def _fetch(self, offset: int) -> None:
        v = self._v.label("v")
        rows = self._conn.execute(
            select(v)
            .select_from(self._values)
            .where(v.is_not(None))
            .order_by(v)
            .limit(2)
            .offset(offset)
        ).all()
        for index, row in enumerate(rows):
            self._ranks[offset + index] = float(row.v)

    def count_over(self, threshold: float) -> int:
        """How many values exceed ``threshold`` (one more query)."""
        if not self.n:
            return 0
        return int(
            self._conn.execute(
                select(func.count()).select_from(self._values).where(self._v > number(threshold))
            ).scalar_one()
        )


DEPLOYING = ("deploy", "rollback")
OPEN_NODE = ("pending", "ready", "running", "waiting", "needs_attention")
DECIDED = ("succeeded", "failed")  # an approval gate approved or rejected
# A deployment's state in the delivery facts when it failed before its first deploy
# step started (rejected at an approval, stopped by a window or a check): it changed
# nothing in the environment, so like a cancelled one it counts nowhere.
NOT_REACHED = "not_reached"
UNREACHED = ("cancelled", NOT_REACHED)


def ran_a_step(deployment_id: Any) -> ColumnElement[bool]:
    """A step of the deployment's deploy phase started: it reached its environment.

    Its gates before (an approval, a window, a check) do not count: a deployment
    rejected or stopped there changed nothing.
    """
    n = nodes.c
    return exists(
        select(literal(1))
        .where(n.deployment_id == deployment_id, n.phase == "deploy", n.started_at.is_not(None))
        .correlate_except(nodes)
    )


def reached(state: ColumnElement[Any]) -> ColumnElement[bool]:
    """The deployment whose fact ``state`` this is reached its environment (it ran a step)."""
    return state.not_in(UNREACHED)


@dataclass(frozen=True)
class MetricScope:
    """What is measured: environments, services (``None``: all) and the period.

    ``complete`` says nothing was recorded before ``since`` (the metrics no
    longer need it: a commit's first deployment is marked in the delivery
    facts whatever the period). ``unplaced_runbooks`` counts the steps of
    runbook runs that name no environment.
    """

    environments: tuple[str, ...]
    since: datetime
    until: datetime
    services: tuple[str, ...] | None = None
    complete: bool = False
    unplaced_runbooks: bool = False


class ScopedFacts:
    """The scope as SQL conditions, shared by every metric query (inside one transaction)."""

    def __init__(self, tx: QueryBase, scope: MetricScope) -> None:
        self.tx = tx
        self.scope = scope
        self._window = Window(scope.since, scope.until)

    @property
    def window(self) -> Window:
        """The period measured (never derived from the data: the scope names it)."""
        return self._window

    def _released(self, release_id: Any) -> ColumnElement[bool]:
        """The release holds one of the scope's services (true when all count)."""
        if self.scope.services is None:
            return true()
        found: ColumnElement[bool] = release_id.in_(
            select(release_items.c.release_id).where(
                release_items.c.service.in_(self.scope.services)
            )
        )
        return found

    def _of_services(self, service: Any) -> list[ColumnElement[bool]]:
        """``service`` (a column) is one of the scope's services: no condition when all count."""
        s = self.scope
        return [service.in_(s.services)] if s.services is not None else []

    def _sample(self, values: Select[Any], *, clamp: bool = True) -> RankedSample:
        return RankedSample(self.tx.conn, values, clamp=clamp)

    def _node_deployment(self) -> list[ColumnElement[bool]]:
        """The deployment (or runbook run) a node belongs to is in the scope's environments."""
        d, s = deployments.c, self.scope
        placed: ColumnElement[bool] = d.environment.in_(s.environments)
        if s.unplaced_runbooks:
            placed = or_(placed, and_(d.kind == "runbook", d.environment.is_(None)))
        return [d.id == nodes.c.deployment_id, placed, self._released(d.release_id)]

    def _node_periods(self) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        """Finished in the period; or started before its end and still open (two index ranges)."""
        n, s = nodes.c, self.scope
        return (
            and_(n.finished_at >= s.since, n.finished_at < s.until),
            and_(n.finished_at.is_(None), n.started_at < s.until, n.state.in_(OPEN_NODE)),
        )

"""Statistics over samples of durations, kept sorted so every question is a lookup.

A :class:`Sample` is the narrow thing the metrics ask questions of. The
in-memory :class:`SortedSample` sorts once and then answers each question by
index or binary search; a SQL-backed sample can answer the same questions
with ``COUNT``, ``AVG`` and ``ORDER BY ... LIMIT 1 OFFSET k`` on an indexed
column, without loading a million rows.

Quantiles interpolate linearly between the two nearest ranks: the ``q``
quantile of ``n`` sorted values sits at rank ``h = (n - 1) * q`` (0-based), and
is ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``. This is
PostgreSQL's ``percentile_cont`` and numpy's default, so both back ends agree.
The median is the 0.5 quantile: the middle value, or the mean of the two middle
values.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import Protocol

from interlock.metrics.definitions import Statistic


class Sample(Protocol):
    """A set of numbers (seconds, mostly) that a statistic is taken over."""

    def __len__(self) -> int: ...

    def mean(self) -> float:
        """The arithmetic mean; only asked of a non-empty sample."""
        ...

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0 <= q <= 1), linear between ranks; non-empty samples only."""
        ...

    def count_over(self, threshold: float) -> int:
        """How many values are strictly greater than ``threshold``."""
        ...


class SortedSample:
    """An in-memory sample: sorted once, answered by index and binary search."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[float], *, presorted: bool = False) -> None:
        self._values: Sequence[float] = list(values) if presorted else sorted(values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SortedSample(n={len(self._values)})"

    def mean(self) -> float:
        return math.fsum(self._values) / len(self._values)

    def quantile(self, q: float) -> float:
        return quantile_of_sorted(self._values, q)

    def count_over(self, threshold: float) -> int:
        return len(self._values) - bisect.bisect_right(self._values, threshold)


def quantile_of_sorted(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of already sorted ``values`` (see the module docstring)."""
    if not values:
        raise ValueError("the quantile of an empty sample is undefined")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile lies between 0 and 1, not {q}")
    rank = (len(values) - 1) * q
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (rank - low) * (values[high] - values[low])


def statistic_of(sample: Sample, statistic: Statistic) -> float | None:
    """The chosen statistic of ``sample``, or None when it is empty."""
    if len(sample) == 0:
        return None
    if statistic is Statistic.MEAN:
        return sample.mean()
    if statistic is Statistic.P90:
        return sample.quantile(0.9)
    return sample.quantile(0.5)


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Population standard deviation over the mean; None for fewer than two values or mean 0.

    0 means perfectly regular; about 1 is as irregular as random arrivals; above
    1 means bursts and long silences.
    """
    if len(values) < 2:
        return None
    mean = math.fsum(values) / len(values)
    if mean <= 0:
        return None
    variance = math.fsum((value - mean) ** 2 for value in values) / len(values)
    return math.sqrt(variance) / mean

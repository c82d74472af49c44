"""Delivery metrics in the Prometheus exposition format, read from the database at scrape time.

Every number comes from the database, never from counters kept in a
process, so every API server on one database exposes the same values and a
restart loses nothing. Counters and histograms are totals over the whole
history; to keep a scrape cheap, each process sums the history once (on its
first scrape) up to a mark ``lag`` seconds in the past, then adds only what
ended between the old and the new mark; what ended after the mark is summed
afresh on every scrape. ``lag`` (10 minutes) is far longer than any
transaction takes to commit, and than clocks between servers should differ,
so nothing ends behind a mark after it was passed.

Summing a million deployments' history takes seconds (see docs/metrics.md),
so a process saves its sum in the database (``metric_marks``, at most every
``save_every`` seconds of history) and a new process starts from the saved
totals, adding only what ended since their mark. A change dated behind the
saved mark moves the row's generation on (the delivery facts projection and
``rebuild_delivery`` do it, in the transaction of the change); a collector
that sees a generation other than the one its totals agree with sums the
history again. ``interlock server`` warms the collector in the background as
it starts (:meth:`DeliveryCollector.warm_in_background`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.utils import floatToGoString

from interlock.engine.core import Engine
from interlock.storage.metric_bounds import BOUNDS as BOUNDS
from interlock.storage.metric_totals import Histogram, Labels, Totals
from interlock.storage.tx import Tx

log = logging.getLogger(__name__)

HOUR, DAY = 3600.0, 86400.0
SAVED = "exposition"  # the metric_marks row of the totals saved for the next process
IN_PROGRESS = ("scheduled", "running", "needs_attention")
# The classic text format every Prometheus server reads (the names here need nothing newer).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _le(bound: float) -> str:
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


def _histogram(
    name: str, documentation: str, labels: list[str], bounds: tuple[float, ...],
    found: dict[Labels, Histogram],
) -> HistogramMetricFamily:  # fmt: skip
    family = HistogramMetricFamily(name, documentation, labels=labels, unit="seconds")
    for key, histogram in sorted(found.items()):
        buckets = [(_le(b), float(c)) for b, c in zip(bounds, histogram.buckets, strict=True)]
        buckets.append(("+Inf", float(histogram.count)))
        family.add_metric(list(key), buckets, histogram.total)
    return family


def _counts(
    family: CounterMetricFamily | GaugeMetricFamily, found: dict[Any, int]
) -> CounterMetricFamily | GaugeMetricFamily:
    """``family`` with one sample per label values (a tuple, or one string) in ``found``."""
    for key, count in sorted(found.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], float(count))
    return family


class DeliveryCollector:
    """A ``prometheus_client`` collector over one engine's database (one per process)."""

    def __init__(self, engine: Engine, *, lag: float = 600.0, save_every: float = HOUR) -> None:
        self.engine = engine
        self.lag = lag
        self.save_every = save_every
        self._lock = threading.Lock()
        self._settled: Totals | None = None
        self._mark: float | None = None  # events that ended before this are in _settled
        self._generation: int | None = None  # of the saved totals _settled agrees with
        self._unsaved: tuple[int | None, float, Totals] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def _start(self, tx: Tx, mark: float) -> tuple[Totals, float]:
        """The totals before ``mark`` (or a later saved one): the saved ones and what
        ended since, or else the whole history summed."""
        saved = tx.saved_totals(SAVED, BOUNDS)
        if saved is None or saved.totals is None or saved.mark is None:
            return tx.metric_totals(None, mark, BOUNDS), mark
        settled = saved.totals
        if mark > saved.mark:
            settled.add(tx.metric_totals(saved.mark, mark, BOUNDS))
        return settled, max(mark, saved.mark)

    def _totals(self, tx: Tx, now: float) -> Totals:
        mark = now - self.lag
        with self._lock:
            saved = tx.saved_totals(SAVED)  # one row by its key: stale since last time?
            generation = saved.generation if saved is not None else None
            if self._settled is None or self._mark is None or generation != self._generation:
                self._settled, self._mark = self._start(tx, mark)
                self._generation = generation
            elif mark > self._mark:
                self._settled.add(tx.metric_totals(self._mark, mark, BOUNDS))
                self._mark = mark
            result = Totals()
            result.add(self._settled)
            since = self._mark
            saved_mark = saved.mark if saved is not None else None
            if saved_mark is None or since - saved_mark >= self.save_every:
                self._unsaved = (generation, since, Totals())
                self._unsaved[2].add(self._settled)
        # Bounded on both sides so that the planner reads only the recent rows; anything
        # dated more than a day ahead (a wrong clock) is summed once the mark passes it.
        result.add(tx.metric_totals(since, now + DAY, BOUNDS))
        return result

    def _save(self) -> None:
        """Save the totals of the history for the next process, at most every
        ``save_every`` seconds of history (a failure only costs that process a sum)."""
        with self._lock:
            unsaved, self._unsaved = self._unsaved, None
        if unsaved is None:
            return
        generation, mark, totals = unsaved
        try:
            with self.engine.db.transaction() as tx:
                now = self.engine.clock.now().timestamp()
                tx.save_totals(SAVED, generation, mark, totals, BOUNDS, now)
        except Exception:
            log.warning("saving the metrics totals failed", exc_info=True)

    def warm(self) -> None:
        """Sum the history now (a server does it in the background as it starts).

        So the first scrape reads only what is new instead of the whole history,
        which on a large one can take longer than Prometheus' scrape timeout. A
        scrape that arrives meanwhile waits for the sum instead of repeating it.
        """
        now = self.engine.clock.now().timestamp()
        with self.engine.db.read() as tx:
            self._totals(tx, now)
        self._save()

    def warm_in_background(self) -> threading.Thread:
        def run() -> None:
            try:
                self.warm()
            except Exception:  # the first scrape sums the history instead
                log.exception("summing the metrics history in the background failed")

        thread = threading.Thread(target=run, name="interlock-metrics-warm", daemon=True)
        thread.start()
        return thread

    def collect(self) -> Iterator[Any]:
        started = time.perf_counter()
        now = self.engine.clock.now().timestamp()
        with self.engine.db.read() as tx:
            totals = self._totals(tx, now)
            open_incidents = tx.open_incident_counts()
            in_progress = tx.releases_in_progress(IN_PROGRESS)
            waiting = tx.approvals_waiting()
        self._save()
        yield _counts(
            CounterMetricFamily(
                "interlock_deployments",
                "Deployments that ended, by service, environment, kind (deploy or rollback) and"
                " outcome (succeeded, failed, rolled_back, cancelled, or not_reached: it failed"
                " before its first deploy step, as when rejected at an approval).",
                labels=["service", "environment", "kind", "outcome"],
            ),
            totals.deployments,
        )
        yield _histogram(
            "interlock_deployment_duration",
            "Time from a deployment starting to ending (of those that reached the environment).",
            ["environment"],
            BOUNDS["duration"],
            totals.durations,
        )
        yield _histogram(
            "interlock_lead_time",
            "Time from a commit to its first successful deployment in each environment"
            " (commit time registered with the artifact).",
            ["service", "environment"],
            BOUNDS["lead_time"],
            totals.lead_times,
        )
        yield _counts(
            CounterMetricFamily(
                "interlock_incidents",
                "Incidents opened, by service and environment.",
                labels=["service", "environment"],
            ),
            totals.incidents,
        )
        yield _histogram(
            "interlock_time_to_restore",
            "Time from an incident being opened to it being resolved.",
            ["environment"],
            BOUNDS["restore"],
            totals.restores,
        )
        yield _histogram(
            "interlock_approval_wait",
            "Time from an approval gate starting to wait to its decision.",
            ["environment"],
            BOUNDS["approval_wait"],
            totals.approval_waits,
        )
        yield _counts(
            CounterMetricFamily(
                "interlock_step_runs",
                "Steps that ended, by executor (manual: signed off by a person) and outcome.",
                labels=["executor", "outcome"],
            ),
            totals.step_runs,
        )
        yield _counts(
            GaugeMetricFamily(
                "interlock_incidents_open",
                "Incidents open now, by service and environment.",
                labels=["service", "environment"],
            ),
            open_incidents,
        )
        releases = GaugeMetricFamily(
            "interlock_releases_in_progress",
            "Releases not yet ended, by state.",
            labels=["state"],
        )
        for state in IN_PROGRESS:
            releases.add_metric([state], float(in_progress.get(state, 0)))
        yield releases
        yield _counts(
            GaugeMetricFamily(
                "interlock_approvals_waiting",
                "Approval gates waiting for a decision now, by environment.",
                labels=["environment"],
            ),
            waiting,
        )
        yield GaugeMetricFamily(
            "interlock_metrics_scrape_duration_seconds",
            "How long reading these metrics from the database took.",
            value=time.perf_counter() - started,
        )

    def exposition(self) -> bytes:
        """The text exposition format (``CONTENT_TYPE``)."""
        return bytes(generate_latest(self.registry))

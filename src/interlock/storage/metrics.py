"""Delivery metrics from Interlock's own records: ``DeliveryFacts`` answered in SQL.

The questions the metrics ask (see :mod:`interlock.metrics.facts`) are
answered from the delivery facts that :mod:`interlock.storage.facts.delivery` keeps
in step with the records, over one :class:`MetricScope`: the measured
environments, optionally some services, and a period ``[since, until)``. The
whole days of the period come from the per-day sums, its partial first and
last day from the narrow rows (:mod:`interlock.storage.metric_rollups`).
Times are epoch seconds on both backends, so durations are subtractions.

What counts, in the words of the tables:

- A *deployment* is a ``deployments`` row of kind ``deploy`` or ``rollback``
  in a measured environment that finished in the period (runbook runs are
  not deployments). With a service filter, the deployments whose release
  holds one of those services.
- It *failed* when it ended ``failed`` or ``rolled_back``; it *caused a
  failure* when an incident names it (``incidents.deployment_id``, at any
  time). ``cancelled`` counts nowhere.
- *Rework*: every rollback, and every deploy that started while an incident
  was open for one of its services in its environment (derived per
  deployment when it finishes, and again when an incident opens or resolves).
- *Lead time*: per commit (``release_items.commit_sha``, else the artifact's),
  its first successful deploy to a measured environment minus the
  artifact's ``committed_at``.
- *Time to restore*: ``resolved_at - opened_at`` of incidents opened in the
  period; or, per service and environment, from a failing deployment to the
  next good one (window functions number the good deployments so that one
  episode is one group).
- *Pipeline runs*: deployments of a service (its deploy or its rollback
  pipeline) per environment, any outcome; each run's gap to the start of the
  pipeline's run before it.
- *Approval wait*: ``started_at -> finished_at`` of ``approval`` gates;
  *manual steps*: steps run by the ``manual`` executor (signed off by a
  person) among all step runs (runbook runs in the environments included).
- *Releases by person*: who created (or, for CI, on whose behalf) each
  release that reached a measured environment; service accounts are nobody.
- *Schedule slip*: a scheduled release's first deployment start minus its
  ``scheduled_at``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    and_,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.sql import ColumnElement

from interlock.metrics.definitions import RestoreFrom
from interlock.metrics.facts import DeploymentCounts, Durations, IncidentCounts, PipelineRuns
from interlock.storage.base import QueryBase
from interlock.storage.facts.delivery_sql import FAILED, SUMMED, fact_sums
from interlock.storage.metric_bounds import BOUNDS
from interlock.storage.metric_coordination import CoordinationFacts
from interlock.storage.metric_rollups import (
    IndexedSample,
    Span,
    add_rows,
    bucket_of,
    facts_in,
    walked,
)
from interlock.storage.metric_scope import (
    MetricScope,
    count_where,
    number,
    reached,
    seconds,
)
from interlock.storage.metric_totals import MetricTotalsQueries
from interlock.storage.schema import (
    delivery_days,
    delivery_facts,
    deployments,
    incidents,
    restore_seconds,
)

__all__ = ["MetricQueries", "MetricScope", "SqlDeliveryFacts"]


PIPELINE = ("service", "kind", "environment")  # the groups of pipeline_runs


class SqlDeliveryFacts(CoordinationFacts):
    """:class:`~interlock.metrics.facts.DeliveryFacts` over one scope, inside one transaction."""

    def __init__(self, tx: MetricQueries, scope: MetricScope) -> None:
        super().__init__(tx, scope)
        self._counts: DeploymentCounts | None = None
        self._incident_row: Any = None
        self._sums: dict[tuple[str, ...], dict[Any, dict[str, float]]] = {}
        self.lead_time_unknown = 0  # deployed changes whose artifact has no commit time

    # -- DeliveryFacts ---------------------------------------------------------
    def deployment_counts(self) -> DeploymentCounts:
        """Every count over the scope's deployments (asked once, then kept)."""
        if self._counts is None:
            self._counts = (
                self._count_deployments()
                if self.scope.services is None
                else self._count_deployments_of_services()
            )
        return self._counts

    @property
    def _span(self) -> Span:
        return Span.of(self.scope.since.timestamp(), self.scope.until.timestamp())

    def _summed(self, group: tuple[str, ...] = ()) -> dict[Any, dict[str, float]]:
        """``delivery_days`` columns added up per ``group``: whole days, then the ends
        (asked once per group, then kept: the counts and the lead times both ask)."""
        kept = self._sums.get(group)
        if kept is None and not group:  # the pipelines' groups added up (one pass for both)
            whole: dict[str, float] = {}
            for row in self._summed(PIPELINE).values():
                for name, value in row.items():
                    whole[name] = whole.get(name, 0) + value
            kept = self._sums[group] = {(): whole} if whole else {}
        elif kept is None:
            kept = self._sums[group] = self._sum(group)
        return kept

    def _sum(self, group: tuple[str, ...]) -> dict[Any, dict[str, float]]:
        s, span = self.scope, self._span
        found: dict[Any, dict[str, float]] = {}
        days, f = delivery_days.c, delivery_facts.c
        for table, where in (
            (days, [days.environment.in_(s.environments), span.in_days(days.day)]),
            (f, facts_in(span, s.environments)),
        ):
            if table is days and not span.whole_days:
                continue
            if table is f and not span.ends():
                continue
            where.extend(self._of_services(table.service))
            keys = [table[k] for k in group]
            columns = (
                [func.sum(days[name]).label(name) for name in SUMMED]
                if table is days
                else fact_sums()
            )
            rows = self.tx.conn.execute(select(*keys, *columns).where(*where).group_by(*keys))
            add_rows(rows.all(), group, found)
        return found

    def _count_deployments(self) -> DeploymentCounts:
        """From the per-day sums: each deployment counted once, on its first service's row."""
        s, span = self.scope, self._span
        totals = self._summed().get((), {})
        days, f = delivery_days.c, delivery_facts.c
        good_days: set[int] = set()
        if span.whole_days:
            good_days.update(
                self.tx.conn.execute(
                    select(days.day)
                    .where(
                        days.environment.in_(s.environments),
                        span.in_days(days.day),
                        days.succeeded > 0,
                    )
                    .distinct()
                ).scalars()
            )
        if span.ends():
            good_days.update(
                self.tx.conn.execute(
                    select(f.day)
                    .where(*facts_in(span, s.environments), f.position == 0)
                    .where(f.state == "succeeded")
                    .distinct()
                ).scalars()
            )
        return self._counts_of(totals, len(good_days))

    @staticmethod
    def _counts_of(totals: dict[str, float], days: int) -> DeploymentCounts:
        def get(name: str) -> int:
            return int(totals.get(name, 0))

        return DeploymentCounts(
            succeeded=get("succeeded"),
            deployment_days=days,
            attempted=get("attempted"),
            change_failures=get("failed") + get("named_good"),
            failed_outcome=get("failed"),
            flagged=0,  # the records name the failing deployment in an incident instead
            incident_linked=get("named"),
            rework=get("rollbacks") + get("rework"),
        )

    def _count_deployments_of_services(self) -> DeploymentCounts:
        """With a service filter: the deployments holding one of them, each once.

        Rework counts an incident of one of those services only.
        """
        f, s, span = delivery_facts.c, self.scope, self._span
        assert s.services is not None
        per = (
            select(
                f.deployment_id,
                func.min(f.state).label("state"),
                func.min(f.kind).label("kind"),
                func.min(f.day).label("day"),
                func.max(f.rework).label("rework"),
                func.max(f.named).label("named"),
            )
            .where(
                f.environment.in_(s.environments),
                span.contains(f.finished_at),
                f.service.in_(s.services),
            )
            .group_by(f.deployment_id)
            .subquery("per_deployment")
        )
        p = per.c
        attempted = reached(p.state)
        succeeded = p.state == "succeeded"
        row = self.tx.conn.execute(
            select(
                count_where(attempted).label("attempted"),
                count_where(succeeded).label("succeeded"),
                count_where(p.state.in_(FAILED)).label("failed"),
                func.count(func.distinct(case((succeeded, p.day)))).label("days"),
                count_where(and_(attempted, p.kind == "rollback")).label("rollbacks"),
                count_where(and_(attempted, p.rework == 1)).label("rework"),
                count_where(and_(attempted, p.named == 1)).label("named"),
                count_where(and_(succeeded, p.named == 1)).label("named_good"),
            )
        ).one()
        return self._counts_of(dict(row._mapping), int(row.days))

    def lead_times(self) -> Durations:
        """Commit -> first successful deploy, per commit first deployed in the period."""
        s = self.scope
        if len(s.environments) != 1:
            return self._lead_times_across()
        totals = self._summed().get((), {})
        n = int(totals.get("leads", 0))
        self.lead_time_unknown = int(totals.get("lead_unknown", 0))
        f, span = delivery_facts.c, self._span
        values = select(f.lead.label("v")).where(
            f.environment == s.environments[0],
            f.first == 1,
            f.lead.is_not(None),
            span.contains(walked(f.finished_at)),
            *self._of_services(f.service),
        )
        skewed = int(totals.get("lead_skewed", 0))
        mean = float(totals.get("lead_sum", 0.0)) / n if n else 0.0
        sample = IndexedSample(
            self.tx.conn,
            values,
            n=n,
            mean=mean,
            skewed=skewed,
        )
        if s.services is None and span.whole_days:
            environment = s.environments[0]
            bounds = BOUNDS["lead_time"]
            rows = (  # by their time (the lead index would read them all)
                select(bucket_of(f.lead, bounds).label("bucket"))
                .where(f.environment == environment, f.first == 1, f.lead.is_not(None))
                .with_hint(delivery_facts, "INDEXED BY ix_delivery_facts_scan", "sqlite")
            )
            sample.bucketed(
                bounds,
                lambda: self._family_buckets(
                    "lead_times",
                    (environment,),
                    bounds,
                    rows,
                    f.finished_at,
                    select(func.count()).where(f.environment == environment),  # (an index)
                ),
            )
        return Durations(sample, skewed=skewed)

    def _lead_times_across(self) -> Durations:
        """Several environments: a commit's first successful deploy to any of them."""
        f, s, span = delivery_facts.c, self.scope, self._span
        reached = func.min(f.finished_at)
        first = (
            select((reached - func.min(f.committed_at)).label("raw"))
            .where(
                f.environment.in_(s.environments),
                f.first == 1,
                *self._of_services(f.service),
            )
            .group_by(f.service, f.commit_key)
            .having(and_(reached >= span.since, reached < span.until))
        )
        sample = self._sample(first)
        self.lead_time_unknown = sample.open
        return Durations(sample, skewed=sample.skewed)

    def restore_times(self, start: RestoreFrom) -> Durations:
        """From incidents (opened -> resolved) or from failed -> next good deployment."""
        sample = self._incident_restores() if start is RestoreFrom.INCIDENT else self._episodes()
        return Durations(sample, skewed=sample.skewed, open=sample.open)

    def _incidents(self, *, walk: bool = False) -> list[ColumnElement[bool]]:
        """Incidents in scope; ``walk``: for a walk of the restore-time index."""
        i, s = incidents.c, self.scope
        opened = walked(seconds(i.opened_at)) if walk else seconds(i.opened_at)
        conditions = [
            i.environment.in_(s.environments),
            opened >= s.since.timestamp(),
            opened < s.until.timestamp(),
        ]
        if s.services is not None:
            by_deployment = select(deployments.c.id).where(self._released(deployments.c.release_id))
            conditions.append(
                or_(
                    i.service.in_(s.services),
                    and_(i.service.is_(None), i.deployment_id.in_(by_deployment)),
                )
            )
        return conditions

    def _incident_totals(self) -> Any:
        """Counts and the restore times' sums of the incidents in scope (one scan, kept)."""
        if self._incident_row is None:
            i = incidents.c
            restore = restore_seconds()
            clamped = case((restore < 0, number(0.0)), else_=restore)
            self._incident_row = self.tx.conn.execute(
                select(
                    func.count().label("opened"),
                    func.count(i.resolved_at).label("resolved"),
                    func.count(i.deployment_id).label("linked"),
                    func.coalesce(func.avg(clamped), 0.0).label("mean"),
                    count_where(restore < 0).label("skewed"),
                ).where(*self._incidents())
            ).one()
        return self._incident_row

    def _incident_restores(self) -> IndexedSample:
        totals = self._incident_totals()
        restore = restore_seconds()
        walk = self._incidents(walk=True)
        # Resolved: the restore time is not NULL, as the index has it (a condition on
        # resolved_at itself read each incident's row: ten times the walk's cost).
        values = (
            select(restore.label("v"))
            .where(*walk, restore.is_not(None))
            .with_hint(incidents, "INDEXED BY ix_incidents_restore", "sqlite")
        )
        sample = IndexedSample(
            self.tx.conn,
            values,
            n=int(totals.resolved),
            mean=float(totals.mean),
            skewed=int(totals.skewed),
        )
        sample.open = int(totals.opened) - int(totals.resolved)
        return sample

    def _episodes(self) -> IndexedSample:
        """Failing deployment -> next good one, per service and environment.

        A run of failures and the good deployment that ends it are one
        episode, marked on its first failing deployment (``episode``, with
        ``restored`` the time until the good one). Episodes begin in the
        period; the good one may come after it.
        """
        f, s = delivery_facts.c, self.scope
        walk = walked(f.finished_at)  # both queries stay in the episode index
        began = [
            f.environment.in_(s.environments),
            f.episode == 1,
            walk >= s.since.timestamp(),
            walk < s.until.timestamp(),
            *self._of_services(f.service),
        ]
        row = self.tx.conn.execute(
            select(
                func.count().label("episodes"),
                func.count(f.restored).label("n"),
                func.coalesce(func.avg(f.restored), 0.0).label("mean"),
            ).where(*began)
        ).one()
        values = select(f.restored.label("v")).where(*began, f.restored.is_not(None))
        sample = IndexedSample(self.tx.conn, values, n=int(row.n), mean=float(row.mean))
        sample.open = int(row.episodes) - int(row.n)
        return sample

    def incident_counts(self) -> IncidentCounts:
        """Incidents opened in the period; linked ones name the deployment that caused them."""
        totals = self._incident_totals()
        opened, linked = int(totals.opened), int(totals.linked)
        return IncidentCounts(
            opened=opened, resolved=int(totals.resolved), linked=linked, unlinked=opened - linked
        )

    def pipeline_runs(self) -> list[PipelineRuns]:
        """Runs per pipeline and environment, failures, and how regular their starts are.

        Each run's gap is the time since its pipeline's run before (which may
        have started before the period).
        """
        found = []
        for (service, kind, environment), row in self._summed(PIPELINE).items():
            runs = int(row.get("runs", 0))
            if not runs:
                continue
            pipeline = service if kind == "deploy" else f"{service} (rollback)"
            gaps = int(row.get("gaps", 0))
            variation = None
            if gaps >= 2:
                mean = float(row["gap_sum"]) / gaps
                if mean > 0:
                    variance = max(float(row["gap_square"]) / gaps - mean**2, 0.0)
                    variation = math.sqrt(variance) / mean
            found.append(
                PipelineRuns(
                    pipeline, environment, runs, int(row.get("run_failures", 0)), variation
                )
            )
        return sorted(found, key=lambda p: (p.pipeline, p.environment))


class MetricQueries(MetricTotalsQueries, QueryBase):
    def delivery_facts(self, scope: MetricScope) -> SqlDeliveryFacts:
        """The metrics' questions answered for ``scope`` (valid inside this transaction)."""
        return SqlDeliveryFacts(self, scope)

    def first_record_at(self) -> datetime | None:
        """When the first deployment was created: Interlock has records from then on."""
        found = self.conn.execute(
            select(seconds(deployments.c.created_at)).order_by(deployments.c.id).limit(1)
        ).scalar()
        return None if found is None else datetime.fromtimestamp(float(found), UTC)

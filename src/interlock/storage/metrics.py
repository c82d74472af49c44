"""Delivery metrics from Interlock's own records: ``DeliveryFacts`` answered in SQL.

One aggregate query per question the metrics ask (see
:mod:`interlock.metrics.facts`), over one :class:`MetricScope`: the measured
environments, optionally some services, and a period ``[since, until)``.
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
  was open for one of its services in its environment (a sweep over the
  incidents' open and resolve events and the deploys' starts, per service
  and environment, in time order).
- *Lead time*: per commit (``release_items.commit_sha``, else the artifact's),
  its first successful deploy to a measured environment minus the
  artifact's ``committed_at``.
- *Time to restore*: ``resolved_at - opened_at`` of incidents opened in the
  period; or, per service and environment, from a failing deployment to the
  next good one (window functions number the good deployments so that one
  episode is one group).
- *Pipeline runs*: deployments of a service (its deploy or its rollback
  pipeline) per environment, any outcome; the gaps between their starts.
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
    Integer,
    and_,
    case,
    cast,
    func,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql import ColumnElement

from interlock.metrics.definitions import RestoreFrom
from interlock.metrics.facts import DeploymentCounts, Durations, IncidentCounts, PipelineRuns
from interlock.storage.base import QueryBase
from interlock.storage.metric_coordination import CoordinationFacts
from interlock.storage.metric_scope import (
    DEPLOYING,
    MetricScope,
    RankedSample,
    count_where,
    number,
    seconds,
)
from interlock.storage.metric_totals import MetricTotalsQueries, deployed_before
from interlock.storage.schema import artifacts, deployments, incidents, release_items

__all__ = ["MetricQueries", "MetricScope", "SqlDeliveryFacts"]

FAILED = ("failed", "rolled_back")


def _day(dialect: str, column: Any) -> ColumnElement[Any]:
    """The UTC day number of a timestamp (floor of seconds / 86400)."""
    days = seconds(column) / number(86400.0)
    if dialect == "postgresql":
        return func.floor(days)
    return cast(days, Integer)  # SQLite truncates, which is the floor for dates after 1970


class SqlDeliveryFacts(CoordinationFacts):
    """:class:`~interlock.metrics.facts.DeliveryFacts` over one scope, inside one transaction."""

    def __init__(self, tx: MetricQueries, scope: MetricScope) -> None:
        super().__init__(tx, scope)
        self._counts: DeploymentCounts | None = None
        self.lead_time_unknown = 0  # deployed changes whose artifact has no commit time

    # -- DeliveryFacts ---------------------------------------------------------
    def deployment_counts(self) -> DeploymentCounts:
        """Every count over the scope's deployments, in one query (asked once, then kept)."""
        if self._counts is None:
            self._counts = self._count_deployments()
        return self._counts

    def _count_deployments(self) -> DeploymentCounts:
        d = deployments.c
        attempted = d.state != "cancelled"
        succeeded = d.state == "succeeded"

        # Deployments an incident names, counted from the (fewer) incidents' side.
        named = (
            select(
                func.count(func.distinct(d.id)).label("named"),
                func.count(func.distinct(case((succeeded, d.id)))).label("named_good"),
            )
            .select_from(incidents.join(deployments, d.id == incidents.c.deployment_id))
            .where(*self._deployments(), attempted)
            .subquery("named")
        )
        row = self.tx.conn.execute(
            select(
                count_where(attempted).label("attempted"),
                count_where(succeeded).label("succeeded"),
                count_where(d.state.in_(FAILED)).label("failed"),
                func.count(
                    func.distinct(case((succeeded, _day(self.tx.dialect, d.finished_at))))
                ).label("days"),
                count_where(and_(attempted, d.kind == "rollback")).label("rollbacks"),
                func.max(named.c.named).label("named"),  # one row, joined to every deployment
                func.max(named.c.named_good).label("named_good"),
                self._rework_deploys().label("rework_deploys"),
            )
            .select_from(deployments.join(named, true()))
            .where(*self._deployments())
        ).one()
        return DeploymentCounts(
            succeeded=int(row.succeeded),
            deployment_days=int(row.days),
            attempted=int(row.attempted),
            change_failures=int(row.failed) + int(row.named_good or 0),
            failed_outcome=int(row.failed),
            flagged=0,  # the records name the failing deployment in an incident instead
            incident_linked=int(row.named or 0),
            rework=int(row.rollbacks) + int(row.rework_deploys or 0),
        )

    def _rework_deploys(self) -> Any:
        """Deploys in scope that started while an incident was open for one of their services.

        One sweep per service and environment over time: an incident's opening
        adds 1, its resolution takes 1 away, and a deploy that starts where the
        running sum is above 0 was made during an incident. At equal times the
        incident events go first (``opened_at <= start < resolved_at``).
        """
        d, ri, i, s = deployments.c, release_items.c, incidents.c, self.scope
        one, zero = number(1), number(0)
        starts = (
            select(
                d.id.label("deployment"),
                ri.service.label("service"),
                d.environment.label("environment"),
                seconds(d.started_at).label("at"),
                one.label("late"),
                zero.label("delta"),
            )
            .select_from(deployments.join(release_items, ri.release_id == d.release_id))
            .where(
                *self._deployments(kinds=("deploy",)),
                d.state != "cancelled",
                d.started_at.is_not(None),
            )
        )
        scope = [  # incidents that were open at some time in the period
            i.environment.in_(s.environments),
            i.opened_at < s.until,
            i.service.is_not(None) if s.services is None else i.service.in_(s.services),
            or_(i.resolved_at.is_(None), i.resolved_at >= s.since),
        ]
        opened, resolved = (
            select(
                cast(null(), Integer).label("deployment"),
                i.service,
                i.environment,
                seconds(at),
                zero,
                delta,
            ).where(*scope, *extra)
            for at, delta, extra in (
                (i.opened_at, one, []),
                (i.resolved_at, number(-1), [i.resolved_at.is_not(None)]),
            )
        )
        events = union_all(starts, opened, resolved).subquery("rework_events")
        e = events.c
        swept = select(
            e.deployment,
            func.sum(e.delta)
            .over(partition_by=(e.service, e.environment), order_by=(e.at, e.late), rows=(None, 0))
            .label("open_incidents"),
        ).subquery("rework_swept")
        return (
            select(func.count(func.distinct(swept.c.deployment)))
            .where(swept.c.deployment.is_not(None), swept.c.open_incidents > 0)
            .scalar_subquery()
        )

    def lead_times(self) -> Durations:
        """Commit -> first successful deploy, per commit first deployed in the period."""
        d, ri, a, s = deployments.c, release_items.c, artifacts.c, self.scope
        conditions = [*self._deployments(kinds=("deploy",)), d.state == "succeeded"]
        if s.services is not None:
            conditions.append(ri.service.in_(s.services))
        if not s.complete:  # a version already deployed before the period is not new
            conditions.append(
                ~deployed_before(ri.service, ri.version, s.environments, s.since.timestamp())
            )
        commit = func.coalesce(ri.commit_sha, a.commit_sha, ri.version)
        first = (
            select(
                (func.min(seconds(d.finished_at)) - func.min(seconds(a.committed_at))).label("raw")
            )
            .select_from(
                deployments.join(release_items, ri.release_id == d.release_id).outerjoin(
                    artifacts, and_(a.service == ri.service, a.version == ri.version)
                )
            )
            .where(*conditions)
            .group_by(ri.service, commit)
        )
        sample = self._sample(first)
        self.lead_time_unknown = sample.open
        return Durations(sample, skewed=sample.skewed)

    def restore_times(self, start: RestoreFrom) -> Durations:
        """From incidents (opened -> resolved) or from failed -> next good deployment."""
        sample = self._incident_restores() if start is RestoreFrom.INCIDENT else self._episodes()
        return Durations(sample, skewed=sample.skewed, open=sample.open)

    def _incidents(self) -> list[ColumnElement[bool]]:
        i, s = incidents.c, self.scope
        conditions = [
            i.environment.in_(s.environments),
            i.opened_at >= s.since,
            i.opened_at < s.until,
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

    def _incident_restores(self) -> RankedSample:
        i = incidents.c
        return self._sample(
            select((seconds(i.resolved_at) - seconds(i.opened_at)).label("raw")).where(
                *self._incidents()
            )
        )

    def _episodes(self) -> RankedSample:
        """Failing deployment -> next good one, per service and environment.

        ``before`` counts the good deployments earlier in the stream, so a run
        of failures and the good deployment that ends it share one value: one
        episode. Episodes begin in the period; the good one may come after it.
        """
        d, ri, s = deployments.c, release_items.c, self.scope
        named = (
            select(incidents.c.deployment_id)
            .where(incidents.c.deployment_id.is_not(None))
            .distinct()
            .subquery("named")
        )
        failing = or_(d.state != "succeeded", named.c.deployment_id.is_not(None))
        at = seconds(d.finished_at)
        good = case((failing, 0), else_=1)
        stream = (
            select(
                ri.service.label("service"),
                d.environment.label("environment"),
                at.label("at"),
                case((failing, at)).label("bad_at"),
                case((failing, None), else_=at).label("good_at"),
                func.coalesce(
                    func.sum(good).over(
                        partition_by=(ri.service, d.environment),
                        order_by=(d.finished_at, d.id),
                        rows=(None, -1),
                    ),
                    0,
                ).label("before"),
            )
            .select_from(
                deployments.join(release_items, ri.release_id == d.release_id).outerjoin(
                    named, named.c.deployment_id == d.id
                )
            )
            .where(
                d.kind.in_(DEPLOYING),
                d.state != "cancelled",
                d.finished_at >= s.since,
                d.environment.in_(s.environments),
                *([ri.service.in_(s.services)] if s.services is not None else []),
            )
        ).subquery("restore_stream")
        began = func.min(stream.c.bad_at)
        episodes = (
            select((func.min(stream.c.good_at) - began).label("raw"))
            .group_by(stream.c.service, stream.c.environment, stream.c.before)
            .having(and_(began.is_not(None), began < number(s.until.timestamp())))
        )
        return self._sample(episodes)

    def incident_counts(self) -> IncidentCounts:
        """Incidents opened in the period; linked ones name a deployment measured here."""
        i, d = incidents.c, deployments.c
        known = and_(
            d.id == i.deployment_id,
            d.kind.in_(DEPLOYING),
            d.environment.in_(self.scope.environments),
        )
        row = self.tx.conn.execute(
            select(
                func.count().label("opened"),
                func.count(i.resolved_at).label("resolved"),
                func.count(d.id).label("linked"),
            )
            .select_from(incidents.outerjoin(deployments, known))
            .where(*self._incidents())
        ).one()
        opened, linked = int(row.opened), int(row.linked)
        return IncidentCounts(
            opened=opened, resolved=int(row.resolved), linked=linked, unlinked=opened - linked
        )

    def pipeline_runs(self) -> list[PipelineRuns]:
        """Runs per pipeline and environment, failures, and how regular their starts are."""
        d, ri, s = deployments.c, release_items.c, self.scope
        started = seconds(d.started_at)
        runs = (
            select(
                ri.service.label("service"),
                d.kind.label("kind"),
                d.environment.label("environment"),
                case((d.state == "succeeded", 0), else_=1).label("failed"),
                (
                    started
                    - func.lag(started).over(
                        partition_by=(ri.service, d.kind, d.environment),
                        order_by=(d.started_at, d.id),
                    )
                ).label("gap"),
            )
            .select_from(deployments.join(release_items, ri.release_id == d.release_id))
            .where(
                *self._deployments(),
                d.started_at.is_not(None),
                *([ri.service.in_(s.services)] if s.services is not None else []),
            )
        ).subquery("pipeline_run")
        r = runs.c
        rows = self.tx.conn.execute(
            select(
                r.service,
                r.kind,
                r.environment,
                func.count().label("runs"),
                func.sum(r.failed).label("failed"),
                func.count(r.gap).label("gaps"),
                func.avg(r.gap).label("mean"),
                func.avg(r.gap * r.gap).label("square"),
            ).group_by(r.service, r.kind, r.environment)
        ).all()
        found = []
        for row in rows:
            pipeline = row.service if row.kind == "deploy" else f"{row.service} (rollback)"
            variation = None
            if row.gaps >= 2 and row.mean and row.mean > 0:
                variance = max(float(row.square) - float(row.mean) ** 2, 0.0)
                variation = math.sqrt(variance) / float(row.mean)
            found.append(
                PipelineRuns(pipeline, row.environment, int(row.runs), int(row.failed), variation)
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

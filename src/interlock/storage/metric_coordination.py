"""Coordination metrics in SQL: approval waits, manual steps, who releases, schedule slip.

Part of :class:`~interlock.storage.metrics.SqlDeliveryFacts`; see
:mod:`interlock.storage.metrics` for what each one counts in the records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CompoundSelect, and_, case, func, nulls_last, or_, select, union_all
from sqlalchemy.sql import ColumnElement, Select

from interlock.metrics.coordination import ManualStepRank
from interlock.metrics.facts import Durations, PersonCounts, StepCounts
from interlock.storage.facts.delivery_sql import day_of
from interlock.storage.metric_bounds import BOUNDS
from interlock.storage.metric_rollups import (
    IndexedSample,
    Span,
    add_row_buckets,
    add_rows,
    bucket_of,
    facts_in,
    family_buckets,
    family_sums,
    walked,
)
from interlock.storage.metric_scope import (
    ScopedFacts,
    count_where,
    nonnegative,
    reached,
    seconds,
)
from interlock.storage.schema import (
    delivery_facts,
    delivery_gates,
    delivery_manual,
    delivery_people,
    delivery_slips,
    delivery_step_days,
    deployments,
    nodes,
    users,
)


class CoordinationFacts(ScopedFacts):
    """The coordination half of :class:`~interlock.storage.metrics.SqlDeliveryFacts`."""

    def _node_runs(
        self,
        columns: list[ColumnElement[Any]],
        kind: str,
        executor: str,
        *conditions: ColumnElement[bool],
    ) -> CompoundSelect[Any]:
        """``columns`` of the started nodes in the scope, in either of its periods."""
        n = nodes.c
        return union_all(
            *(
                select(*columns)
                .select_from(nodes.join(deployments, and_(*self._node_deployment())))
                .where(
                    n.kind == kind,
                    period,
                    n.executor == executor,
                    n.started_at.is_not(None),
                    *conditions,
                )
                for period in self._node_periods()
            )
        )

    def _node_environments(self) -> tuple[str, ...]:
        """Where gates and steps are counted (runbook runs of no environment: ``''``)."""
        s = self.scope
        return (*s.environments, "") if s.unplaced_runbooks else s.environments

    def approval_waits(self) -> Durations:
        """Approval gates decided in the period (and those still waiting, as open)."""
        g, s = delivery_gates.c, self.scope
        since, until = s.since.timestamp(), s.until.timestamp()
        placed: list[ColumnElement[bool]] = [g.environment.in_(self._node_environments())]
        if s.services is not None:
            placed.append(self._released(g.release_id))
        where = [*placed, g.finished_at >= since, g.finished_at < until]
        clamped = case((g.wait < 0, 0.0), else_=g.wait)
        if s.services is None:
            n, mean = self._gate_counts(placed, since, until)
            skewed = self.tx.conn.execute(  # few: a range of the wait index, not of time
                select(func.count()).where(
                    *placed,
                    g.wait < 0,
                    walked(g.finished_at) >= since,
                    walked(g.finished_at) < until,
                )
            ).scalar_one()
        else:
            row = self.tx.conn.execute(
                select(
                    func.count().label("n"),
                    func.coalesce(func.avg(clamped), 0.0).label("mean"),
                    count_where(g.wait < 0).label("skewed"),
                ).where(*where)
            ).one()
            n, mean, skewed = int(row.n), float(row.mean), row.skewed
        walk = walked(g.finished_at)
        walking = [*placed[1:], self._one_walk(g.environment, self._node_environments())]
        values = select(g.wait.label("v")).where(*walking, walk >= since, walk < until)
        sample = IndexedSample(self.tx.conn, values, n=n, mean=mean, skewed=int(skewed))
        if s.services is None and Span.of(since, until).whole_days:
            bounds = BOUNDS["approval_wait"]
            environments = self._node_environments()
            sample.bucketed(
                bounds,
                lambda: self._family_buckets(
                    "approval_waits",
                    environments,
                    bounds,
                    select(bucket_of(g.wait, bounds).label("bucket")).where(*placed),
                    g.finished_at,
                ),
            )
        return Durations(sample, skewed=sample.skewed, open=self._approvals_waiting())

    def _family_buckets(
        self,
        family: str,
        b: tuple[str, ...],
        bounds: tuple[float, ...],
        rows: Select[Any],
        at: Any,
        weighed: Select[Any] | None = None,
    ) -> list[int]:
        """How many values of the period each bucket of ``bounds`` holds: the whole days
        from the exposition's per-day counts (histogram ``family``, its ``b`` label one
        of ``b``), the partial days and cut blocks from the ``rows`` (a select of their
        bucket, :func:`bucket_of`; by ``at``); ``weighed``: a ``COUNT`` of the rows by
        ``at`` alone, cheap (to read a cut block's smaller side)."""
        span = Span.of(self.scope.since.timestamp(), self.scope.until.timestamp())

        def weigh(ranges: list[tuple[float, float]]) -> int:
            if not ranges or weighed is None:
                return 0
            within = or_(*(and_(at >= start, at < end) for start, end in ranges))
            return int(self.tx.conn.execute(weighed.where(within)).scalar_one())

        counts, add, take = family_buckets(
            self.tx.conn,
            family,
            b,
            len(bounds) + 1,
            span.first_day,
            span.end_day,
            weigh if weighed is not None else None,
        )
        add_row_buckets(self.tx.conn, counts, rows, at, [*span.ends(), *add])
        add_row_buckets(self.tx.conn, counts, rows, at, take, -1)
        return counts

    def _one_walk(self, column: Any, environments: tuple[str, ...]) -> ColumnElement[bool]:
        """``column`` is one of ``environments`` that has rows: a walk of one reads its
        index in value order; of several (production and runbook runs of none, ``''``),
        SQLite reads each and sorts them all."""
        if len(environments) > 1:
            having = [
                e
                for e in environments
                if self.tx.conn.execute(select(column).where(column == e).limit(1)).first()
            ]
            environments = tuple(having) or environments[:1]
        found: ColumnElement[bool] = (
            column == environments[0] if len(environments) == 1 else column.in_(environments)
        )
        return found

    def _gate_counts(
        self, placed: list[ColumnElement[bool]], since: float, until: float
    ) -> tuple[int, float]:
        """How many gates were decided in ``[since, until)`` and their mean wait (negative
        ones as 0): the whole days from the exposition's per-day counts (the family
        ``approval_waits``, by environment), the partial days at the ends from the rows."""
        g = delivery_gates.c
        span = Span.of(since, until)
        n, total = 0, 0.0
        ranges = span.ends()
        if span.whole_days:
            n, total, cut = family_sums(
                self.tx.conn,
                "approval_waits",
                self._node_environments(),
                span.first_day,
                span.end_day,
            )
            ranges += cut
        clamped = case((g.wait < 0, 0.0), else_=g.wait)
        for start, end in ranges:
            row = self.tx.conn.execute(
                select(func.count(), func.coalesce(func.sum(clamped), 0.0)).where(
                    *placed, g.finished_at >= start, g.finished_at < end
                )
            ).one()
            n += int(row[0])
            total += float(row[1])
        return n, (total / n if n else 0.0)

    def _approvals_waiting(self) -> int:
        """Approval gates started before the period's end and not decided yet."""
        n = nodes.c
        found = self.tx.conn.execute(
            select(func.count())
            .select_from(nodes.join(deployments, and_(*self._node_deployment())))
            .where(
                n.kind == "gate",
                n.executor == "approval",
                self._node_periods()[1],
                n.started_at.is_not(None),
            )
        ).scalar_one()
        return int(found)

    def _step_runs(self) -> list[ColumnElement[bool]]:
        n = nodes.c
        return [
            n.kind == "step",
            n.executor != "runbook",  # it waits for a runbook run, whose steps count
            n.started_at.is_not(None),
            *self._of_services(n.service),
        ]

    def step_counts(self) -> StepCounts:
        """Manual and automated step runs that ended in the period.

        Whole days of finished deployments come from ``delivery_step_days``; the
        partial days at the ends, and the steps of deployments still running,
        from the steps themselves.
        """
        n, t, s = nodes.c, delivery_step_days.c, self.scope
        span = Span.of(s.since.timestamp(), s.until.timestamp())
        manual = automated = 0
        if span.whole_days:
            where = [
                t.environment.in_(self._node_environments()),
                span.in_days(t.day),
                *self._of_services(t.service),
            ]
            for row in self.tx.conn.execute(
                select(t.manual, func.sum(t.runs)).where(*where).group_by(t.manual)
            ):
                if row[0]:
                    manual += int(row[1] or 0)
                else:
                    automated += int(row[1] or 0)
        finished = seconds(n.finished_at)
        live = [span.in_ends(finished)]  # the partial days, any deployment
        running = self._running_deployments() if span.whole_days else []
        if running:  # whole days, deployments whose steps are not summed yet
            day = day_of(finished, self.tx.dialect)
            live.append(and_(n.deployment_id.in_(running), span.in_days(day)))
        for when in live:
            row = self.tx.conn.execute(
                select(count_where(n.executor == "manual").label("manual"), func.count())
                .select_from(nodes.join(deployments, and_(*self._node_deployment())))
                .where(*self._step_runs(), when)
            ).one()
            manual += int(row.manual)
            automated += int(row[1]) - int(row.manual)
        return StepCounts(manual=manual, automated=automated)

    def _running_deployments(self) -> list[int]:
        """Deployments and runbook runs not finished yet (their steps are not summed)."""
        d = deployments.c
        return list(
            self.tx.conn.execute(
                select(d.id).where(
                    d.kind.in_(("deploy", "rollback", "runbook")), d.finished_at.is_(None)
                )
            ).scalars()
        )

    def releases_by_person(self) -> PersonCounts:
        """Releases that reached a measured environment, by the person who ran them."""
        s, u = self.scope, users.c
        span = Span.of(s.since.timestamp(), s.until.timestamp())
        found: dict[Any, dict[str, float]] = {}
        f, p = delivery_facts.c, delivery_people.c
        if len(s.environments) == 1 and s.services is None:
            if span.whole_days:
                rows = self.tx.conn.execute(
                    select(p.person, func.sum(p.releases).label("releases"))
                    .where(p.environment.in_(s.environments), span.in_days(p.day))
                    .group_by(p.person)
                ).all()
                add_rows(rows, ("person",), found)
            if span.ends():
                person = func.coalesce(f.person, "")
                rows = self.tx.conn.execute(
                    select(person.label("person"), func.count().label("releases"))
                    .where(*facts_in(span, s.environments), f.position == 0, reached(f.state))
                    .group_by(person)
                ).all()
                add_rows(rows, ("person",), found)
        else:  # a release counts once, whichever of the environments or services it reached
            person = func.coalesce(f.person, "")
            rows = self.tx.conn.execute(
                select(
                    person.label("person"),
                    func.count(func.distinct(f.release_id)).label("releases"),
                )
                .where(
                    f.environment.in_(s.environments),
                    span.contains(f.finished_at),
                    reached(f.state),
                    *self._of_services(f.service),
                )
                .group_by(person)
            ).all()
            add_rows(rows, ("person",), found)
        names = [str(k[0]) for k in found if k[0]]
        service_accounts = (
            set(
                self.tx.conn.execute(
                    select(u.name).where(u.name.in_(names), u.kind == "service")
                ).scalars()
            )
            if names
            else set()
        )
        counts: dict[str, int] = {}
        unknown = 0
        for (person,), row in found.items():
            name = (person or "").strip()
            releases = int(row.get("releases", 0))
            if not name or name in service_accounts:
                unknown += releases
            else:
                counts[name] = counts.get(name, 0) + releases
        return PersonCounts(counts, unknown)

    def schedule_slips(self) -> Durations:
        """First deployment start minus the scheduled time, of releases scheduled in the period."""
        p, s = delivery_slips.c, self.scope
        since, until = s.since.timestamp(), s.until.timestamp()
        released = [self._released(p.release_id)] if s.services is not None else []
        row = self.tx.conn.execute(
            select(func.count().label("n"), func.coalesce(func.avg(p.slip), 0.0).label("mean"))
            .where(p.scheduled_at >= since, p.scheduled_at < until)
            .where(*released)
        ).one()
        walk = walked(p.scheduled_at)
        values = select(p.slip.label("v")).where(walk >= since, walk < until, *released)
        sample = IndexedSample(
            self.tx.conn, values, n=int(row.n), mean=float(row.mean), clamp=False
        )
        return Durations(sample)

    # -- beyond DeliveryFacts ----------------------------------------------------
    def manual_steps(self, limit: int = 50) -> list[tuple[ManualStepRank, str | None, int]]:
        """Manual steps by what they cost people: (rank, runbook or None, still waiting).

        The runs of finished deployments come from ``delivery_manual``: per
        environment, one pass over its index in step order sums each step's runs,
        sign-offs and sign-off time; a step's median (of the ``limit`` most costly)
        is one ``ORDER BY wait LIMIT 2 OFFSET k`` walking that index. Nothing
        joins or sorts the history. The runs of deployments still going, and the
        steps still waiting, come from the nodes (few), and are merged into the
        ranks exactly (:func:`_union_ranks`). With services named, the nodes
        themselves are ranked (:meth:`_manual_steps_of_nodes`).
        """
        if self.scope.services is not None:
            return self._manual_steps_of_nodes(limit)
        t, s = delivery_manual.c, self.scope
        since, until = s.since.timestamp(), s.until.timestamp()
        steps: dict[tuple[str, str, str], _Step] = {}
        in_period = [t.finished_at >= since, t.finished_at < until]
        for environment in self._node_environments():
            rows = self.tx.conn.execute(
                select(
                    t.runbook,
                    t.service,
                    t.name,
                    func.count().label("runs"),
                    func.count(t.wait).label("signed"),
                    func.coalesce(func.sum(t.wait), 0.0).label("total"),
                )
                .where(t.environment == environment, *in_period)
                .group_by(t.runbook, t.service, t.name)
            ).all()
            for row in rows:
                step = steps.setdefault((row.runbook, row.service, row.name), _Step())
                step.runs += int(row.runs)
                step.total += float(row.total)
                if row.signed:
                    step.signed[environment] = int(row.signed)
        for row in self._live_manual_runs():
            step = steps.setdefault((row.runbook, row.service, row.name), _Step())
            step.runs += 1
            step.waiting += int(row.waiting)
            if row.wait is not None:
                step.total += float(row.wait)
                step.live.append(float(row.wait))
        # Ties (the same total, runs and name: a step of a runbook and one of a pipeline, say)
        # are broken by runbook and service, as :meth:`_manual_steps_of_nodes` does.
        ranked = sorted(
            steps.items(), key=lambda i: (-i[1].total, -i[1].runs, i[0][2], i[0][0], i[0][1])
        )[:limit]
        found = []
        for (runbook, service, name), step in ranked:
            median = None
            signed = sum(step.signed.values()) + len(step.live)
            if signed:
                low, high = (signed - 1) // 2, signed // 2

                def walk(
                    offset: int,
                    count: int,
                    key: tuple[str, str, str] = (runbook, service, name),
                    among: Any = tuple(step.signed),
                ) -> list[float]:
                    query = (
                        select(t.wait)
                        .where(
                            t.environment == among[0]
                            if len(among) == 1  # (one: the index in wait order)
                            else t.environment.in_(among),
                            t.runbook == key[0],
                            t.service == key[1],
                            t.name == key[2],
                            t.wait.is_not(None),
                            *in_period,
                        )
                        .order_by(t.wait)
                        .limit(count)
                        .offset(offset)
                    )
                    return [float(v) for v in self.tx.conn.execute(query).scalars()]

                values = _union_ranks(walk, bool(step.signed), step.live, low, high)
                median = (values[0] + values[1]) / 2
            label = f"{service}/{name}" if service else name
            rank = ManualStepRank(
                name=label if not runbook else f"{runbook}: {name}",
                runs=step.runs,
                signed_off=signed,
                median_signoff=median,
                total_signoff=step.total,
            )
            found.append((rank, runbook or None, step.waiting))
        found.sort(key=lambda f: (-f[0].total_signoff, -f[0].runs, f[0].name))
        return found

    def _live_manual_runs(self) -> list[Any]:
        """Manual step runs not in ``delivery_manual``: of deployments still going (that
        ended in the period) and still waiting (any deployment), with their runbook,
        service and name, their wait if signed off and whether still waiting."""
        n, d = nodes.c, deployments.c
        took = seconds(n.finished_at) - seconds(n.started_at)
        signed = and_(n.state == "succeeded", n.finished_at.is_not(None))
        columns = [
            func.coalesce(d.runbook, "").label("runbook"),
            func.coalesce(n.service, "").label("service"),
            n.name.label("name"),
            case((signed, nonnegative(took))).label("wait"),
            case((n.finished_at.is_(None), 1), else_=0).label("waiting"),
        ]
        ended, still_open = self._node_periods()
        running = self._running_deployments()
        periods = [still_open]
        if running:  # (the time as no index reads it: the running ones' rows by their id)
            s = self.scope
            periods.append(
                and_(
                    n.deployment_id.in_(running),
                    walked(seconds(n.finished_at)) >= s.since.timestamp(),
                    walked(seconds(n.finished_at)) < s.until.timestamp(),
                )
            )
        query = union_all(
            *(
                select(*columns)
                .select_from(nodes.join(deployments, and_(*self._node_deployment())))
                .where(
                    n.kind == "step",
                    n.executor == "manual",
                    n.started_at.is_not(None),
                    period,
                )
                for period in periods
            )
        )
        return list(self.tx.conn.execute(query).all())

    def _manual_steps_of_nodes(
        self, limit: int = 50
    ) -> list[tuple[ManualStepRank, str | None, int]]:
        """The ranking from the nodes themselves (services named; and what a test holds
        the ranking from ``delivery_manual`` to).

        The median sign-off time of each step is taken over its numbered runs
        (``2k`` between ``m - 2`` and ``m`` picks the middle one or two of ``m``).
        """
        n, d = nodes.c, deployments.c
        signed = and_(n.state == "succeeded", n.finished_at.is_not(None))
        took = seconds(n.finished_at) - seconds(n.started_at)
        base = self._node_runs(
            [
                d.runbook.label("runbook"),
                n.service.label("service"),
                n.name.label("name"),
                case((signed, nonnegative(took))).label("wait"),
                case((n.finished_at.is_(None), 1), else_=0).label("waiting"),
            ],
            "step",
            "manual",
            *([n.service.in_(self.scope.services)] if self.scope.services else []),
        ).subquery("manual_runs")
        b = base.c
        group = (b.runbook, b.service, b.name)
        ranked = select(
            *group,
            b.wait,
            b.waiting,
            (func.row_number().over(partition_by=group, order_by=nulls_last(b.wait)) - 1).label(
                "k"
            ),
            func.count(b.wait).over(partition_by=group).label("m"),
        ).subquery("manual_ranked")
        m = ranked.c
        middle = and_(m.k * 2 >= m.m - 2, m.k * 2 <= m.m, m.wait.is_not(None))
        total = func.coalesce(func.sum(m.wait), 0.0)
        rows = self.tx.conn.execute(
            select(
                m.runbook,
                m.service,
                m.name,
                func.count().label("runs"),
                func.count(m.wait).label("signed"),
                func.avg(case((middle, m.wait))).label("median"),
                total.label("total"),
                func.sum(m.waiting).label("waiting"),
            )
            .group_by(m.runbook, m.service, m.name)
            .order_by(
                total.desc(),
                func.count().desc(),
                m.name,
                func.coalesce(m.runbook, ""),  # (as the rows name them: "" for none)
                func.coalesce(m.service, ""),
            )
            .limit(limit)
        ).all()
        found = []
        for row in rows:
            label = f"{row.service}/{row.name}" if row.service else row.name
            rank = ManualStepRank(
                name=label if not row.runbook else f"{row.runbook}: {row.name}",
                runs=int(row.runs),
                signed_off=int(row.signed),
                median_signoff=float(row.median) if row.median is not None else None,
                total_signoff=float(row.total or 0.0),
            )
            found.append((rank, row.runbook, int(row.waiting or 0)))
        found.sort(key=lambda f: (-f[0].total_signoff, -f[0].runs, f[0].name))
        return found


@dataclass
class _Step:
    """What the ranking adds up for one manual step."""

    runs: int = 0
    total: float = 0.0
    waiting: int = 0
    signed: dict[str, int] = field(default_factory=dict)  # sign-offs in the table, by place
    live: list[float] = field(default_factory=list)  # sign-off times of the live runs


def _union_ranks(
    walk: Callable[[int, int], list[float]],
    indexed: bool,
    live: list[float],
    low: int,
    high: int,
) -> tuple[float, float]:
    """The values of ranks ``low`` and ``high`` (0-based, ``high`` at most ``low + 1``)
    of the union of the indexed values (``walk(offset, count)``: ``count`` of them in
    order from rank ``offset``) and the few ``live`` ones, exactly.

    Rank ``r`` of the union lies at or above indexed rank ``r - len(live)`` (at most
    that many live values precede it) and at or below indexed rank ``r``: so the
    indexed ranks from ``low - len(live)`` to ``high``, merged with the live values,
    hold it; those below the first one fetched are counted, not fetched.
    """
    if not indexed:
        merged = sorted(live)
        return merged[low], merged[high]
    if not live:
        found = walk(low, high - low + 1)
        return found[0], found[-1]
    offset = max(0, low - len(live))
    found = walk(offset, high - offset + 1)
    if offset == 0:
        merged = sorted(found + live)
        return merged[low], merged[high]
    first = found[0]
    below = offset + sum(1 for value in live if value < first)
    merged = sorted(found + [value for value in live if value >= first])
    return merged[low - below], merged[high - below]

"""Coordination metrics in SQL: approval waits, manual steps, who releases, schedule slip.

Part of :class:`~interlock.storage.metrics.SqlDeliveryFacts`; see
:mod:`interlock.storage.metrics` for what each one counts in the records.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CompoundSelect, and_, case, func, nulls_last, select, union_all
from sqlalchemy.sql import ColumnElement

from interlock.metrics.coordination import ManualStepRank
from interlock.metrics.facts import Durations, PersonCounts, StepCounts
from interlock.storage.metric_scope import (
    DECIDED,
    OPEN_NODE,
    ScopedFacts,
    count_where,
    nonnegative,
    seconds,
)
from interlock.storage.schema import deployments, nodes, releases, users


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

    def approval_waits(self) -> Durations:
        """Approval gates decided in the period (and those still waiting, as open)."""
        n = nodes.c
        wait = case(
            (n.state.in_(DECIDED), seconds(n.finished_at) - seconds(n.started_at)), else_=None
        )
        values = self._node_runs(
            [wait.label("raw")], "gate", "approval", n.state.in_((*DECIDED, *OPEN_NODE))
        ).subquery("approval_waits")
        sample = self._sample(select(values.c.raw))
        return Durations(sample, skewed=sample.skewed, open=sample.open)

    def _step_runs(self) -> list[ColumnElement[bool]]:
        n, s = nodes.c, self.scope
        conditions = [
            n.kind == "step",
            n.executor != "runbook",  # it waits for a runbook run, whose steps count
            n.started_at.is_not(None),
            n.finished_at >= s.since,
            n.finished_at < s.until,
        ]
        if s.services is not None:
            conditions.append(n.service.in_(s.services))
        return conditions

    def step_counts(self) -> StepCounts:
        """Manual and automated step runs that ended in the period."""
        n = nodes.c
        row = self.tx.conn.execute(
            select(
                func.count().label("runs"),
                count_where(n.executor == "manual").label("manual"),
            )
            .select_from(nodes.join(deployments, and_(*self._node_deployment())))
            .where(*self._step_runs())
        ).one()
        return StepCounts(manual=int(row.manual), automated=int(row.runs) - int(row.manual))

    def releases_by_person(self) -> PersonCounts:
        """Releases that reached a measured environment, by the person who ran them."""
        d, r, u = deployments.c, releases.c, users.c
        person = func.coalesce(r.on_behalf_of, r.created_by)
        reached = (
            select(d.release_id.label("release_id"))
            .where(*self._deployments())
            .distinct()
            .subquery("reached")
        )
        rows = self.tx.conn.execute(
            select(person.label("person"), u.kind.label("kind"), func.count().label("releases"))
            .select_from(
                reached.join(releases, r.id == reached.c.release_id).outerjoin(
                    users, u.name == person
                )
            )
            .group_by(person, u.kind)
        ).all()
        counts: dict[str, int] = {}
        unknown = 0
        for row in rows:
            name = (row.person or "").strip()
            if not name or row.kind == "service":
                unknown += int(row.releases)
            else:
                counts[name] = counts.get(name, 0) + int(row.releases)
        return PersonCounts(counts, unknown)

    def schedule_slips(self) -> Durations:
        """First deployment start minus the scheduled time, of releases scheduled in the period."""
        r, d, s = releases.c, deployments.c, self.scope
        began = (
            select(func.min(seconds(d.started_at))).where(d.release_id == r.id).scalar_subquery()
        )
        # Grouped, so the first start is looked up once per release (by release_id).
        slips = (
            select((began - func.min(seconds(r.scheduled_at))).label("raw"))
            .where(r.scheduled_at >= s.since, r.scheduled_at < s.until, self._released(r.id))
            .group_by(r.id)
        )
        return Durations(self._sample(slips, clamp=False))

    # -- beyond DeliveryFacts ----------------------------------------------------
    def manual_steps(self, limit: int = 50) -> list[tuple[ManualStepRank, str | None, int]]:
        """Manual steps by what they cost people: (rank, runbook or None, still waiting).

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
            .order_by(total.desc(), func.count().desc(), m.name)
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

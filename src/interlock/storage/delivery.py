"""Delivery facts: what the metrics measure, kept in step with the records.

The delivery metrics over years of history cannot afford to join, group and
sort hundreds of thousands of deployments each time they are asked. So the
transaction that finishes a deployment, decides an approval gate, or opens or
resolves an incident also writes what the metrics need to know about it,
derived from the records in that same transaction (nothing is lost or
double-counted when a process dies):

- ``delivery_facts``: one narrow row per finished deployment (of kind deploy
  or rollback) and service, with what would otherwise be joined or computed
  per query: who ran it, the commit it carried and when that was committed,
  whether it was that commit's first successful deploy to the environment
  (and then its lead time), whether an incident was open for the service when
  it started (rework), whether an incident names it, and when the pipeline's
  previous run started.
- ``delivery_gates``: the wait of every decided approval gate.
- ``delivery_steps``: per deployment (or runbook run), its step runs by day,
  service and manual or automated.
- ``delivery_days``, ``delivery_people``, ``delivery_step_days``: the sums of
  those rows per environment and UTC day (and service, person). Any change to
  the rows of a day recomputes that day's sums from them.

:meth:`DeliveryQueries.refresh_delivery` recomputes the rows of some
deployments (and the sums of the days they touch); :meth:`rebuild_delivery`
recomputes everything in a few set-wide statements (the migration that adds
these tables, and tools that write records in bulk, use it). A test holds the
two to the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.elements import BindParameter

from interlock.storage.base import QueryBase
from interlock.storage.metric_scope import DECIDED, DEPLOYING, count_where, seconds
from interlock.storage.schema import (
    artifacts,
    delivery_days,
    delivery_facts,
    delivery_gates,
    delivery_people,
    delivery_slips,
    delivery_step_days,
    delivery_steps,
    deployments,
    incidents,
    nodes,
    release_items,
    releases,
)

IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_STATEMENTS: dict[tuple[str, str], Any] = {}
# The PostgreSQL advisory lock under which delivery facts change (the others:
# storage/leader.py).
FACTS_LOCK = 727005

FAILED = ("failed", "rolled_back")
DAY = 86400
CHUNK = 500  # ids per IN list


def day_of(value: ColumnElement[Any], dialect: str) -> ColumnElement[int]:
    """The UTC day number of epoch seconds (the floor of seconds / 86400)."""
    days = value / literal(float(DAY), Float())
    if dialect == "postgresql":
        return cast(func.floor(days), Integer)
    return cast(days, Integer)  # SQLite truncates: the floor for times after 1970


def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _chunks(values: Iterable[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _open_incident_for(service: Any, environment: Any, at: Any) -> ColumnElement[bool]:
    """An incident of ``service`` in ``environment`` was open at ``at``."""
    i = incidents.c
    return exists(
        select(literal(1))
        .where(
            i.service == service,
            i.environment == environment,
            seconds(i.opened_at) <= at,
            or_(i.resolved_at.is_(None), seconds(i.resolved_at) > at),
        )
        .correlate_except(incidents)
    )


def fact_sums() -> list[ColumnElement[Any]]:
    """The ``delivery_days`` columns, as sums over ``delivery_facts`` rows."""
    f = delivery_facts.c
    lead_row = f.position == 0
    attempted = and_(lead_row, f.state != "cancelled")
    ran = f.started_at.is_not(None)
    gap = case((and_(ran, f.prev_started.is_not(None)), f.started_at - f.prev_started))
    clamped = case((f.lead < 0, literal(0.0, Float())), else_=f.lead)
    first = f.first == 1

    return [
        count_where(attempted).label("attempted"),
        count_where(and_(lead_row, f.state == "succeeded")).label("succeeded"),
        count_where(and_(lead_row, f.state.in_(FAILED))).label("failed"),
        count_where(and_(attempted, f.kind == "rollback")).label("rollbacks"),
        count_where(and_(attempted, f.rework_any == 1)).label("rework"),
        count_where(and_(attempted, f.named == 1)).label("named"),
        count_where(and_(lead_row, f.state == "succeeded", f.named == 1)).label("named_good"),
        count_where(ran).label("runs"),
        count_where(and_(ran, f.state != "succeeded")).label("run_failures"),
        func.count(gap).label("gaps"),
        func.coalesce(func.sum(gap), 0.0).label("gap_sum"),
        func.coalesce(func.sum(gap * gap), 0.0).label("gap_square"),
        count_where(and_(first, f.lead.is_not(None))).label("leads"),
        func.coalesce(func.sum(case((first, clamped))), 0.0).label("lead_sum"),
        count_where(and_(first, f.lead < 0)).label("lead_skewed"),
        count_where(and_(first, f.lead.is_(None))).label("lead_unknown"),
    ]


SUMMED = (
    "attempted",
    "succeeded",
    "failed",
    "rollbacks",
    "rework",
    "named",
    "named_good",
    "runs",
    "run_failures",
    "gaps",
    "gap_sum",
    "gap_square",
    "leads",
    "lead_sum",
    "lead_skewed",
    "lead_unknown",
)


class DeliveryQueries(QueryBase):
    _facts_locked = False  # this transaction holds the facts lock (PostgreSQL)

    # -- the rows of some deployments --------------------------------------------
    def _fact_source(self, where: ColumnElement[bool], *, rework: bool = True) -> Select[Any]:
        """The columns of ``delivery_facts`` for the finished deployments ``where`` selects.

        ``first``, ``prev_started``, ``rework_any`` and the episode are left for
        the caller (they depend on other rows); the rest is this deployment's own.
        """
        d, ri, r, a = deployments.c, release_items.c, releases.c, artifacts.c
        started, finished = seconds(d.started_at), seconds(d.finished_at)
        deploying = and_(d.kind == "deploy", d.state != "cancelled", d.started_at.is_not(None))
        return (
            select(
                d.id.label("deployment_id"),
                d.release_id.label("release_id"),
                ri.position.label("position"),
                ri.service.label("service"),
                d.environment.label("environment"),
                d.kind.label("kind"),
                d.state.label("state"),
                func.coalesce(r.on_behalf_of, r.created_by).label("person"),
                started.label("started_at"),
                finished.label("finished_at"),
                day_of(finished, self.dialect).label("day"),
                func.coalesce(ri.commit_sha, a.commit_sha, ri.version).label("commit_key"),
                seconds(a.committed_at).label("committed_at"),
                (
                    flag(and_(deploying, _open_incident_for(ri.service, d.environment, started)))
                    if rework
                    else literal(0, Integer())
                ).label("rework"),
                flag(exists(select(literal(1)).where(incidents.c.deployment_id == d.id))).label(
                    "named"
                ),
            )
            .select_from(
                deployments.join(releases, r.id == d.release_id)
                .join(release_items, ri.release_id == d.release_id)
                .outerjoin(artifacts, and_(a.service == ri.service, a.version == ri.version))
            )
            .where(
                where,
                d.kind.in_(DEPLOYING),
                d.finished_at.is_not(None),
                d.environment.is_not(None),
            )
        )

    def _gate_source(self, where: ColumnElement[bool]) -> Select[Any]:
        n, d = nodes.c, deployments.c
        return (
            select(
                n.id.label("node_id"),
                n.deployment_id.label("deployment_id"),
                d.release_id.label("release_id"),
                func.coalesce(d.environment, "").label("environment"),
                seconds(n.finished_at).label("finished_at"),
                (seconds(n.finished_at) - seconds(n.started_at)).label("wait"),
            )
            .select_from(nodes.join(deployments, d.id == n.deployment_id))
            .where(
                where,
                n.kind == "gate",
                n.executor == "approval",
                n.state.in_(DECIDED),
                n.started_at.is_not(None),
                n.finished_at.is_not(None),
            )
        )

    def _step_source(self, where: ColumnElement[bool]) -> Select[Any]:
        """Step runs of finished deployments (any kind) by environment, day, service, manual."""
        n, d = nodes.c, deployments.c
        day = day_of(seconds(n.finished_at), self.dialect)
        manual = flag(n.executor == "manual")
        environment = func.coalesce(d.environment, "")
        service = func.coalesce(n.service, "")
        return (
            select(
                n.deployment_id.label("deployment_id"),
                environment.label("environment"),
                day.label("day"),
                service.label("service"),
                manual.label("manual"),
                func.count().label("runs"),
            )
            .select_from(nodes.join(deployments, d.id == n.deployment_id))
            .where(
                where,
                d.finished_at.is_not(None),
                n.kind == "step",
                n.executor != "runbook",  # it waits for a runbook run, whose steps count
                n.started_at.is_not(None),
                n.finished_at.is_not(None),
            )
            .group_by(n.deployment_id, environment, day, service, manual)
        )

    def _statement(self, name: str) -> Any:
        """The incremental path's statement ``name``, built once per dialect.

        Built once, a statement's cache key is memoised, so executing it
        again costs SQLAlchemy little: a refresh runs some twenty of them.
        """
        key = (self.dialect, name)
        found = _STATEMENTS.get(key)
        if found is None:
            found = _STATEMENTS[key] = getattr(self, f"_build_{name}")()
        return found

    # The statements (bound parameters: ids, environment, day, service, kind, ...).
    def _build_days_of_facts(self) -> Any:
        f = delivery_facts.c
        return select(f.environment, f.day).where(f.deployment_id.in_(IDS)).distinct()

    def _build_days_of_steps(self) -> Any:
        s = delivery_steps.c
        return select(s.environment, s.day).where(s.deployment_id.in_(IDS)).distinct()

    def _build_delete_facts(self) -> Any:
        return delete(delivery_facts).where(delivery_facts.c.deployment_id.in_(IDS))

    def _build_delete_steps(self) -> Any:
        return delete(delivery_steps).where(delivery_steps.c.deployment_id.in_(IDS))

    def _build_delete_gates(self) -> Any:
        return delete(delivery_gates).where(delivery_gates.c.deployment_id.in_(IDS))

    def _build_insert_facts(self) -> Any:
        source = self._fact_source(deployments.c.id.in_(IDS)).subquery("fact_source")
        return insert(delivery_facts).from_select(list(source.c.keys()), select(*source.c))

    def _build_insert_steps(self) -> Any:
        source = self._step_source(nodes.c.deployment_id.in_(IDS)).subquery("step_source")
        return insert(delivery_steps).from_select(list(source.c.keys()), select(*source.c))

    def _build_insert_gates(self) -> Any:
        source = self._gate_source(nodes.c.deployment_id.in_(IDS)).subquery("gate_source")
        return insert(delivery_gates).from_select(list(source.c.keys()), select(*source.c))

    def _build_rework_any(self) -> Any:
        return self._rework_any(delivery_facts.c.deployment_id.in_(IDS))

    def _rework_any(self, where: ColumnElement[bool]) -> Any:
        """A deploy is rework when an incident of any of its services was open as it began."""
        f = delivery_facts.c
        reworked = select(f.deployment_id).where(f.rework == 1, where)
        return (
            update(delivery_facts).where(where, f.deployment_id.in_(reworked)).values(rework_any=1)
        )

    def _build_rows_of(self) -> Any:
        f = delivery_facts.c
        return select(
            f.service, f.environment, f.kind, f.commit_key, f.started_at, f.finished_at, f.day
        ).where(f.deployment_id.in_(IDS))

    def _build_commit_rows(self) -> Any:
        f = delivery_facts.c
        return (
            select(f.id, f.kind, f.state, f.finished_at, f.committed_at, f.first, f.lead, f.day)
            .where(
                f.service == bindparam("service"),
                f.environment == bindparam("environment"),
                f.commit_key == bindparam("commit_key"),
            )
            .order_by(f.finished_at, f.deployment_id)
        )

    def _build_set_first(self) -> Any:
        f = delivery_facts.c
        return (
            update(delivery_facts)
            .where(f.id == bindparam("row"))
            .values(first=bindparam("first"), lead=bindparam("lead"))
        )

    def _pipeline(self) -> ColumnElement[bool]:
        f = delivery_facts.c
        return and_(
            f.service == bindparam("service"),
            f.environment == bindparam("environment"),
            f.kind == bindparam("kind"),
        )

    def _build_run_before(self) -> Any:
        f = delivery_facts.c
        return select(func.max(f.started_at)).where(
            self._pipeline(), f.started_at < bindparam("since")
        )

    def _build_runs_since(self) -> Any:
        f = delivery_facts.c
        return (
            select(f.id, f.started_at, f.prev_started, f.day)
            .where(self._pipeline(), f.started_at >= bindparam("since"))
            .order_by(f.started_at, f.deployment_id, f.id)
        )

    def _build_set_prev(self) -> Any:
        f = delivery_facts.c
        return (
            update(delivery_facts)
            .where(f.id == bindparam("row"))
            .values(prev_started=bindparam("prev"))
        )

    def _build_good_before(self) -> Any:
        f = delivery_facts.c
        return select(func.max(f.finished_at)).where(
            f.service == bindparam("service"),
            f.environment == bindparam("environment"),
            f.state == "succeeded",
            f.named == 0,
            f.finished_at < bindparam("since"),
        )

    def _build_stream(self) -> Any:
        f = delivery_facts.c
        return (
            select(f.id, f.finished_at, f.state, f.named, f.episode, f.restored)
            .where(
                f.service == bindparam("service"),
                f.environment == bindparam("environment"),
                f.state != "cancelled",
                f.finished_at >= bindparam("since"),
            )
            .order_by(f.finished_at, f.deployment_id)
        )

    def _build_set_episode(self) -> Any:
        f = delivery_facts.c
        return (
            update(delivery_facts)
            .where(f.id == bindparam("row"))
            .values(episode=bindparam("first_failure"), restored=bindparam("after"))
        )

    def _build_started_since(self) -> Any:
        f = delivery_facts.c
        return select(f.deployment_id).where(
            f.service == bindparam("service"),
            f.environment == bindparam("environment"),
            f.started_at >= bindparam("since"),
        )

    def _build_scheduled_release_of(self) -> Any:
        d, r = deployments.c, releases.c
        return (
            select(d.release_id)
            .join(releases, r.id == d.release_id)
            .where(d.id == bindparam("deployment"), r.scheduled_at.is_not(None))
        )

    def _build_delete_slip(self) -> Any:
        return delete(delivery_slips).where(delivery_slips.c.release_id == bindparam("release"))

    def _build_insert_slip(self) -> Any:
        source = self._slip_source(releases.c.id == bindparam("release")).subquery("slip_source")
        return insert(delivery_slips).from_select(list(source.c.keys()), select(*source.c))

    def _day_statements(self, table: Any, sums: Select[Any], rows: Any) -> tuple[Any, Any]:
        at_day: tuple[BindParameter[Any], BindParameter[Any]] = (
            bindparam("environment"),
            bindparam("day"),
        )
        remove = delete(table).where(table.c.environment == at_day[0], table.c.day == at_day[1])
        source = sums.where(rows.environment == at_day[0], rows.day == at_day[1]).subquery("sums")
        add = insert(table).from_select(list(source.c.keys()), select(*source.c))
        return remove, add

    def _build_roll_days(self) -> Any:
        return self._day_statements(delivery_days, self._day_sums(), delivery_facts.c)

    def _build_roll_people(self) -> Any:
        return self._day_statements(delivery_people, self._people_sums(), delivery_facts.c)

    def _build_roll_steps(self) -> Any:
        return self._day_statements(delivery_step_days, self._step_sums(), delivery_steps.c)

    # -- the rows of some deployments, kept in step --------------------------------
    def _lock_facts(self) -> None:
        """On PostgreSQL, change delivery facts one transaction at a time.

        A refresh deletes and re-inserts rows (a deployment's facts, a day's
        sums) and re-derives rows of other deployments from what it can see.
        Two transactions doing that at once under READ COMMITTED would each
        miss the other's uncommitted rows: duplicate keys, or sums that lack
        one of them. The lock is held until commit; SQLite has one writer anyway.
        """
        if self.dialect != "postgresql" or self._facts_locked:
            return
        self.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FACTS_LOCK})
        self._facts_locked = True

    def refresh_delivery(self, deployment_ids: Collection[int]) -> None:
        """Recompute the delivery facts of ``deployment_ids`` and the sums of their days."""
        if not deployment_ids:
            return
        self._lock_facts()
        ids = sorted(set(deployment_ids))
        days: set[tuple[str, int]] = set()
        step_days: set[tuple[str, int]] = set()
        run = self.conn.execute
        for batch in _chunks(ids):
            bound = {"ids": batch}
            days |= {(e, int(d)) for e, d in run(self._statement("days_of_facts"), bound)}
            step_days |= {(e, int(d)) for e, d in run(self._statement("days_of_steps"), bound)}
            for name in ("delete_facts", "delete_steps", "delete_gates"):
                run(self._statement(name), bound)
            for name in ("insert_facts", "rework_any", "insert_steps", "insert_gates"):
                run(self._statement(name), bound)
            step_days |= {(e, int(d)) for e, d in run(self._statement("days_of_steps"), bound)}
        rows = run(self._statement("rows_of"), {"ids": ids}).all()
        commits = {(r.service, r.environment, r.commit_key) for r in rows}
        pipelines: dict[tuple[str, str, str], float] = {}
        for r in rows:
            days.add((r.environment, int(r.day)))
            if r.started_at is not None:
                key = (r.service, r.environment, r.kind)
                pipelines[key] = min(pipelines.get(key, r.started_at), r.started_at)
        days |= self._renumber_firsts(commits)
        days |= self._relink_pipelines(pipelines)
        streams: dict[tuple[str, str], float | None] = {}
        for r in rows:
            stream = (r.service, r.environment)
            earliest = streams.get(stream)
            streams[stream] = r.finished_at if earliest is None else min(earliest, r.finished_at)
        self._rechain_episodes(streams)
        for environment, day in sorted(days):
            for name in ("roll_days", "roll_people"):
                for statement in self._statement(name):
                    run(statement, {"environment": environment, "day": day})
        for environment, day in sorted(step_days):
            for statement in self._statement("roll_steps"):
                run(statement, {"environment": environment, "day": day})

    def _refresh_slip(self, deployment_id: int) -> None:
        """A deployment started: if its release was scheduled, how late it began.

        One look-up for a release that was not scheduled (most of them).
        """
        release_id = self.conn.execute(
            self._statement("scheduled_release_of"), {"deployment": deployment_id}
        ).scalar()
        if release_id is None:
            return
        self._lock_facts()
        self.conn.execute(self._statement("delete_slip"), {"release": release_id})
        self.conn.execute(self._statement("insert_slip"), {"release": release_id})

    def _slip_source(self, where: ColumnElement[bool]) -> Select[Any]:
        r, d = releases.c, deployments.c
        scheduled = func.min(seconds(r.scheduled_at))
        return (
            select(
                r.id.label("release_id"),
                scheduled.label("scheduled_at"),
                (func.min(seconds(d.started_at)) - scheduled).label("slip"),
            )
            .select_from(releases.join(deployments, d.release_id == r.id))
            .where(where, r.scheduled_at.is_not(None), d.started_at.is_not(None))
            .group_by(r.id)
        )

    def _refresh_gates(self, deployment_id: int) -> None:
        """An approval gate of ``deployment_id`` was decided: record its wait."""
        self._lock_facts()
        bound = {"ids": [deployment_id]}
        self.conn.execute(self._statement("delete_gates"), bound)
        self.conn.execute(self._statement("insert_gates"), bound)

    def flush_delivery(self) -> None:
        """Bring the delivery facts up to date with what this transaction changed.

        Runs once, just before commit (after the releases' rows, before the
        audit chain), so the facts lock is held only for the transaction's
        last moments, and nothing that holds it waits on anything but the
        audit head: no lock cycle with a transaction holding a release's row.
        """
        stale = self.stale
        if not stale:
            return
        self.stale = type(stale)()
        if stale.finished or stale.gates or stale.incidents:
            self._lock_facts()  # (a start alone costs one look-up, and locks only if scheduled)
        ids = set(stale.finished)
        for service, environment, opened_at, deployment_id in stale.incidents:
            ids |= self._incident_deployments(service, environment, opened_at, deployment_id)
        for deployment_id in sorted(stale.started):
            self._refresh_slip(deployment_id)
        for deployment_id in sorted(stale.gates - ids):  # a refresh re-derives gates too
            self._refresh_gates(deployment_id)
        self.refresh_delivery(ids)

    def _incident_deployments(
        self,
        service: str | None,
        environment: str,
        opened_at: datetime,
        deployment_id: int | None,
    ) -> set[int]:
        """What an incident opened, resolved or linked changes in the facts.

        Deploys of its service in its environment that started since it opened
        (rework), and the deployment it names (a change failure).
        """
        found: set[int] = set()
        if deployment_id is not None:
            found.add(deployment_id)
        if service is not None:
            found.update(
                self.conn.execute(
                    self._statement("started_since"),
                    {
                        "service": service,
                        "environment": environment,
                        "since": opened_at.timestamp(),
                    },
                ).scalars()
            )
        return found

    def _renumber_firsts(self, commits: set[tuple[str, str, str]]) -> set[tuple[str, int]]:
        """Mark the first successful deploy of each (service, environment, commit) again."""
        changed: set[tuple[str, int]] = set()
        for service, environment, commit_key in sorted(commits):  # one index range each
            rows = self.conn.execute(
                self._statement("commit_rows"),
                {"service": service, "environment": environment, "commit_key": commit_key},
            ).all()
            seen = False
            for row in rows:
                first = 0
                if row.kind == "deploy" and row.state == "succeeded" and not seen:
                    seen = True
                    first = 1
                lead = None
                if first and row.committed_at is not None:
                    lead = float(row.finished_at) - float(row.committed_at)
                if first != row.first or lead != row.lead:
                    self.conn.execute(
                        self._statement("set_first"), {"row": row.id, "first": first, "lead": lead}
                    )
                    changed.add((environment, int(row.day)))
        return changed

    def _rechain_episodes(self, streams: Mapping[tuple[str, str], float | None]) -> None:
        """Failure episodes of each (service, environment), from the last good deployment
        before ``since`` (``None``: from the start) on.

        An episode's first failing deployment (failed, rolled back, or named by an
        incident) is marked, with the time until the next good one.
        """
        for (service, environment), since in streams.items():
            key = {"service": service, "environment": environment}
            start = -math.inf
            if since is not None:
                found = self.conn.execute(
                    self._statement("good_before"), {**key, "since": since}
                ).scalar()
                start = float(found) if found is not None else -math.inf
            rows = self.conn.execute(self._statement("stream"), {**key, "since": start}).all()
            changes = []
            opened: Any = None  # the first failing row of the episode under way
            decided: dict[int, tuple[int, float | None]] = {}
            for row in rows:
                if row.state != "succeeded" or row.named:
                    if opened is None:
                        opened = row
                        decided[row.id] = (1, None)
                    else:
                        decided[row.id] = (0, None)
                else:
                    if opened is not None:
                        took = float(row.finished_at) - float(opened.finished_at)
                        decided[opened.id] = (1, took)
                        opened = None
                    decided[row.id] = (0, None)
            for row in rows:
                episode, after = decided[row.id]
                if (episode, after) != (row.episode, row.restored):
                    changes.append({"row": row.id, "first_failure": episode, "after": after})
            if changes:
                self.conn.execute(self._statement("set_episode"), changes)

    def _relink_pipelines(
        self, pipelines: dict[tuple[str, str, str], float]
    ) -> set[tuple[str, int]]:
        """Each run from the earliest refreshed one on: when its pipeline's run before began."""
        changed: set[tuple[str, int]] = set()
        for (service, environment, kind), since in pipelines.items():
            key = {"service": service, "environment": environment, "kind": kind, "since": since}
            before = self.conn.execute(self._statement("run_before"), key).scalar()
            rows = self.conn.execute(self._statement("runs_since"), key).all()
            previous = float(before) if before is not None else None
            last_start: float | None = None
            for row in rows:
                start = float(row.started_at)
                if last_start is not None and start != last_start:
                    previous = last_start  # equal starts (one train) share the run before
                value = previous
                if value != (float(row.prev_started) if row.prev_started is not None else None):
                    self.conn.execute(self._statement("set_prev"), {"row": row.id, "prev": value})
                    changed.add((environment, int(row.day)))
                last_start = start
        return changed

    # -- the sums of whole days ---------------------------------------------------
    def _day_sums(self) -> Select[Any]:
        f = delivery_facts.c
        keys = (f.environment, f.day, f.service, f.kind)
        return select(*keys, *fact_sums()).group_by(*keys)

    def _people_sums(self) -> Select[Any]:
        f = delivery_facts.c
        person = func.coalesce(f.person, "")
        return (
            select(f.environment, f.day, person.label("person"), func.count().label("releases"))
            .where(f.position == 0)
            .group_by(f.environment, f.day, person)
        )

    def _step_sums(self) -> Select[Any]:
        s = delivery_steps.c
        return select(
            s.environment, s.day, s.service, s.manual, func.sum(s.runs).label("runs")
        ).group_by(s.environment, s.day, s.service, s.manual)

    # -- everything at once ---------------------------------------------------------
    def rebuild_delivery(self) -> dict[str, int]:
        """Recompute every delivery fact and sum from the records (set-wide statements)."""
        self._lock_facts()
        for table in (
            delivery_slips,
            delivery_days,
            delivery_people,
            delivery_step_days,
            delivery_facts,
            delivery_gates,
            delivery_steps,
        ):
            self.conn.execute(delete(table))
        source = self._fact_source(true(), rework=False).subquery("src")
        s = source.c
        succeeded_deploy = and_(s.kind == "deploy", s.state == "succeeded")
        order = func.row_number().over(
            partition_by=(s.service, s.environment, s.commit_key, succeeded_deploy),
            order_by=(s.finished_at, s.deployment_id),
        )
        ranked = select(
            *s,
            flag(succeeded_deploy).label("good"),
            order.label("rank"),
            case(
                (
                    s.started_at.is_not(None),
                    func.max(s.started_at).over(
                        partition_by=(s.service, s.environment, s.kind),
                        order_by=(s.started_at, s.deployment_id),
                        rows=(None, -1),
                    ),
                ),
                else_=null(),
            ).label("prev_started"),
        ).subquery("ranked")
        k = ranked.c
        first = and_(k.good == 1, k.rank == 1)
        columns = [k[name] for name in s.keys()]
        self.conn.execute(
            insert(delivery_facts).from_select(
                [*s.keys(), "first", "lead", "prev_started"],
                select(
                    *columns,
                    flag(first),
                    case((first, k.finished_at - k.committed_at)),
                    k.prev_started,
                ),
            )
        )
        self._sweep_rework()
        self.conn.execute(self._rework_any(true()))
        self._fix_train_gaps()
        f = delivery_facts.c
        every: dict[tuple[str, str], float | None] = {
            (service, environment): None
            for service, environment in self.conn.execute(
                select(f.service, f.environment).distinct()
            )
        }
        self._rechain_episodes(every)
        gates = self._gate_source(true()).subquery("gates")
        self.conn.execute(
            insert(delivery_gates).from_select(list(gates.c.keys()), select(*gates.c))
        )
        slips = self._slip_source(true()).subquery("slips")
        self.conn.execute(
            insert(delivery_slips).from_select(list(slips.c.keys()), select(*slips.c))
        )
        steps = self._step_source(true()).subquery("steps")
        self.conn.execute(
            insert(delivery_steps).from_select(list(steps.c.keys()), select(*steps.c))
        )
        for table, sums in (
            (delivery_days, self._day_sums()),
            (delivery_people, self._people_sums()),
            (delivery_step_days, self._step_sums()),
        ):
            source_sums = sums.subquery("sums")
            self.conn.execute(
                insert(table).from_select(list(source_sums.c.keys()), select(*source_sums.c))
            )
        return {
            table.name: int(self.conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (
                delivery_facts,
                delivery_gates,
                delivery_steps,
                delivery_days,
                delivery_slips,
            )
        }

    def _sweep_rework(self) -> None:
        """Mark every deploy that began while an incident of its service was open there.

        One sweep per service and environment over time, instead of a look-up per
        deploy: an incident's opening adds 1, its resolution takes 1 away, and a
        deploy that starts where the running sum is above 0 began during one. At
        equal times the incidents go first (``opened_at <= start < resolved_at``).
        """
        f, i = delivery_facts.c, incidents.c
        one, zero = literal(1, Integer()), literal(0, Integer())
        starts = select(
            f.id.label("row"),
            f.service.label("service"),
            f.environment.label("environment"),
            f.started_at.label("at"),
            one.label("late"),
            zero.label("delta"),
        ).where(f.kind == "deploy", f.state != "cancelled", f.started_at.is_not(None))
        opened, resolved = (
            select(cast(null(), Integer), i.service, i.environment, seconds(at), zero, delta).where(
                i.service.is_not(None), at.is_not(None)
            )
            for at, delta in ((i.opened_at, one), (i.resolved_at, literal(-1, Integer())))
        )
        events = union_all(starts, opened, resolved).subquery("rework_events")
        e = events.c
        swept = select(
            e.row,
            func.sum(e.delta)
            .over(partition_by=(e.service, e.environment), order_by=(e.at, e.late), rows=(None, 0))
            .label("open_incidents"),
        ).subquery("rework_swept")
        during = select(swept.c.row).where(swept.c.row.is_not(None), swept.c.open_incidents > 0)
        self.conn.execute(update(delivery_facts).where(f.id.in_(during)).values(rework=1))

    def _fix_train_gaps(self) -> None:
        """Runs that started at the same instant (rows of one train) share the run before.

        The window gives the second of two equal starts the first's start as
        its previous one; the incremental path gives both the run before them.
        """
        f = delivery_facts.c
        same = delivery_facts.alias("same_start")
        tied = exists(
            select(literal(1)).where(
                same.c.service == f.service,
                same.c.environment == f.environment,
                same.c.kind == f.kind,
                same.c.started_at == f.started_at,
                same.c.id != f.id,
            )
        )
        if not self.conn.execute(select(literal(1)).where(tied).limit(1)).first():
            return
        earlier = delivery_facts.alias("earlier_start")
        self.conn.execute(
            update(delivery_facts)
            .where(f.prev_started == f.started_at)
            .values(
                prev_started=select(func.max(earlier.c.started_at))
                .where(
                    earlier.c.service == f.service,
                    earlier.c.environment == f.environment,
                    earlier.c.kind == f.kind,
                    earlier.c.started_at < f.started_at,
                )
                .scalar_subquery()
            )
        )

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
  those rows per environment and UTC day (and service, person). A change to
  some rows adds its difference to the sums (what the rows add after it, less
  what they added before: :mod:`interlock.storage.facts.day_sums`).

:meth:`DeliveryQueries.refresh_delivery` recomputes the rows of some
deployments (and moves the sums of the days they touch); :meth:`rebuild_delivery`
recomputes everything in a few set-wide statements (the migration that adds
these tables, and tools that write records in bulk, use it). A test holds the
two to the same answer. The statements both run are built in
:mod:`interlock.storage.facts.delivery_sql`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    inspect,
    literal,
    null,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.schema import CreateIndex, DropIndex

from interlock.storage.base import Prepared
from interlock.storage.facts.day_sums import DaySums
from interlock.storage.facts.delivery_sql import (
    FACTS_LOCK,
    Call,
    DeliveryStatements,
    flag,
    insert_rows,
)
from interlock.storage.facts.stale import StaleFacts
from interlock.storage.metric_days import counting_paused
from interlock.storage.metric_scope import reached, seconds
from interlock.storage.metric_totals import forget_totals_on, forgetting
from interlock.storage.schema import (
    delivery_days,
    delivery_facts,
    delivery_gates,
    delivery_manual,
    delivery_people,
    delivery_slips,
    delivery_step_days,
    delivery_steps,
    incidents,
)

# The PostgreSQL advisory locks under which delivery facts change (the others:
# storage/leader.py). FACTS_LOCK (one bigint key) covers every fact; a
# transaction that only finished deployments takes it shared, and then, in the
# two-int4 form, FACTS_LOCK with each (service, environment) it refreshes,
# exclusive (see _lock_facts_keyed). The day sums need no lock of their own:
# a refresh adds to them in place (day_sums.py; 727008, their lock before, is
# no longer taken).
_LOCK_ALL = Prepared(text(f"SELECT pg_advisory_xact_lock({FACTS_LOCK})"))


class DeliveryQueries(DeliveryStatements):
    metric_days = True  # the database has ``metric_days`` (False: before migration 0020)
    manual_runs = True  # it has ``delivery_manual`` (False: before migration 0024)

    _facts_locked = False  # this transaction holds the facts lock (PostgreSQL)
    _facts_keyed = False  # it holds it shared, and the keys of what it refreshes

    # -- the rows of some deployments, kept in step --------------------------------
    def _lock_facts(self, *, held: bool = False) -> None:
        """On PostgreSQL, change delivery facts one transaction at a time.

        A refresh deletes and re-inserts rows (a deployment's facts) and
        re-derives rows of other deployments from what it can see.
        Two transactions doing that at once under READ COMMITTED would each
        miss the other's uncommitted rows: duplicate keys, or sums that lack
        one of them. The lock is held until commit; SQLite has one writer anyway.
        Sent with the writes held till now (the releases' first); ``held``: held
        too, when all that follows it is held (a gate's facts, sent with the
        audit chain).
        """
        if self.dialect != "postgresql" or self._facts_locked:
            return
        if held:
            self.send_later(_LOCK_ALL, {})
        else:
            self.send_now((_LOCK_ALL, {}))
        self._facts_locked = True

    def _keyed_locks(self, deployment_ids: list[int]) -> list[Call]:
        """On PostgreSQL, refresh what deployments that just finished change, beside
        other transactions that do the same for other services: the statements that
        take the locks (none on SQLite, or where this transaction holds the facts lock).

        What a refresh re-derives from other rows stays within one (service,
        environment): a commit's first deploy, a pipeline's previous run, a
        failure episode, rework. So the facts lock is taken shared (every other
        change of facts takes it exclusively) and each of the deployments'
        (service, environment) keys exclusively. The sums of a day, which every
        service of an environment adds to, are moved in place, as the last
        statements of the refresh: two transactions adding to one sum's row
        wait only for each other's commit there.
        """
        if self.dialect != "postgresql" or self._facts_locked:
            return []
        calls: list[Call] = []
        if not self._facts_keyed:
            calls.append(("share_facts", {}))
            self._facts_keyed = True
        calls.append(("lock_streams", {"ids": deployment_ids}))
        return calls

    def refresh_delivery(
        self,
        deployment_ids: Collection[int],
        *,
        ended: Collection[int] | None = None,
        keyed: bool = False,
    ) -> None:
        """Recompute the delivery facts of ``deployment_ids``, and move the sums of their
        days by the difference.

        ``ended``: those of them that ended in this transaction (the others, an
        incident's, keep their outcome and times); ``None``: any may have changed.
        Totals saved for the exposition that a changed row falls behind go stale.
        ``keyed``: they all just ended, and nothing else about them changed
        (PostgreSQL locks only their services' keys). Nothing of theirs was then
        derived before (facts and step rows are a finished deployment's, and a
        deployment ends once), and their approval waits are as their decisions
        left them (each decision refreshes its deployment's): what they add is
        only inserted, with nothing read, taken away or deleted first.
        """
        if not deployment_ids:
            return
        ids = sorted(set(deployment_ids))
        exposed = set(ids if ended is None else ended)
        bound = {"ids": self._ids(ids)}
        # Sent together (one round trip on PostgreSQL), in this order: the locks, what
        # the rows added to the day sums before (taken away), the rows deleted, then
        # derived again. The facts' rows last: their triggers lock per-day counts
        # (metric_days) that other deployments finishing at once count in too.
        calls = self._keyed_locks(ids) if keyed else []
        if not keyed:
            self._lock_facts()
            if exposed:
                calls.append(("earliest_end", {"ids": self._ids(sorted(exposed))}))
            for name in (
                "tally_facts",
                "tally_steps",
                "delete_steps",
                "delete_manual",
                "delete_gates",
            ):
                calls.append((name, bound))
            calls.append(("insert_gates", bound))
        calls.append(("insert_steps", bound))
        calls.append(("insert_manual", bound))
        if not keyed:
            calls.append(("delete_facts", bound))
        calls.append(("insert_facts", bound))
        found = dict(zip([name for name, _ in calls], self._run_together(calls), strict=True))
        sums = DaySums()  # what the rows add to the day sums: taken away, then added back
        sums.facts(found.get("tally_facts", []), -1)
        sums.step_rows(found.get("tally_steps", []), -1)
        sums.step_rows(found["insert_steps"], 1)
        ends = found.get("earliest_end")
        behind: float | None = ends[0][0] if ends else None  # the earliest end exposed
        rows = found["insert_facts"]
        commits: set[tuple[str, str, str]] = set()
        pipelines: dict[tuple[str, str, str], float] = {}  # the earliest start refreshed
        streams: dict[tuple[str, str], float | None] = {}  # the earliest end refreshed
        own: set[int] = set()  # the rows of these deployments
        for r in rows:
            own.add(r.id)
            if r.deployment_id in exposed:
                behind = _earlier(behind, r.finished_at)
            commits.add((r.service, r.environment, r.commit_key))
            if r.started_at is not None:
                key = (r.service, r.environment, r.kind)
                pipelines[key] = min(pipelines.get(key, r.started_at), r.started_at)
            earliest = streams.get((r.service, r.environment))
            streams[(r.service, r.environment)] = (
                r.finished_at if earliest is None else min(earliest, r.finished_at)
            )
        # What the other rows of their streams are now, read together (none of these
        # reads reads what another statement here changes).
        reworked = [("rework_any", bound)] if any(r.rework for r in rows) else []
        by_commit, by_pipeline, by_stream = (
            self._commit_reads(commits),
            self._pipeline_reads(pipelines),
            self._stream_reads(streams),
        )
        read = self._run_together([*reworked, *by_commit, *by_pipeline, *by_stream])[
            len(reworked) :
        ]
        firsts, moved = self._renumber_firsts(read[: len(by_commit)])
        previous = self._relink_pipelines(read[len(by_commit) : len(by_commit) + len(by_pipeline)])
        episodes = self._episodes(read[len(by_commit) + len(by_pipeline) :])
        behind = _earlier(behind, moved)
        others = sorted({change["row"] for change in (*firsts, *previous)} - own)
        of_others = [("tally_rows", {"rows": self._ids(others)})] if others else []
        # Then the changes, together: the saved totals they fall behind forgotten, what
        # the other rows they change added taken away, and what all of them add now.
        head: list[Call] = [forgetting(behind)] if behind is not None else []
        changes: list[Call] = [*head, *of_others]
        changes += [("set_first", row) for row in firsts]
        changes += [("set_prev", row) for row in previous]
        changes += [("set_episode", row) for row in episodes]  # (no sum counts episodes)
        changes += [("tally_facts", bound), *of_others]
        done = self._run_together(changes)
        if others:
            sums.facts(done[len(head)], -1)
            sums.facts(done[-1], 1)
        sums.facts(done[-1 - len(of_others)], 1)
        added: list[Call] = []
        sums.add(lambda name, rows: added.extend((name, row) for row in rows))
        # Held, and sent with the commit's last statements (the audit chain's): a
        # person's row (every deployment of theirs that day adds to it) is then
        # locked for that round trip only, not while this transaction's client
        # prepares and sends the rest (nothing reads the sums before the commit).
        for call in added:
            self.send_later(*self._prepared(call))

    def _refresh_slip(self, deployment_id: int) -> None:
        """A deployment started: if its release was scheduled, how late it began.

        One look-up for a release that was not scheduled (most of them).
        """
        found = self._run("scheduled_release_of", {"deployment": deployment_id})
        if not found:
            return
        self._lock_facts()
        bound = {"release": found[0][0]}
        self._run("delete_slip", bound)
        self._run("insert_slip", bound)

    def _refresh_gates(self, deployment_id: int) -> None:
        """An approval gate of ``deployment_id`` was decided: record its wait."""
        self._lock_facts()
        bound = {"deployment": deployment_id}  # (on PostgreSQL, sent with the audit chain)
        self.send_later(self._statement("delete_gates_of"), bound)
        self.send_later(self._statement("insert_gates_of"), bound)

    def project_delivery_facts(self) -> None:
        """Bring the delivery facts up to date with what this transaction changed.

        Runs once, just before commit (after the releases' rows, before the
        audit chain), so the facts lock is held only for the transaction's
        last moments, and nothing that holds it waits on anything but the
        audit head: no lock cycle with a transaction holding a release's row.
        """
        stale = self.stale
        if not stale:
            return
        self.stale = StaleFacts()
        keyed = not (stale.gates or stale.incidents)  # only deployments that finished
        only_gates = not (stale.incidents or stale.finished or stale.started)
        only_gates = only_gates and stale.behind is None
        if not keyed:  # (a start alone costs one look-up, and locks only if scheduled)
            self._lock_facts(held=only_gates)  # (gates alone: all their statements are held)
        if stale.behind is not None:  # an incident opened or resolved in the past
            forget_totals_on(self.conn, stale.behind)
        ids = set(stale.finished)
        for service, environment, opened_at, deployment_id in stale.incidents:
            ids |= self._incident_deployments(service, environment, opened_at, deployment_id)
        for deployment_id in sorted(stale.started):
            self._refresh_slip(deployment_id)
        for deployment_id in sorted(stale.gates - ids):  # a refresh re-derives gates too
            self._refresh_gates(deployment_id)
        self.refresh_delivery(ids, ended=stale.finished, keyed=keyed)

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
            since = {"service": service, "environment": environment, "since": opened_at.timestamp()}
            found.update(row.deployment_id for row in self._run("started_since", since))
        return found

    def _commit_reads(self, commits: set[tuple[str, str, str]]) -> list[Call]:
        """The rows of each (service, environment, commit), one index range each."""
        names = ("service", "environment", "commit_key")
        return [("commit_rows", dict(zip(names, key, strict=True))) for key in sorted(commits)]

    def _renumber_firsts(self, found: list[list[Any]]) -> tuple[list[dict[str, Any]], float | None]:
        """Which rows mark the first successful deploy of each (service, environment,
        commit) now (``found``: the rows of each, :meth:`_commit_reads`): the changes to
        make (``set_first``), and the earliest end of a row whose lead time changes."""
        changes: list[dict[str, Any]] = []
        earliest: float | None = None
        for rows in found:
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
                    changes.append({"row": row.id, "first": first, "lead": lead})
                    earliest = _earlier(earliest, row.finished_at)
        return changes, earliest

    def _rechain_episodes(self, streams: Mapping[tuple[str, str], float | None]) -> None:
        """Failure episodes of each (service, environment), from the last good deployment
        before ``since`` (``None``: from the start) on, marked again (one stream at a
        time: a rebuild goes through every one)."""
        for name, params in self._stream_reads(streams):
            self._run_many("set_episode", self._episodes([self._run(str(name), params)]))

    def _stream_reads(self, streams: Mapping[tuple[str, str], float | None]) -> list[Call]:
        """The deployments of each (service, environment) from the last good one before
        ``since`` (``None``: from the start) on."""
        return [
            (
                "stream",
                {
                    "service": service,
                    "environment": environment,
                    "since": -math.inf if since is None else since,  # (no good one before)
                },
            )
            for (service, environment), since in streams.items()
        ]

    def _episodes(self, found: list[list[Any]]) -> list[dict[str, Any]]:
        """The changes (``set_episode``) to the failure episodes of streams (``found``:
        the rows of each, :meth:`_stream_reads`).

        An episode's first failing deployment (failed, rolled back, or named by an
        incident) is marked, with the time until the next good one.
        """
        changes = []
        for rows in found:
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
        return changes

    def _pipeline_reads(self, pipelines: dict[tuple[str, str, str], float]) -> list[Call]:
        """Each pipeline's runs from the earliest refreshed one on."""
        names = ("service", "environment", "kind", "since")
        return [
            ("runs_since", dict(zip(names, (*key, since), strict=True)))
            for key, since in pipelines.items()
        ]

    def _relink_pipelines(self, found: list[list[Any]]) -> list[dict[str, Any]]:
        """Each run from the earliest refreshed one on (``found``: the runs of each
        pipeline, :meth:`_pipeline_reads`): when its pipeline's run before began. The
        changes to make (``set_prev``)."""
        changes: list[dict[str, Any]] = []
        for rows in found:
            before = rows[0].before if rows else None  # (the same in every row)
            previous = float(before) if before is not None else None
            last_start: float | None = None
            for row in rows:
                start = float(row.started_at)
                if last_start is not None and start != last_start:
                    previous = last_start  # equal starts (one train) share the run before
                value = previous
                if value != (float(row.prev_started) if row.prev_started is not None else None):
                    changes.append({"row": row.id, "prev": value})
                last_start = start
        return changes

    # -- everything at once ---------------------------------------------------------
    def rebuild_delivery(self, *, forget_totals: bool = True, bulk: bool = False) -> dict[str, int]:
        """Recompute every delivery fact and sum from the records (set-wide statements).

        Totals saved for the exposition go stale (``forget_totals`` False: there are
        none yet, in the migrations before the one that adds them). The per-day
        counts (``metric_days``) are counted once at the end, not row by row.
        ``bulk``: the indexes of ``delivery_facts`` are dropped while its rows are
        written and made again after (faster for millions of rows; on PostgreSQL
        readers of the table wait for the commit).
        """
        self._lock_facts()
        if not self.metric_days:  # (migrations before 0020)
            return self._rebuild_delivery(forget_totals=forget_totals, bulk=bulk)
        with counting_paused(self.conn, ("delivery_facts", "delivery_gates")):
            return self._rebuild_delivery(forget_totals=forget_totals, bulk=bulk)

    def _rebuild_delivery(self, *, forget_totals: bool, bulk: bool) -> dict[str, int]:
        for table in (
            delivery_slips,
            delivery_days,
            delivery_people,
            delivery_step_days,
            delivery_facts,
            delivery_gates,
            delivery_steps,
            *([delivery_manual] if self.manual_runs else []),
        ):
            self.conn.execute(delete(table))
        if forget_totals:
            forget_totals_on(self.conn, None)
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
        if bulk:
            for index in delivery_facts.indexes:
                self.conn.execute(DropIndex(index))
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
        if bulk:
            for index in delivery_facts.indexes:
                self.conn.execute(CreateIndex(index))
            self.conn.execute(text("ANALYZE delivery_facts"))  # the planner's counts, now
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
        for table, rows in (
            (delivery_gates, self._gate_source(true())),
            (delivery_slips, self._slip_source(true())),
            (delivery_steps, self._step_source(true())),
            *([(delivery_manual, self._manual_source(true()))] if self.manual_runs else []),
            (delivery_days, self._day_sums()),
            (delivery_people, self._people_sums()),
            (delivery_step_days, self._step_sums()),
        ):
            made_after = bulk and table is delivery_manual  # its index: in value order
            if made_after:
                for index in table.indexes:
                    self.conn.execute(DropIndex(index))
            self.conn.execute(insert_rows(table, rows))
            if made_after:
                for index in table.indexes:
                    self.conn.execute(CreateIndex(index))
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
        ).where(f.kind == "deploy", reached(f.state), f.started_at.is_not(None))
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


def _earlier(a: Any, b: Any) -> float | None:
    if a is None:
        return None if b is None else float(b)
    return float(a) if b is None else min(float(a), float(b))


def manual_runs_on(conn: Any) -> None:
    """Fill ``delivery_manual`` from the records over a bare connection (migration 0024)."""

    class Derive(DeliveryStatements):
        def __init__(self) -> None:
            self.conn = conn
            self.dialect = conn.dialect.name
            self.read_only = False

    conn.execute(insert_rows(delivery_manual, Derive()._manual_source(true())))


def rebuild_delivery_on(conn: Any) -> dict[str, int]:
    """Derive every delivery fact again over a bare connection (what migrations do)."""

    counted = inspect(conn).has_table("metric_days")  # (added by migration 0020)
    manual = inspect(conn).has_table("delivery_manual")  # (added by migration 0024)

    class Rebuild(DeliveryQueries):
        def __init__(self) -> None:
            self.conn = conn
            self.dialect = conn.dialect.name
            self.read_only = False
            self.metric_days = counted
            self.manual_runs = manual
            self._later = []

    return Rebuild().rebuild_delivery(forget_totals=False)

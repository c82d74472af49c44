"""The statements of the delivery facts, built once per dialect.

:mod:`interlock.storage.facts.delivery` runs them: the rows of some deployments
brought up to date as their records change, or everything derived again.
Here are what those rows hold and how they are computed from the records:
each ``_build_<name>`` method builds the statement that
:meth:`DeliveryStatements._statement` hands out, compiled once per dialect and
run through the driver's cursor (:class:`~interlock.storage.base.Prepared`): a
refresh runs some fifteen of them as a deployment ends, and SQLAlchemy's own
execution of each would cost several times what the database spends on it.
A list of ids is one parameter (:func:`among`): an array on PostgreSQL, an IN
list on SQLite of one of a few lengths (:func:`list_params`).
"""

from __future__ import annotations

import json
import math
from collections import namedtuple
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    Table,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ColumnElement, Select, visitors
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import BindParameter, ClauseList, Grouping

from interlock.storage.base import Prepared, PreparedResult, QueryBase
from interlock.storage.metric_scope import (
    DECIDED,
    DEPLOYING,
    NOT_REACHED,
    count_where,
    ran_a_step,
    reached,
    seconds,
)
from interlock.storage.schema import (
    artifacts,
    delivery_days,
    delivery_facts,
    delivery_gates,
    delivery_manual,
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

# The PostgreSQL advisory lock under which delivery facts change (see delivery.py).
FACTS_LOCK = 727005
DEPLOYMENT: BindParameter[Any] = bindparam("deployment", type_=Integer)  # one deployment's id
Call = tuple["str | Prepared", Mapping[str, Any]]  # a statement (by name) and its parameters
_STATEMENTS: dict[tuple[str, str, int | None], Prepared] = {}
_ROW_TYPES: dict[tuple[str, ...], Any] = {}  # a named tuple per shape of result

FAILED = ("failed", "rolled_back")
DAY = 86400


def day_of(value: ColumnElement[Any], dialect: str) -> ColumnElement[int]:
    """The UTC day number of epoch seconds (the floor of seconds / 86400)."""
    days = value / literal(float(DAY), Float())
    if dialect == "postgresql":
        return cast(func.floor(days), Integer)
    return cast(days, Integer)  # SQLite truncates: the floor for times after 1970


def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def among(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """``column`` is one of the integers of the list parameter ``name``: on PostgreSQL
    an array (``= ANY(...)``); on SQLite an IN list, which :func:`fixed_lists` turns
    into one of a given length (SQLite's planner looks each up by its key)."""
    if dialect == "postgresql":
        return column == func.any(cast(bindparam(name), postgresql.ARRAY(Integer)))
    return column.in_(bindparam(name, expanding=True))


def fixed_lists(statement: Any, width: int | None) -> Any:
    """``statement`` with its IN lists as a :class:`~interlock.storage.base.Prepared`
    statement can carry them (SQLAlchemy otherwise expands them as each statement
    runs): a list of constants (``state IN ('failed', ...)``) as its bound values; a
    list parameter ``x`` (:func:`among`) as ``width`` parameters ``x__0``, ``x__1``...
    (:func:`list_params`), or for ``width`` 0 a JSON array ``x`` (``IN (SELECT value
    FROM json_each(...))``: any number of ids, but no longer looked up first)."""
    made: dict[str, Any] = {}

    def fixed(element: Any, **_: Any) -> Any:
        if not (isinstance(element, BindParameter) and element.expanding):
            return None
        if not element.required:
            values: Sequence[Any] = element.value or ()
            return Grouping(ClauseList(*(literal(v, element.type) for v in values)))
        key = element.key
        if key not in made:
            if width:
                names = (bindparam(f"{key}__{n}", type_=Integer()) for n in range(width))
                made[key] = Grouping(ClauseList(*names))
            else:
                made[key] = (
                    select(literal_column("value"))
                    .select_from(func.json_each(bindparam(key)))
                    .scalar_subquery()
                )
        return made[key]

    return visitors.replacement_traverse(statement, {}, fixed)


WIDEST = 1024  # ids in an IN list of their own; more go as one JSON array (SQLite)
LISTS = ("ids", "rows")  # the list parameters of the statements


def list_params(params: Mapping[str, Any]) -> tuple[int | None, Mapping[str, Any]]:
    """SQLite: the width of the IN list a statement's list parameter needs (its length
    rounded up to a power of two, so that a few statements serve any number; ``None``:
    it has none), and the parameters with the list spread out (the last id repeated)."""
    for key in LISTS:
        values = params.get(key)
        if values is None:
            continue
        if len(values) > WIDEST:
            return 0, {**params, key: json.dumps(list(values))}
        width = 1 << max(len(values) - 1, 0).bit_length()
        spread = {f"{key}__{n}": values[min(n, len(values) - 1)] for n in range(width)}
        return width, {**params, **spread}
    return None, params


def _named(found: PreparedResult) -> list[Any]:
    """The rows of a prepared statement, as named tuples."""
    if not found.rows:
        return []
    shape = tuple(found.keys)
    row = _ROW_TYPES.get(shape)
    if row is None:
        row = _ROW_TYPES.setdefault(shape, namedtuple("Row", shape, rename=True))
    return [row._make(values) for values in found.rows]


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
    attempted = and_(lead_row, reached(f.state))
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


SUMMED = tuple(column.name for column in fact_sums())  # the per-day sums' own columns


def insert_rows(table: Table, rows: Select[Any]) -> Insert:
    """``INSERT INTO table SELECT rows``: the select's labels name the columns."""
    source = rows.subquery()
    return insert(table).from_select(list(source.c.keys()), select(*source.c))


class DeliveryStatements(QueryBase):
    """The sources and statements of the delivery facts (see the module docstring)."""

    # -- the rows of some deployments --------------------------------------------
    def _fact_source(
        self, where: ColumnElement[bool], *, rework: bool = True, by_id: bool = False
    ) -> Select[Any]:
        """The columns of ``delivery_facts`` for the finished deployments ``where`` selects.

        ``first``, ``prev_started``, ``rework_any`` and the episode are left for
        the caller (they depend on other rows); the rest is this deployment's own.
        """
        d, ri, r, a = deployments.c, release_items.c, releases.c, artifacts.c
        started, finished = seconds(d.started_at), seconds(d.finished_at)
        state = case(
            (and_(d.state.in_(FAILED), ~ran_a_step(d.id)), literal(NOT_REACHED)),
            else_=d.state,
        )
        deploying = and_(d.kind == "deploy", reached(state), d.started_at.is_not(None))
        return (
            select(
                d.id.label("deployment_id"),
                d.release_id.label("release_id"),
                ri.position.label("position"),
                ri.service.label("service"),
                d.environment.label("environment"),
                d.kind.label("kind"),
                state.label("state"),
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
                *self._filters(
                    by_id,
                    d.kind.in_(DEPLOYING),
                    d.finished_at.is_not(None),
                    d.environment.is_not(None),
                ),
            )
        )

    def _gate_source(self, where: ColumnElement[bool], *, by_id: bool = False) -> Select[Any]:
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
                *self._filters(
                    by_id,
                    n.kind == "gate",
                    n.executor == "approval",
                    n.state.in_(DECIDED),
                    n.started_at.is_not(None),
                    n.finished_at.is_not(None),
                ),
            )
        )

    def _step_source(self, where: ColumnElement[bool], *, by_id: bool = False) -> Select[Any]:
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
                # (a runbook step waits for a runbook run, whose own steps count)
                *self._ended_steps(by_id, n.executor != "runbook"),
            )
            .group_by(n.deployment_id, environment, day, service, manual)
        )

    def _manual_source(self, where: ColumnElement[bool], *, by_id: bool = False) -> Select[Any]:
        """Manual step runs of finished deployments (any kind) that ended: their wait
        if signed off (succeeded; 0 if negative), else NULL (the manual-step ranking)."""
        n, d = nodes.c, deployments.c
        took = seconds(n.finished_at) - seconds(n.started_at)
        wait = case(
            (n.state == "succeeded", case((took < 0, literal(0.0, Float())), else_=took)),
        )
        return (
            select(
                n.id.label("node_id"),
                n.deployment_id.label("deployment_id"),
                func.coalesce(d.environment, "").label("environment"),
                func.coalesce(d.runbook, "").label("runbook"),
                func.coalesce(n.service, "").label("service"),
                n.name.label("name"),
                seconds(n.finished_at).label("finished_at"),
                wait.label("wait"),
            )
            .select_from(nodes.join(deployments, d.id == n.deployment_id))
            .where(
                where,
                *self._ended_steps(by_id, n.executor == "manual"),
            )
        )

    def _ended_steps(self, by_id: bool, executor: ColumnElement[bool]) -> list[ColumnElement[bool]]:
        """:meth:`_filters` of the steps (``executor``: which) that ran and ended in
        finished deployments (``nodes`` joined to ``deployments``)."""
        n, d = nodes.c, deployments.c
        return self._filters(
            by_id,
            d.finished_at.is_not(None),
            n.kind == "step",
            executor,
            n.started_at.is_not(None),
            n.finished_at.is_not(None),
        )

    def _filters(self, by_id: bool, *conditions: ColumnElement[bool]) -> list[ColumnElement[bool]]:
        """A source's conditions; for some deployments' rows (``by_id``) on SQLite each as
        ``likely(...)``, which the planner cannot look up in an index: it then looks the
        ids up by their key, not every finished row up in an index on (kind, finished_at)."""
        if not by_id or self.dialect == "postgresql":
            return list(conditions)
        return [func.likely(condition, type_=Boolean()) for condition in conditions]

    def _statement(self, name: str, width: int | None = None) -> Prepared:
        """The incremental path's statement ``name``, built once per dialect (and on
        SQLite per width of its IN list: :func:`list_params`)."""
        key = (self.dialect, name, width)
        found = _STATEMENTS.get(key)
        if found is None:
            built = fixed_lists(getattr(self, f"_build_{name}")(), width)
            found = _STATEMENTS[key] = Prepared(built)
        return found

    def _prepared(self, call: Call) -> tuple[Prepared, Mapping[str, Any]]:
        """A call as its prepared statement and parameters."""
        name, params = call
        if not isinstance(name, str):
            return name, params
        if self.dialect == "postgresql":
            return self._statement(name), params
        width, spread = list_params(params)
        return self._statement(name, width), spread

    def _run(self, name: str, params: Mapping[str, Any]) -> list[Any]:
        """Run statement ``name``; the rows it returned, as named tuples. On PostgreSQL the
        writes held till now (:meth:`send_later`) go out first, in its round trip: the
        statements reach the server in the order the transaction made them (the release's
        row before the facts' locks)."""
        return self._run_together([(name, params)])[0]

    def _run_together(self, calls: Sequence[Call]) -> list[list[Any]]:
        """Run statements (by name, or prepared) in order, in one round trip on PostgreSQL
        (:meth:`send_now`, behind the writes held till now: none's parameters depend on
        another's answer); the rows each returned, as named tuples."""
        prepared = [self._prepared(call) for call in calls]
        return [_named(found) for found in self.send_now(*prepared)]

    def _run_many(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run statement ``name`` (no list parameter) once per parameter set."""
        if rows:
            if self._later:
                self.send_now()  # the writes held till now first, in their order
            self._statement(name).run_many(self.conn, rows)

    def _ids(self, values: Sequence[int]) -> list[int]:
        """Ids as the value of a statement's ``ids`` or ``rows`` parameter."""
        return list(values)

    def _among(self, column: ColumnElement[Any], name: str = "ids") -> ColumnElement[bool]:
        return among(column, name, self.dialect)

    # The statements (bound parameters: ids, rows, environment, day, service, kind, ...).
    def _build_tally_facts(self) -> Any:
        return self._tally(self._among(delivery_facts.c.deployment_id))

    def _build_tally_rows(self) -> Any:
        return self._tally(self._among(delivery_facts.c.id, "rows"))

    def _tally(self, where: ColumnElement[bool]) -> Any:
        """What some ``delivery_facts`` rows add to the day sums: per (environment, day,
        service, kind, person), their number (``rows``) and their :func:`fact_sums`
        (whose ``attempted`` is also what they add to ``delivery_people``)."""
        f = delivery_facts.c
        who = func.coalesce(f.person, "")
        keys = (f.environment, f.day, f.service, f.kind)
        return (
            select(*keys, who.label("who"), func.count().label("rows"), *fact_sums())
            .where(where)
            .group_by(*keys, who)
        )

    def _build_tally_steps(self) -> Any:
        s = delivery_steps.c
        keys = (s.environment, s.day, s.service, s.manual)
        return (
            select(*keys, func.sum(s.runs).label("runs"))
            .where(self._among(s.deployment_id))
            .group_by(*keys)
        )

    def _upsert(self, table: Table, added: tuple[str, ...]) -> Any:
        """``INSERT`` a row of ``table``, or add its ``added`` columns to the row already
        there (one statement: concurrent additions to one row wait for each other's
        commit, and each adds to what the other left)."""
        statement: Any = (postgresql if self.dialect == "postgresql" else sqlite).insert(table)
        return statement.on_conflict_do_update(
            index_elements=list(table.primary_key.columns),
            set_={name: table.c[name] + statement.excluded[name] for name in added},
        )

    def _build_add_days(self) -> Any:
        return self._upsert(delivery_days, SUMMED)

    def _build_add_people(self) -> Any:
        return self._upsert(delivery_people, ("releases",))

    def _build_add_steps(self) -> Any:
        return self._upsert(delivery_step_days, ("runs",))

    def _build_drop_days(self) -> Any:
        """The sums of a group whose last row left it (no fact of it remains)."""
        t, f = delivery_days.c, delivery_facts.c
        key = (t.environment, t.day, t.service, t.kind)
        names = ("environment", "day", "service", "kind")
        return delete(delivery_days).where(
            *(column == bindparam(name) for column, name in zip(key, names, strict=True)),
            ~exists(
                select(literal(1)).where(
                    f.environment == t.environment,
                    f.day == t.day,
                    f.service == t.service,
                    f.kind == t.kind,
                )
            ),
        )

    def _build_drop_people(self) -> Any:
        t = delivery_people.c
        return delete(delivery_people).where(
            t.environment == bindparam("environment"),
            t.day == bindparam("day"),
            t.person == bindparam("person"),
            t.releases == 0,
        )

    def _build_drop_steps(self) -> Any:
        t = delivery_step_days.c
        return delete(delivery_step_days).where(
            t.environment == bindparam("environment"),
            t.day == bindparam("day"),
            t.service == bindparam("service"),
            t.manual == bindparam("manual"),
            t.runs == 0,
        )

    # PostgreSQL only (see DeliveryQueries._keyed_locks): the facts lock shared, and the
    # key of each (service, environment) of some deployments, exclusive. One statement
    # each, keys in one order (their hashes'): no lock cycle between two of them.
    def _build_share_facts(self) -> Any:
        return text(f"SELECT pg_advisory_xact_lock_shared({FACTS_LOCK})").columns(column("locked"))

    def _build_lock_streams(self) -> Any:
        return text(
            f"SELECT pg_advisory_xact_lock({FACTS_LOCK}, k) FROM (SELECT DISTINCT "
            "hashtext(i.service || '/' || d.environment) AS k FROM deployments d "
            "JOIN release_items i ON i.release_id = d.release_id "
            "WHERE d.id = ANY(CAST(:ids AS integer[])) ORDER BY k) AS keyed"
        ).columns(column("locked"))

    def _build_earliest_end(self) -> Any:
        f = delivery_facts.c
        return select(func.min(f.finished_at)).where(self._among(f.deployment_id))

    def _build_delete_facts(self) -> Any:
        return delete(delivery_facts).where(self._among(delivery_facts.c.deployment_id))

    def _build_delete_steps(self) -> Any:
        return delete(delivery_steps).where(self._among(delivery_steps.c.deployment_id))

    def _build_delete_gates(self) -> Any:
        return delete(delivery_gates).where(self._among(delivery_gates.c.deployment_id))

    def _build_delete_gates_of(self) -> Any:
        return delete(delivery_gates).where(delivery_gates.c.deployment_id == DEPLOYMENT)

    def _build_insert_gates_of(self) -> Any:
        return insert_rows(delivery_gates, self._gate_source(nodes.c.deployment_id == DEPLOYMENT))

    def _build_insert_facts(self) -> Any:
        """The rows of some deployments, returning what the refresh re-derives from."""
        f = delivery_facts.c
        return insert_rows(
            delivery_facts, self._fact_source(self._among(deployments.c.id), by_id=True)
        ).returning(
            f.id,
            f.deployment_id,
            f.service,
            f.environment,
            f.kind,
            f.commit_key,
            f.started_at,
            f.finished_at,
            f.rework,
        )

    def _build_insert_steps(self) -> Any:
        """The step rows of some deployments, returning what they add to the day sums
        (as ``tally_steps`` would count them)."""
        s = delivery_steps.c
        return insert_rows(
            delivery_steps, self._step_source(self._among(nodes.c.deployment_id), by_id=True)
        ).returning(s.environment, s.day, s.service, s.manual, s.runs)

    def _build_delete_manual(self) -> Any:
        return delete(delivery_manual).where(self._among(delivery_manual.c.deployment_id))

    def _build_insert_manual(self) -> Any:
        return insert_rows(
            delivery_manual, self._manual_source(self._among(nodes.c.deployment_id), by_id=True)
        )

    def _build_insert_gates(self) -> Any:
        return insert_rows(
            delivery_gates, self._gate_source(self._among(nodes.c.deployment_id), by_id=True)
        )

    def _build_rework_any(self) -> Any:
        return self._rework_any(self._among(delivery_facts.c.deployment_id))

    def _rework_any(self, where: ColumnElement[bool]) -> Any:
        """A deploy is rework when an incident of any of its services was open as it began."""
        f = delivery_facts.c
        reworked = select(f.deployment_id).where(f.rework == 1, where)
        return (
            update(delivery_facts).where(where, f.deployment_id.in_(reworked)).values(rework_any=1)
        )

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

    def _build_runs_since(self) -> Any:
        """The pipeline's runs from ``since`` on, each with when the run before them began."""
        f, earlier = delivery_facts.c, delivery_facts.alias("earlier").c
        before = select(func.max(earlier.started_at)).where(
            earlier.service == bindparam("service"),
            earlier.environment == bindparam("environment"),
            earlier.kind == bindparam("kind"),
            earlier.started_at < bindparam("since"),
        )
        return (
            select(f.id, f.started_at, f.prev_started, before.scalar_subquery().label("before"))
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

    def _build_stream(self) -> Any:
        """A (service, environment)'s deployments that reached it, from the last good one
        before ``since`` on (none: from the start)."""
        f, good = delivery_facts.c, delivery_facts.alias("good").c
        last_good = select(func.max(good.finished_at)).where(
            good.service == bindparam("service"),
            good.environment == bindparam("environment"),
            good.state == "succeeded",
            good.named == 0,
            good.finished_at < bindparam("since"),
        )
        start = func.coalesce(last_good.scalar_subquery(), literal(-math.inf, Float()))
        return (
            select(f.id, f.finished_at, f.state, f.named, f.episode, f.restored)
            .where(
                f.service == bindparam("service"),
                f.environment == bindparam("environment"),
                reached(f.state),
                f.finished_at >= start,
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
        return insert_rows(delivery_slips, self._slip_source(releases.c.id == bindparam("release")))

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
            .where(f.position == 0, reached(f.state))
            .group_by(f.environment, f.day, person)
        )

    def _step_sums(self) -> Select[Any]:
        s = delivery_steps.c
        return select(
            s.environment, s.day, s.service, s.manual, func.sum(s.runs).label("runs")
        ).group_by(s.environment, s.day, s.service, s.manual)

"""Nodes (steps and gates of a deployment), their attempts, logs and leases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Unpack

from sqlalchemy import bindparam, case, column, func, select, text, update

from interlock.domain.plan import NodePlan
from interlock.domain.records import Attempt, Deployment, Node
from interlock.domain.states import NodeState
from interlock.storage.base import (
    Prepared,
    QueryBase,
    found,
    prepared_update,
    run_together,
    update_params,
)
from interlock.storage.changes import NodeChanges
from interlock.storage.deployments import deployment_from
from interlock.storage.schema import attempts, deployments, nodes
from interlock.storage.types import Timestamp

# The statements every step runs are built once (see base.guarded_update).
_DONE = [NodeState.SUCCEEDED.value, NodeState.SKIPPED.value]
# The states by their stored names: a dict look-up, where ``NodeState(name)`` (and a
# member's ``.value``) costs two Python calls, several times for every step.
_STATES = {state.value: state for state in NodeState}
_READY = NodeState.READY.value
# Written as literals, not parameters: the partial indexes (WHERE state = 'ready' /
# 'running') only match a plan that sees the constant, generic plans included.
_IS_READY = text("nodes.state = 'ready'")
_IS_RUNNING = text("nodes.state = 'running'")
_GET_NODE = select(nodes).where(nodes.c.id == bindparam("id"))
_GET_NODE_LOCKED = _GET_NODE.with_for_update()
_STATE_COUNTS = (
    select(nodes.c.state, func.count())
    .where(nodes.c.deployment_id == bindparam("d"))
    .group_by(nodes.c.state)
)
_PHASE_STATE_COUNTS = (
    select(nodes.c.phase, nodes.c.state, func.count())
    .where(nodes.c.deployment_id == bindparam("d"))
    .group_by(nodes.c.phase, nodes.c.state)
)
_PHASE_STATE_COUNTS_RUN = Prepared(_PHASE_STATE_COUNTS)
_DEPLOYMENT_LOCKED_RUN = Prepared(
    select(deployments).where(deployments.c.id == bindparam("d")).with_for_update()
)
# A deployment's row and its count per (phase, state) in one statement, as
# "phase state count" items joined by commas (phases and states are plain words).
_COUNTED = (
    select(nodes.c.phase, nodes.c.state, func.count().label("n"))
    .where(nodes.c.deployment_id == bindparam("d"))
    .group_by(nodes.c.phase, nodes.c.state)
    .subquery()
)
_PROGRESS_RUN = Prepared(
    select(
        deployments,
        select(
            func.group_concat(
                _COUNTED.c.phase
                + " "
                + _COUNTED.c.state
                + " "
                + func.cast(_COUNTED.c.n, nodes.c.state.type),
                ",",
            )
        )
        .scalar_subquery()
        .label("progress"),
    ).where(deployments.c.id == bindparam("d"))
)
_STATE_COUNTS_PHASE = (
    select(nodes.c.state, func.count())
    .where(nodes.c.deployment_id == bindparam("d"), nodes.c.phase == bindparam("phase"))
    .group_by(nodes.c.state)
)
# A done node's dependents: one need fewer each, and those left with none become
# ready, in one statement (the right-hand sides read the row as it was).
_NOW_READY = (nodes.c.state == NodeState.PENDING.value) & (nodes.c.unmet <= 1)
_SATISFY = (
    update(nodes)
    .where(
        nodes.c.deployment_id == bindparam("d"),
        nodes.c.key.in_(bindparam("keys", expanding=True)),
    )
    .values(
        unmet=nodes.c.unmet - 1,
        state=case((_NOW_READY, NodeState.READY.value), else_=nodes.c.state),
        not_before=case(
            (_NOW_READY, bindparam("now", type_=Timestamp())), else_=nodes.c.not_before
        ),
    )
    .returning(nodes.c.id, nodes.c.state, nodes.c.unmet)
)
# The same for a node with one dependent (a pipeline's steps), prepared once.
_SATISFY_ONE = Prepared(
    update(nodes)
    .where(nodes.c.deployment_id == bindparam("d"), nodes.c.key == bindparam("key"))
    .values(
        unmet=nodes.c.unmet - 1,
        state=case((_NOW_READY, NodeState.READY.value), else_=nodes.c.state),
        not_before=case(
            (_NOW_READY, bindparam("now", type_=Timestamp())), else_=nodes.c.not_before
        ),
    )
    .returning(nodes.c.id, nodes.c.state, nodes.c.unmet)
)
# The same, when the worker that finished ``node`` goes on with the dependent it
# makes ready (engine/worker.py): that dependent is leased to it in this statement,
# pending to running, never entering the ready index. Only while its deployment runs
# with nothing that would stop the dependent (a cancel, an abort, a failed node or one
# needing a person: advance would stop or pause it); else it becomes ready as above.
_OTHER = nodes.alias("other")
# Whether the dependent's deployment goes on, worked out once per statement (its
# one-row FROM item, SQLite's UPDATE ... FROM) and read by every column it sets.
_GO = select(
    (
        select(deployments.c.id)
        .where(
            deployments.c.id == bindparam("d"),
            text("deployments.state = 'running'"),
            deployments.c.cancel_requested.is_(False),
            deployments.c.abort_reason.is_(None),
        )
        .exists()
        & ~select(_OTHER.c.id)
        .where(
            _OTHER.c.deployment_id == bindparam("d"),
            text("other.state IN ('failed', 'needs_attention')"),
        )
        .exists()
    ).label("ok")
).subquery("go")
_TAKEN = _NOW_READY & (_GO.c.ok == 1)
_SATISFY_LEASE_RUN = Prepared(
    update(nodes)
    .where(
        nodes.c.deployment_id == bindparam("d"),
        nodes.c.key == bindparam("key"),
        _GO.c.ok.is_not(None),  # (always: it names the FROM item)
    )
    .values(
        unmet=nodes.c.unmet - 1,
        state=case(
            (_TAKEN, NodeState.RUNNING.value),
            (_NOW_READY, NodeState.READY.value),
            else_=nodes.c.state,
        ),
        not_before=case(
            (_NOW_READY, bindparam("now", type_=Timestamp())), else_=nodes.c.not_before
        ),
        attempt=case((_TAKEN, nodes.c.attempt + 1), else_=nodes.c.attempt),
        fence=case((_TAKEN, nodes.c.fence + 1), else_=nodes.c.fence),
        lease_owner=case((_TAKEN, bindparam("w_worker")), else_=nodes.c.lease_owner),
        lease_expires=case(
            (_TAKEN, bindparam("w_expires", type_=Timestamp())), else_=nodes.c.lease_expires
        ),
        started_at=case(
            (_TAKEN, func.coalesce(nodes.c.started_at, bindparam("now", type_=Timestamp()))),
            else_=nodes.c.started_at,
        ),
    )
    .returning(*nodes.c)
)
_COUNT_OFF = (
    update(nodes)
    .where(
        nodes.c.deployment_id == bindparam("d"),
        nodes.c.key.in_(bindparam("keys", expanding=True)),
    )
    .values(unmet=nodes.c.unmet - 1)
)
# Once per service a step finishes; its states as literals (Prepared binds no lists).
_OPEN_SERVICE_NODES_RUN = Prepared(
    select(func.count())
    .select_from(nodes)
    .where(
        nodes.c.deployment_id == bindparam("d"),
        nodes.c.service == bindparam("service"),
        nodes.c.phase == bindparam("phase"),
        text(f"nodes.state NOT IN ({', '.join(repr(s) for s in _DONE)})"),
    )
)
# The next ready node, with its deployment read in the same statement.
_NEXT_READY = (
    select(nodes.c.id, *[c.label(f"d_{c.name}") for c in deployments.c])
    .join(deployments, deployments.c.id == nodes.c.deployment_id)
    .where(
        _IS_READY,
        nodes.c.not_before <= bindparam("now", type_=Timestamp()),
    )
    .order_by(nodes.c.not_before, nodes.c.id)
    .limit(1)
)
_LEASED = {
    "state": NodeState.RUNNING.value,
    "attempt": nodes.c.attempt + 1,
    "fence": nodes.c.fence + 1,
    "lease_owner": bindparam("w_worker"),
    "lease_expires": bindparam("w_expires", type_=Timestamp()),
    "started_at": func.coalesce(nodes.c.started_at, bindparam("now", type_=Timestamp())),
}
_LEASE = (
    update(nodes)
    .where(nodes.c.id == bindparam("w_id"), nodes.c.state == NodeState.READY.value)
    .values(_LEASED)
    .returning(*nodes.c)
)
# PostgreSQL: the next ready node leased by ``interlock_claim`` (migration 0026), returned
# with its deployment, in one round trip. The function takes each candidate's advisory
# lock (try, never wait) before leasing it in a statement of its own, so it never locks
# the row of a node another claim leased meanwhile: ``FOR UPDATE SKIP LOCKED`` did (the
# row's newer version, no longer ready), and held that lock to its commit, which the
# worker running that node then waited for to record its step.
_CLAIMED = func.interlock_claim(
    bindparam("now", type_=Timestamp()),
    bindparam("w_worker"),
    bindparam("w_expires", type_=Timestamp()),
).table_valued(*[column(c.name, c.type) for c in nodes.c], name="claimed")
_LEASE_NEXT_RUN = Prepared(
    select(
        *[_CLAIMED.c[c.name] for c in nodes.c],
        *[c.label(f"d_{c.name}") for c in deployments.c],
    )
    .select_from(_CLAIMED)
    .join(deployments, deployments.c.id == _CLAIMED.c.deployment_id)
)
# The same lease of one node named in advance: a worker keeps the node its step just
# made ready (engine/worker.py), in its own deployment, still ready.
_LEASE_OWN = _LEASE.where(nodes.c.deployment_id == bindparam("w_deployment"))
_NEW_ATTEMPT = attempts.insert()
# What every step runs, through the driver's cursor (see base.Prepared).
_NEXT_READY_RUN = Prepared(_NEXT_READY)
_LEASE_RUN = Prepared(_LEASE)
_LEASE_OWN_RUN = Prepared(_LEASE_OWN)
_NEW_ATTEMPT_RUN = Prepared(
    attempts.insert().values(
        node_id=bindparam("node_id"),
        attempt=bindparam("attempt"),
        worker=bindparam("worker"),
        started_at=bindparam("started_at", type_=Timestamp()),
    )
)
_FINISH_ATTEMPT = (
    update(attempts)
    .where(attempts.c.node_id == bindparam("w_node"), attempts.c.attempt == bindparam("w_attempt"))
    .values(
        finished_at=bindparam("b_finished_at", type_=Timestamp()),
        outcome=bindparam("b_outcome"),
        exit_code=bindparam("b_exit_code"),
        error=bindparam("b_error"),
        log=attempts.c.log + bindparam("b_log"),
        log_size=attempts.c.log_size + bindparam("b_log_size"),
        log_truncated=attempts.c.log_truncated | bindparam("b_truncated"),
    )
)


_DEPLOYMENT_NAMES = [c.name for c in deployments.c]
_FINISH_ATTEMPT_RUN = Prepared(_FINISH_ATTEMPT)


def _node(row: Any) -> Node:
    return _node_from(dict(row._mapping))


def _node_from(data: dict[str, Any]) -> Node:
    data["state"] = _STATES[data["state"]]
    data["needs"] = tuple(data["needs"] or ())
    data["dependents"] = tuple(data["dependents"] or ())
    return Node(**data)


node_from = _node_from  # for the other query modules


def _attempt(row: Any) -> Attempt:
    data = dict(row._mapping)
    data.pop("log", None)
    return Attempt(**data)


_ATTEMPT_COLUMNS = [c for c in attempts.c if c.name != "log"]


class NodeQueries(QueryBase):
    # Set by a worker recording its step's success, as (worker, lease seconds): the
    # dependent that success makes ready (the only one) is leased to it at once, when it
    # may run (see :meth:`satisfy`); that node is then ``leased_ahead``, its attempt not
    # yet recorded (:meth:`start_attempt`).
    lease_ahead: tuple[str, float] | None = None
    leased_ahead: tuple[Node, datetime] | None = None  # and when it was leased

    def insert_nodes(
        self, deployment_id: int, plans: Sequence[NodePlan], at: datetime, offset: int = 0
    ) -> None:
        """Create the graph of a deployment; every node starts ``pending``."""
        if not plans:
            return
        dependents: dict[str, list[str]] = {p.key: [] for p in plans}
        for p in plans:
            for need in p.needs:
                dependents.setdefault(need, []).append(p.key)
        self.conn.execute(
            nodes.insert(),
            [
                {
                    "deployment_id": deployment_id,
                    "key": p.key,
                    "kind": p.kind,
                    "service": p.service,
                    "name": p.name,
                    "phase": p.phase,
                    "position": offset + i,
                    "needs": list(p.needs),
                    "unmet": len(p.needs),
                    "dependents": dependents[p.key],
                    "executor": p.executor,
                    "spec": p.spec,
                    "timeout": p.timeout,
                    "max_attempts": p.max_attempts(),
                    "backoff": p.backoff,
                    "idempotent": p.idempotent,
                    "state": NodeState.PENDING.value,
                    "attempt": 0,
                    "fence": 0,
                    "cancel_requested": False,
                }
                for i, p in enumerate(plans)
            ],
        )

    def get_node(self, node_id: int, *, lock: bool = False) -> Node | None:
        query = _GET_NODE_LOCKED if lock and self.for_update() else _GET_NODE
        row = self.conn.execute(query, {"id": node_id}).first()
        return _node(row) if row else None

    def require_node(self, node_id: int, *, lock: bool = False) -> Node:
        """:meth:`get_node` of a node assumed to exist; :class:`NotFound` if it does not."""
        return found(self.get_node(node_id, lock=lock), f"step {node_id}")

    def nodes_of(self, deployment_id: int) -> list[Node]:
        rows = self.conn.execute(
            select(nodes).where(nodes.c.deployment_id == deployment_id).order_by(nodes.c.position)
        )
        return [_node(r) for r in rows]

    def nodes_of_many(self, deployment_ids: Sequence[int]) -> list[Node]:
        if not deployment_ids:
            return []
        rows = self.conn.execute(
            select(nodes)
            .where(nodes.c.deployment_id.in_(list(deployment_ids)))
            .order_by(nodes.c.deployment_id, nodes.c.position)
        )
        return [_node(r) for r in rows]

    def update_node(
        self,
        node: Node,
        expected: NodeState,
        *,
        unless_cancelled: bool = False,
        **values: Unpack[NodeChanges],
    ) -> bool:
        """Change a node only if it is still in ``expected`` (and, when leased, unfenced).

        ``unless_cancelled`` also requires that no cancellation was asked for it.
        """
        if isinstance(state := values.get("state"), NodeState):
            values["state"] = state._value_
        guard: dict[str, Any] = {"id": node.id, "state": expected._value_}
        if expected is NodeState.RUNNING:
            guard["fence"] = node.fence
        if unless_cancelled:
            guard["cancel_requested"] = False
        result = prepared_update(nodes, guard, values).run(self.conn, update_params(values, guard))
        if (
            result.rowcount
            and node.kind == "gate"
            and node.executor == "approval"
            and values.get("state") in ("succeeded", "failed")
        ):
            self.stale.gates.add(node.deployment_id)  # an approval wait, for the metrics
        return bool(result.rowcount)

    # -- graph bookkeeping ------------------------------------------------------
    def state_counts(self, deployment_id: int, phase: str | None = None) -> dict[NodeState, int]:
        """How many nodes of the deployment (or of one phase) are in each state."""
        if phase is None:
            rows = self.conn.execute(_STATE_COUNTS, {"d": deployment_id})
        else:
            rows = self.conn.execute(_STATE_COUNTS_PHASE, {"d": deployment_id, "phase": phase})
        return {NodeState(r[0]): int(r[1]) for r in rows}

    def state_counts_by_phase(self, deployment_id: int) -> dict[tuple[str, NodeState], int]:
        """How many nodes of the deployment are in each (phase, state): one index scan."""
        rows = _PHASE_STATE_COUNTS_RUN.run(self.conn, {"d": deployment_id}).rows
        return {(r[0], NodeState(r[1])): int(r[2]) for r in rows}

    def progress_of(
        self, deployment_id: int
    ) -> tuple[Deployment, dict[tuple[str, NodeState], int]] | None:
        """The deployment, locked, and how many of its nodes are in each (phase, state).

        On SQLite (one writer at a time) in one statement. On PostgreSQL the row
        is locked first and the nodes counted after, in a statement of their own:
        under READ COMMITTED that count sees what the transaction that held the
        lock committed, where one statement would count from before the wait. Both
        go out together (one round trip): the server still counts only once the lock
        is held.
        """
        if self.dialect == "postgresql":
            found, counted = run_together(
                self.conn,
                [
                    (_DEPLOYMENT_LOCKED_RUN, {"d": deployment_id}),
                    (_PHASE_STATE_COUNTS_RUN, {"d": deployment_id}),
                ],
            )
            locked = found.first()
            if locked is None:
                return None
            by_state = {(r[0], NodeState(r[1])): int(r[2]) for r in counted.rows}
            return deployment_from(locked), by_state
        row = _PROGRESS_RUN.run(self.conn, {"d": deployment_id}).first()
        if row is None:
            return None
        counts: dict[tuple[str, NodeState], int] = {}
        for item in (row.pop("progress") or "").split(","):
            if item:
                phase, state, number = item.split(" ")
                counts[phase, _STATES[state]] = int(number)
        return deployment_from(row), counts

    def count_off(self, node: Node) -> None:
        """``node`` is done: one need fewer for each of its dependents."""
        if node.dependents:
            self.conn.execute(_COUNT_OFF, {"d": node.deployment_id, "keys": list(node.dependents)})

    def request_cancel(self, deployment_id: int) -> int:
        """Ask the workers running this deployment's nodes to stop them."""
        result = self.conn.execute(
            update(nodes)
            .where(
                nodes.c.deployment_id == deployment_id,
                nodes.c.state == NodeState.RUNNING.value,
                nodes.c.cancel_requested.is_(False),
            )
            .values(cancel_requested=True)
        )
        return int(result.rowcount)

    def ready_roots(self, deployment_id: int, now: datetime) -> list[int]:
        """Make every pending node with no open needs ready; return their ids."""
        rows = self.conn.execute(
            update(nodes)
            .where(
                nodes.c.deployment_id == deployment_id,
                nodes.c.state == NodeState.PENDING.value,
                nodes.c.unmet <= 0,
            )
            .values(state=NodeState.READY.value, not_before=now)
            .returning(nodes.c.id)
        )
        return [int(node_id) for node_id in rows.scalars()]

    def satisfy(self, node: Node, now: datetime) -> list[int]:
        """``node`` is done: count it off its dependents; ready those with nothing left.

        Returns the ids of the dependents that are ready now. With ``lease_ahead`` set
        (on SQLite, one writer) and one dependent, that dependent, if it has nothing
        left and its deployment goes on, is leased instead of made ready (it is then
        ``leased_ahead``, not returned): what :meth:`claim_ready` would do next, in
        the same statement.
        """
        if not node.dependents:
            return []
        rows: Any
        ahead = self.lease_ahead
        if ahead is not None and len(node.dependents) == 1 and not self.for_update():
            self.lease_ahead = None
            worker, lease = ahead
            params = {
                "d": node.deployment_id,
                "key": node.dependents[0],
                "now": now,
                "w_worker": worker,
                "w_expires": now + timedelta(seconds=lease),
            }
            found = _SATISFY_LEASE_RUN.run(self.conn, params).first()
            if found is None:
                return []
            dependent = _node_from(found)
            if dependent.state is NodeState.RUNNING:
                self.leased_ahead = dependent, now  # its attempt is recorded by the claim
                return []
            return [dependent.id] if dependent.state is NodeState.READY else []
        if len(node.dependents) == 1:
            params = {"d": node.deployment_id, "key": node.dependents[0], "now": now}
            rows = _SATISFY_ONE.run(self.conn, params).rows
        else:
            params = {"d": node.deployment_id, "keys": list(node.dependents), "now": now}
            rows = self.conn.execute(_SATISFY, params)
        return [int(i) for i, state, unmet in rows if state == _READY and unmet <= 0]

    def stop_nodes(
        self,
        deployment_id: int,
        source: NodeState,
        target: NodeState,
        now: datetime,
        phase: str | None = None,
    ) -> list[Node]:
        """Move every node in ``source`` to ``target``; return them as they were before."""
        query = update(nodes).where(
            nodes.c.deployment_id == deployment_id, nodes.c.state == source.value
        )
        if phase is not None:
            query = query.where(nodes.c.phase == phase)
        rows = self.conn.execute(
            query.values(state=target.value, finished_at=now).returning(*nodes.c)
        )
        return sorted((replace(_node(r), state=source) for r in rows), key=lambda n: n.position)

    def nodes_in_state(self, deployment_id: int, state: NodeState, limit: int = 10) -> list[Node]:
        rows = self.conn.execute(
            select(nodes)
            .where(nodes.c.deployment_id == deployment_id, nodes.c.state == state.value)
            .order_by(nodes.c.position)
            .limit(limit)
        )
        return [_node(r) for r in rows]

    def first_step_started(self, deployment_id: int) -> datetime | None:
        """When the deployment's first deploy step started (its gates before it do not count)."""
        found: datetime | None = self.conn.execute(
            select(func.min(nodes.c.started_at)).where(
                nodes.c.deployment_id == deployment_id, nodes.c.phase == "deploy"
            )
        ).scalar()
        return found

    def waiting_nodes(
        self, executor: str | Sequence[str], limit: int = 500, after_id: int | None = None
    ) -> list[Node]:
        """Nodes of ``executor`` (one, or any of several) waiting for an event (an approval,
        a sign-off), oldest first; after ``after_id`` if given."""
        executors = [executor] if isinstance(executor, str) else list(executor)
        rows = self.conn.execute(
            select(nodes)
            .where(nodes.c.state == NodeState.WAITING.value, nodes.c.executor.in_(executors))
            .where(nodes.c.id > (after_id or 0))
            .order_by(nodes.c.id)
            .limit(limit)
        )
        return [_node(r) for r in rows]

    def open_service_nodes(self, deployment_id: int, service: str, phase: str) -> int:
        """Nodes of ``service`` in ``phase`` that are not done yet."""
        params = {"d": deployment_id, "service": service, "phase": phase}
        return int(_OPEN_SERVICE_NODES_RUN.run(self.conn, params).rows[0][0])

    # -- claiming and leases ---------------------------------------------------
    def claim_node(
        self, worker: str, now: datetime, lease: float
    ) -> tuple[Node, Deployment] | None:
        """Lease the oldest ready node whose time has come, with its deployment.

        ``None`` when there is none. The claim increments the attempt and the
        fence and records the attempt, all in the caller's transaction.
        """
        if self.for_update():
            params = {"w_worker": worker, "now": now}
            leased = self._lease(_LEASE_NEXT_RUN, params, worker, now, lease)
            if leased is None:
                return None
            node, deployment = leased
            assert deployment is not None
            return node, deployment
        found = _NEXT_READY_RUN.run(self.conn, {"now": now}).rows
        if not found:
            return None
        node_id, *columns = found[0]
        deployment = deployment_from(dict(zip(_DEPLOYMENT_NAMES, columns, strict=True)))
        params = {"w_id": node_id, "w_worker": worker, "now": now}
        leased = self._lease(_LEASE_RUN, params, worker, now, lease)
        return None if leased is None else (leased[0], deployment)

    def claim_ready(
        self, node_id: int, deployment_id: int, worker: str, now: datetime, lease: float
    ) -> Node | None:
        """Lease ``node_id`` if it is a ready node of ``deployment_id``, as :meth:`claim_node`.

        For a node this transaction made ready (its ``not_before`` is now):
        ``None`` when it is not ready any more (stopped with its deployment).
        """
        params = {"w_id": node_id, "w_deployment": deployment_id, "w_worker": worker, "now": now}
        leased = self._lease(_LEASE_OWN_RUN, params, worker, now, lease)
        return None if leased is None else leased[0]

    def _lease(
        self, statement: Prepared, params: dict[str, Any], worker: str, now: datetime, lease: float
    ) -> tuple[Node, Deployment | None] | None:
        """The node ``statement`` leased (``None``: none), and its deployment when the
        statement returns it too (``_LEASE_NEXT_RUN``)."""
        params["w_expires"] = now + timedelta(seconds=lease)
        row = statement.run(self.conn, params).first()
        if row is None:
            return None
        deployment = None
        if statement is _LEASE_NEXT_RUN:
            deployment = deployment_from({n: row.pop(f"d_{n}") for n in _DEPLOYMENT_NAMES})
        node = _node_from(row)
        self.start_attempt(node, worker, now)
        self.readied.discard(node.id)  # made ready and taken in this transaction: wake no one
        return node, deployment

    def start_attempt(self, node: Node, worker: str, now: datetime) -> None:
        """Record the attempt of ``node`` just leased to ``worker`` (on PostgreSQL, sent
        with the commit's last statements: nothing reads it back before)."""
        self.send_later(
            _NEW_ATTEMPT_RUN,
            {"node_id": node.id, "attempt": node.attempt, "worker": worker, "started_at": now},
        )

    def extend_leases(
        self, leases: Sequence[tuple[int, int]], expires: datetime
    ) -> tuple[set[int], set[int]]:
        """Extend leases held as ``(node id, fence)``.

        Returns the ids whose lease is lost (fenced off or no longer running)
        and the ids whose cancellation was requested.
        """
        lost: set[int] = set()
        for node_id, fence in leases:
            result = self.conn.execute(
                update(nodes)
                .where(
                    nodes.c.id == node_id,
                    nodes.c.fence == fence,
                    nodes.c.state == NodeState.RUNNING.value,
                )
                .values(lease_expires=expires)
            )
            if not result.rowcount:
                lost.add(node_id)
        cancel: set[int] = set()
        if leases:
            rows = self.conn.execute(
                select(nodes.c.id).where(
                    nodes.c.id.in_([n for n, _ in leases]), nodes.c.cancel_requested.is_(True)
                )
            )
            cancel = {int(r.id) for r in rows}
        return lost, cancel

    def expired_leases(self, now: datetime, limit: int = 100) -> list[Node]:
        query = (
            select(nodes)
            .where(_IS_RUNNING, nodes.c.lease_expires < now)
            .order_by(nodes.c.lease_expires)
            .limit(limit)
        )
        if self.for_update():
            query = query.with_for_update(skip_locked=True)
        return [_node(r) for r in self.conn.execute(query)]

    def leases_held_by(self, prefix: str) -> list[Node]:
        rows = self.conn.execute(
            select(nodes).where(
                nodes.c.state == NodeState.RUNNING.value, nodes.c.lease_owner.like(prefix + "%")
            )
        )
        return [_node(r) for r in rows]

    def next_ready_at(self) -> datetime | None:
        """When the earliest ready node becomes claimable."""
        found: datetime | None = self.conn.execute(
            select(func.min(nodes.c.not_before)).where(_IS_READY)
        ).scalar()
        return found

    def recent_durations(
        self, services: Sequence[str], limit: int = 5000
    ) -> list[tuple[str, str, float]]:
        """(environment, step key, seconds) of recent successful runs of these services."""
        if not services:
            return []
        rows = self.conn.execute(
            select(
                deployments.c.environment,
                nodes.c.key,
                attempts.c.started_at,
                attempts.c.finished_at,
            )
            .join(nodes, nodes.c.id == attempts.c.node_id)
            .join(deployments, deployments.c.id == nodes.c.deployment_id)
            .where(
                nodes.c.service.in_(list(services)),
                attempts.c.outcome == "succeeded",
                deployments.c.kind == "deploy",
            )
            .order_by(attempts.c.id.desc())
            .limit(limit)
        )
        return [
            (r.environment, r.key, (r.finished_at - r.started_at).total_seconds())
            for r in rows
            if r.finished_at is not None
        ]

    def recent_gate_waits(self, limit: int = 5000) -> list[tuple[str, str, str, float]]:
        """(environment, gate key, gate type, seconds open) of recent gates that cleared."""
        rows = self.conn.execute(
            select(
                deployments.c.environment,
                nodes.c.key,
                nodes.c.executor,
                nodes.c.started_at,
                nodes.c.finished_at,
            )
            .join(deployments, deployments.c.id == nodes.c.deployment_id)
            .where(
                nodes.c.kind == "gate",
                nodes.c.state == NodeState.SUCCEEDED.value,
                deployments.c.kind == "deploy",
                nodes.c.started_at.is_not(None),
                nodes.c.finished_at.is_not(None),
            )
            .order_by(nodes.c.id.desc())
            .limit(limit)
        )
        return [
            (r.environment, r.key, r.executor, (r.finished_at - r.started_at).total_seconds())
            for r in rows
        ]

    # -- attempts and logs -----------------------------------------------------
    def finish_attempt(
        self,
        node_id: int,
        attempt: int,
        *,
        at: datetime,
        outcome: str,
        exit_code: int | None = None,
        error: str | None = None,
        log: str = "",
        truncated: bool = False,
    ) -> None:
        _FINISH_ATTEMPT_RUN.run(
            self.conn,
            {
                "w_node": node_id,
                "w_attempt": attempt,
                "b_finished_at": at,
                "b_outcome": outcome,
                "b_exit_code": exit_code,
                "b_error": error,
                "b_log": log,
                "b_log_size": len(log.encode("utf-8")),
                "b_truncated": truncated,
            },
        )

    def append_log(self, node_id: int, attempt: int, text: str) -> None:
        self.conn.execute(
            update(attempts)
            .where(attempts.c.node_id == node_id, attempts.c.attempt == attempt)
            .values(
                log=attempts.c.log + text,
                log_size=attempts.c.log_size + len(text.encode("utf-8")),
            )
        )

    def attempts_of(self, node_ids: Sequence[int]) -> list[Attempt]:
        if not node_ids:
            return []
        rows = self.conn.execute(
            select(*_ATTEMPT_COLUMNS)
            .where(attempts.c.node_id.in_(list(node_ids)))
            .order_by(attempts.c.node_id, attempts.c.attempt)
        )
        return [_attempt(r) for r in rows]

    def attempt_log(self, node_id: int, attempt: int, offset: int = 0) -> str | None:
        """The stored output of one attempt from character ``offset`` on."""
        column = attempts.c.log if offset <= 0 else func.substr(attempts.c.log, offset + 1)
        row = self.conn.execute(
            select(column).where(attempts.c.node_id == node_id, attempts.c.attempt == attempt)
        ).first()
        return None if row is None else str(row[0])

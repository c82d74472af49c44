"""Nodes (steps and gates of a deployment), their attempts, logs and leases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, literal, select, update

from interlock.domain.plan import NodePlan
from interlock.domain.records import Attempt, Node
from interlock.domain.states import NodeState
from interlock.storage.base import QueryBase
from interlock.storage.schema import attempts, nodes
from interlock.storage.types import Timestamp


def _node(row: Any) -> Node:
    data = dict(row._mapping)
    data["state"] = NodeState(data["state"])
    data["needs"] = tuple(data["needs"] or ())
    return Node(**data)


def _attempt(row: Any) -> Attempt:
    data = dict(row._mapping)
    data.pop("log", None)
    return Attempt(**data)


_ATTEMPT_COLUMNS = [c for c in attempts.c if c.name != "log"]


class NodeQueries(QueryBase):
    def insert_nodes(
        self, deployment_id: int, plans: Sequence[NodePlan], at: datetime, offset: int = 0
    ) -> None:
        """Create the graph of a deployment; every node starts ``pending``."""
        if not plans:
            return
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

    def get_node(self, node_id: int) -> Node | None:
        row = self.conn.execute(select(nodes).where(nodes.c.id == node_id)).first()
        return _node(row) if row else None

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

    def update_node(self, node: Node, expected: NodeState, **values: Any) -> bool:
        """Change a node only if it is still in ``expected`` (and, when leased, unfenced)."""
        if isinstance(values.get("state"), NodeState):
            values["state"] = values["state"].value
        conditions = [nodes.c.id == node.id, nodes.c.state == expected.value]
        if expected is NodeState.RUNNING:
            conditions.append(nodes.c.fence == node.fence)
        result = self.conn.execute(update(nodes).where(*conditions).values(**values))
        return bool(result.rowcount)

    # -- claiming and leases ---------------------------------------------------
    def claim_node(self, worker: str, now: datetime, lease: float) -> Node | None:
        """Lease the oldest ready node whose time has come; ``None`` when there is none.

        The claim increments the attempt and the fence and records the attempt,
        all in the caller's transaction.
        """
        query = (
            select(nodes.c.id)
            .where(nodes.c.state == NodeState.READY.value, nodes.c.not_before <= now)
            .order_by(nodes.c.not_before, nodes.c.id)
            .limit(1)
        )
        if self.for_update():
            query = query.with_for_update(skip_locked=True)
        node_id = self.conn.execute(query).scalar()
        if node_id is None:
            return None
        row = self.conn.execute(
            update(nodes)
            .where(nodes.c.id == node_id, nodes.c.state == NodeState.READY.value)
            .values(
                state=NodeState.RUNNING.value,
                attempt=nodes.c.attempt + 1,
                fence=nodes.c.fence + 1,
                lease_owner=worker,
                lease_expires=now + timedelta(seconds=lease),
                started_at=func.coalesce(nodes.c.started_at, literal(now, Timestamp())),
            )
            .returning(*nodes.c)
        ).first()
        if row is None:  # pragma: no cover - only if the row changed under SKIP LOCKED
            return None
        node = _node(row)
        self.conn.execute(
            attempts.insert().values(
                node_id=node.id, attempt=node.attempt, worker=worker, started_at=now
            )
        )
        return node

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
            .where(nodes.c.state == NodeState.RUNNING.value, nodes.c.lease_expires < now)
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
        return self.conn.execute(  # type: ignore[no-any-return]
            select(func.min(nodes.c.not_before)).where(nodes.c.state == NodeState.READY.value)
        ).scalar()

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
        values: dict[str, Any] = {
            "finished_at": at,
            "outcome": outcome,
            "exit_code": exit_code,
            "error": error,
        }
        if log:
            values["log"] = attempts.c.log + log
            values["log_size"] = attempts.c.log_size + len(log.encode("utf-8"))
        if truncated:
            values["log_truncated"] = True
        self.conn.execute(
            update(attempts)
            .where(and_(attempts.c.node_id == node_id, attempts.c.attempt == attempt))
            .values(**values)
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

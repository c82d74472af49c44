"""Deployments: one release (or rollback, or runbook) in one environment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Unpack

from sqlalchemy import bindparam, select, text

from interlock.domain.records import Deployment
from interlock.domain.states import DeploymentState
from interlock.storage.base import Prepared, QueryBase, found, prepared_update, update_params
from interlock.storage.changes import DeploymentChanges, DeploymentExtras
from interlock.storage.schema import deployments, release_items

ACTIVE = (
    DeploymentState.RUNNING.value,
    DeploymentState.NEEDS_ATTENTION.value,
    DeploymentState.ROLLING_BACK.value,
)


_GET = select(deployments).where(deployments.c.id == bindparam("id"))
_GET_LOCKED = _GET.with_for_update()
_GET_RUN = Prepared(_GET)  # every step reads its deployment (see base.Prepared)
_GET_LOCKED_RUN = Prepared(_GET_LOCKED)
# Read whenever a deployment ends (is something queued behind it?).
_QUEUED_RUN = Prepared(
    select(deployments)
    .where(
        deployments.c.environment == bindparam("e"),
        deployments.c.state == DeploymentState.QUEUED.value,
    )
    .order_by(deployments.c.id)
)

# PostgreSQL advisory locks (the others: storage/leader.py). QUEUE_LOCK, per
# environment, serialises the starts of its queued deployments. QUEUE_GATE, per
# environment, orders a transaction that queues a deployment (exclusive) before
# or after one that ends an active deployment (shared, so those never wait on
# each other): see DeploymentQueries.queue_may_wait.
QUEUE_LOCK = 727004
QUEUE_GATE = 727007
_LOCK_QUEUE = text(f"SELECT pg_advisory_xact_lock({QUEUE_LOCK}, hashtext(:e))")
_GATE_QUEUER = text(f"SELECT pg_advisory_xact_lock({QUEUE_GATE}, hashtext(:e))")
_GATE_ENDER = text(f"SELECT pg_advisory_xact_lock_shared({QUEUE_GATE}, hashtext(:e))")
_ANY_QUEUED = select(
    select(deployments.c.id)
    .where(
        deployments.c.environment == bindparam("e"),
        deployments.c.state == DeploymentState.QUEUED.value,
    )
    .exists()
)


def _deployment(row: Any) -> Deployment:
    return deployment_from(dict(row._mapping))


_STATES = {state.value: state for state in DeploymentState}  # (as in storage/nodes.py)


def deployment_from(data: dict[str, Any]) -> Deployment:
    data["state"] = _STATES[data["state"]]
    return Deployment(**data)


class DeploymentQueries(QueryBase):
    # The environments whose QUEUE_LOCK, and whose QUEUE_GATE exclusively, this
    # transaction holds (PostgreSQL).
    _queues_locked: frozenset[str] = frozenset()
    _queues_gated: frozenset[str] = frozenset()

    def insert_deployment(
        self,
        *,
        release_id: int | None,
        kind: str,
        environment: str | None,
        env_index: int,
        state: DeploymentState,
        created_by: str,
        at: datetime,
        previous: Mapping[str, object] | None = None,
        **extra: Unpack[DeploymentExtras],
    ) -> int:
        if state is DeploymentState.QUEUED and environment is not None:
            self._gate_queue(environment)
        return int(
            self.conn.execute(
                deployments.insert()
                .values(
                    release_id=release_id,
                    kind=kind,
                    environment=environment,
                    env_index=env_index,
                    state=state.value,
                    created_by=created_by,
                    created_at=at,
                    previous=previous or {},
                    **extra,
                )
                .returning(deployments.c.id)
            ).scalar_one()
        )

    def get_deployment(self, deployment_id: int, *, lock: bool = False) -> Deployment | None:
        query = _GET_LOCKED_RUN if lock and self.for_update() else _GET_RUN
        row = query.run(self.conn, {"id": deployment_id}).first()
        return deployment_from(row) if row else None

    def require_deployment(self, deployment_id: int, *, lock: bool = False) -> Deployment:
        """:meth:`get_deployment` of one assumed to exist; :class:`NotFound` if it does not."""
        return found(self.get_deployment(deployment_id, lock=lock), f"deployment {deployment_id}")

    def list_deployments(
        self,
        *,
        release_id: int | None = None,
        environment: str | None = None,
        states: Sequence[str] | None = None,
        kinds: Sequence[str] | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[Deployment]:
        query = select(deployments).order_by(deployments.c.id.desc()).limit(limit)
        if release_id is not None:
            query = query.where(deployments.c.release_id == release_id)
        if environment:
            query = query.where(deployments.c.environment == environment)
        if states:
            query = query.where(deployments.c.state.in_(list(states)))
        if kinds:
            query = query.where(deployments.c.kind.in_(list(kinds)))
        if before_id is not None:
            query = query.where(deployments.c.id < before_id)
        return [_deployment(r) for r in self.conn.execute(query)]

    def deployments_started(
        self, environment: str, since: datetime, until: datetime, kinds: Sequence[str]
    ) -> list[Deployment]:
        """Deployments of ``kinds`` in ``environment`` started in [since, until), oldest first."""
        query = (
            select(deployments)
            .where(
                deployments.c.environment == environment,
                deployments.c.kind.in_(list(kinds)),
                deployments.c.started_at >= since,
                deployments.c.started_at < until,
            )
            .order_by(deployments.c.started_at, deployments.c.id)
        )
        return [_deployment(r) for r in self.conn.execute(query)]

    def update_deployment(
        self, deployment_id: int, expected: DeploymentState, **values: Unpack[DeploymentChanges]
    ) -> bool:
        """Change a deployment only if it is still in ``expected``."""
        if isinstance(state := values.get("state"), DeploymentState):
            values["state"] = state.value
        guard = {"id": deployment_id, "state": expected.value}
        result = prepared_update(deployments, guard, values).run(
            self.conn, update_params(values, guard)
        )
        if result.rowcount and values.get("started_at") is not None:
            self.stale.started.add(deployment_id)  # a scheduled release's slip
        if result.rowcount and values.get("finished_at") is not None:
            self.stale.finished.add(deployment_id)  # what the delivery metrics count
        return bool(result.rowcount)

    def active_deployments(self, environment: str) -> list[Deployment]:
        """Deployments holding their services' lock in ``environment``."""
        rows = self.conn.execute(
            select(deployments)
            .where(deployments.c.environment == environment, deployments.c.state.in_(ACTIVE))
            .order_by(deployments.c.id)
        )
        return [_deployment(r) for r in rows]

    def succeeded_in(
        self, environment: str, service: str, version: str, digest: str | None
    ) -> bool:
        """Did ``service@version`` (with that digest, if given) succeed in ``environment``?"""
        query = (
            select(deployments.c.id)
            .join(release_items, release_items.c.release_id == deployments.c.release_id)
            .where(
                deployments.c.environment == environment,
                deployments.c.kind == "deploy",
                deployments.c.state == DeploymentState.SUCCEEDED.value,
                release_items.c.service == service,
                release_items.c.version == version,
            )
            .limit(1)
        )
        if digest is not None:
            query = query.where(release_items.c.digest == digest)
        return self.conn.execute(query).first() is not None

    def active_deployments_of(self, service: str, version: str | None = None) -> list[Deployment]:
        """Unfinished deployments (queued included) of a release holding ``service``."""
        query = (
            select(deployments)
            .join(release_items, release_items.c.release_id == deployments.c.release_id)
            .where(release_items.c.service == service, deployments.c.finished_at.is_(None))
        )
        if version is not None:
            query = query.where(release_items.c.version == version)
        return [_deployment(r) for r in self.conn.execute(query)]

    def running_with_deadline(self, limit: int = 500) -> list[Deployment]:
        rows = self.conn.execute(
            select(deployments)
            .where(
                deployments.c.state.in_(ACTIVE),
                deployments.c.abort_reason.is_(None),
                deployments.c.started_at.is_not(None),
            )
            .order_by(deployments.c.id)
            .limit(limit)
        )
        return [d for d in map(_deployment, rows) if d.rules.deadline]

    def children_of(self, node_id: int) -> list[Deployment]:
        rows = self.conn.execute(select(deployments).where(deployments.c.parent_node_id == node_id))
        return [_deployment(r) for r in rows]

    def history(
        self, service: str, environment: str, limit: int = 50
    ) -> list[tuple[Deployment, str, str | None]]:
        """Finished deployments of ``service`` in ``environment``, newest first:
        (deployment, version, digest)."""
        rows = self.conn.execute(
            select(deployments, release_items.c.version, release_items.c.digest)
            .join(release_items, release_items.c.release_id == deployments.c.release_id)
            .where(
                release_items.c.service == service,
                deployments.c.environment == environment,
                deployments.c.finished_at.is_not(None),
            )
            .order_by(deployments.c.finished_at.desc())
            .limit(limit)
        )
        out = []
        for row in rows:
            data = dict(row._mapping)
            version, digest = data.pop("version"), data.pop("digest")
            out.append((deployment_from(data), version, digest))
        return out

    def lock_environment_queue(self, environment: str) -> None:
        """Serialise starts in one environment (PostgreSQL, READ COMMITTED).

        Two transactions starting deployments of the same service at once must
        not both see it free; SQLite has a single writer already.
        """
        if self.for_update() and environment not in self._queues_locked:
            self.conn.execute(_LOCK_QUEUE, {"e": environment})
            self._queues_locked |= {environment}

    def _gate_queue(self, environment: str) -> None:
        """This transaction queues a deployment in ``environment`` (see :meth:`queue_may_wait`)."""
        if self.for_update() and environment not in self._queues_gated:
            self.conn.execute(_GATE_QUEUER, {"e": environment})
            self._queues_gated |= {environment}

    def queue_may_wait(self, environment: str) -> bool:
        """This transaction ended an active deployment in ``environment``: may a
        queued deployment wait for it (so the queue must be looked at, under its lock)?

        On PostgreSQL a transaction that queues a deployment holds the
        environment's gate exclusively from before it looks whether the
        deployment can start until it commits; this one takes the gate shared
        (enders never wait on each other) before it looks whether anything is
        queued. So one of the two goes second and sees the other's commit:
        either the queuer sees this deployment ended and starts its own, or
        this one sees the queued deployment and starts it. No lost wake-up, and
        an empty queue costs no lock that enders contend on. (SQLite: one
        writer; a transaction that holds the queue lock already just looks.)
        """
        if not self.for_update() or environment in self._queues_locked:
            return True
        if environment not in self._queues_gated:
            self.conn.execute(_GATE_ENDER, {"e": environment})
        return bool(self.conn.execute(_ANY_QUEUED, {"e": environment}).scalar())

    def environments_with_queue(self) -> list[str]:
        rows = self.conn.execute(
            select(deployments.c.environment)
            .distinct()
            .where(deployments.c.state == DeploymentState.QUEUED.value)
        )
        return [r.environment for r in rows if r.environment]

    def busy_services(self, environment: str, services: Sequence[str]) -> set[str]:
        """Which of ``services`` an active deployment in ``environment`` holds."""
        if not services:
            return set()
        rows = self.conn.execute(
            select(release_items.c.service)
            .distinct()
            .join(deployments, deployments.c.release_id == release_items.c.release_id)
            .where(
                deployments.c.environment == environment,
                deployments.c.state.in_(ACTIVE),
                release_items.c.service.in_(list(services)),
            )
        )
        return {r.service for r in rows}

    def queued_deployments(self, environment: str) -> list[Deployment]:
        """Deployments waiting for a lock in ``environment``, oldest first."""
        found = _QUEUED_RUN.run(self.conn, {"e": environment})
        return [deployment_from(dict(zip(found.keys, r, strict=True))) for r in found.rows]

    def services_of(self, deployment_ids: Sequence[int]) -> dict[int, set[str]]:
        """The services each deployment touches (through its release's items)."""
        found: dict[int, set[str]] = {d: set() for d in deployment_ids}
        if not deployment_ids:
            return found
        rows = self.conn.execute(
            select(deployments.c.id, release_items.c.service)
            .join(release_items, release_items.c.release_id == deployments.c.release_id)
            .where(deployments.c.id.in_(list(deployment_ids)))
        )
        for row in rows:
            found[int(row.id)].add(row.service)
        return found

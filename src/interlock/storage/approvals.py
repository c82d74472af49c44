"""Approvals and rejections, break-glass overrides, and environment locks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Update, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql

from interlock.domain.records import (
    Approval,
    Deployment,
    EnvironmentLock,
    Item,
    Node,
    Override,
    Release,
)
from interlock.storage.base import Prepared, PreparedResult, QueryBase, found, run_together
from interlock.storage.configs import _LATEST_VERSION_RUN, LATEST_VERSION_MEMO
from interlock.storage.deployments import deployment_from
from interlock.storage.identity import _MEMBERS_RUN
from interlock.storage.nodes import node_from
from interlock.storage.notifications import _ESCALATIONS_OF_RUN
from interlock.storage.releases import _GET_RUN, _ITEMS_OF_ONE_RUN, _release_from
from interlock.storage.schema import approvals, deployments, environment_locks, nodes, overrides

# What an approval reads, prepared once (an approval is on the path to the next step).
_EXISTING_RUN = Prepared(
    select(approvals.c.id, approvals.c.expires_at).where(
        *[
            approvals.c[name] == bindparam(name)
            for name in (
                "release_id",
                "environment",
                "gate",
                "approver",
                "content_hash",
                "decision",
            )
        ]
    )
)
_OF_GATE_RUN = Prepared(
    select(approvals)
    .where(
        approvals.c.release_id == bindparam("release_id"),
        approvals.c.environment == bindparam("environment"),
        approvals.c.gate == bindparam("gate"),
    )
    .order_by(approvals.c.id)
)
_NODE_NAMES = [c.name for c in nodes.c]
_DEPLOYMENT_NAMES = [c.name for c in deployments.c]
_APPROVAL_NODES = (
    select(nodes, *[c.label(f"d_{c.name}") for c in deployments.c])
    .select_from(nodes.join(deployments, deployments.c.id == nodes.c.deployment_id))
    .where(deployments.c.release_id == bindparam("release_id"), nodes.c.executor == "approval")
    .order_by(deployments.c.id, nodes.c.position)
)
_APPROVAL_NODES_RUN = Prepared(_APPROVAL_NODES)
# The same, the gates' rows locked (PostgreSQL): what an approval decides on.
_APPROVAL_NODES_LOCKED_RUN = Prepared(_APPROVAL_NODES.with_for_update(of=nodes))


# A decision stored unless the same one still stands (PostgreSQL, in the reads'
# round trip): a new row, or the expired one renewed; no row back when it stands.
_SAME = ("release_id", "environment", "gate", "approver", "content_hash", "decision")
_RECORD = postgresql.insert(approvals).values(
    {c.name: bindparam(c.name, type_=c.type) for c in approvals.c if c.name != "id"}
)
_RECORD_RUN = Prepared(
    _RECORD.on_conflict_do_update(
        index_elements=[approvals.c[name] for name in _SAME],
        set_={
            "comment": _RECORD.excluded.comment,
            "created_at": _RECORD.excluded.created_at,
            "expires_at": _RECORD.excluded.expires_at,
        },
        where=approvals.c.expires_at.is_not(None) & (approvals.c.expires_at <= bindparam("at")),
    ).returning(*approvals.c)
)


class GateReads:
    """What deciding an approval gate reads about it (:meth:`ApprovalQueries.gate_reads`)."""

    __slots__ = ("approvals", "escalations", "members", "stored")

    def __init__(
        self,
        approvals: list[Approval],
        escalations: list[tuple[str, str]],
        members: dict[tuple[str, str], set[str]],
        stored: Approval | None = None,
    ) -> None:
        self.approvals = approvals  # the gate's, oldest first (before ``stored``)
        self.escalations = escalations  # (kind, group) the waiting gate was escalated to
        self.members = members  # the stored members of the groups asked for
        self.stored = stored  # the decision recorded with them, if new or renewed


class ApprovalQueries(QueryBase):
    def add_approval(
        self,
        *,
        release_id: int,
        environment: str,
        gate: str,
        approver: str,
        decision: str,
        comment: str | None,
        content_hash: str,
        at: datetime,
        expires_at: datetime | None,
        known: Sequence[Approval] | None = None,
    ) -> Approval | None:
        """Record a decision; ``None`` when the same person's same one still stands.

        Given again after it expired, the decision is renewed (the audit log
        keeps both): one row per person, content and decision. ``known``: this
        gate's approvals, as :meth:`approvals_for` read them in this transaction
        (saves reading the one it would renew).
        """
        if known is None:
            row = _EXISTING_RUN.run(
                self.conn,
                {
                    "release_id": release_id,
                    "environment": environment,
                    "gate": gate,
                    "approver": approver,
                    "content_hash": content_hash,
                    "decision": decision,
                },
            ).first()
            existing = (row["id"], row["expires_at"]) if row is not None else None
        else:
            same = next(
                (
                    a
                    for a in known
                    if (a.release_id, a.environment, a.gate) == (release_id, environment, gate)
                    and (a.approver, a.content_hash, a.decision)
                    == (approver, content_hash, decision)
                ),
                None,
            )
            existing = (same.id, same.expires_at) if same is not None else None
        if existing is not None and (existing[1] is None or existing[1] > at):
            return None
        renewed = {"comment": comment, "created_at": at, "expires_at": expires_at}
        statement: Insert | Update
        if existing is not None:
            statement = approvals.update().where(approvals.c.id == existing[0]).values(**renewed)
        else:
            statement = approvals.insert().values(
                release_id=release_id,
                environment=environment,
                gate=gate,
                approver=approver,
                decision=decision,
                content_hash=content_hash,
                **renewed,
            )
        stored = self.conn.execute(statement.returning(*approvals.c)).one()
        return Approval(**stored._mapping)

    def approvals_for(
        self, release_id: int, environment: str | None = None, gate: str | None = None
    ) -> list[Approval]:
        if environment is not None and gate is not None:  # a gate's: every approval decides it
            found = _OF_GATE_RUN.run(
                self.conn, {"release_id": release_id, "environment": environment, "gate": gate}
            )
            return [Approval(**dict(zip(found.keys, r, strict=True))) for r in found.rows]
        query = select(approvals).where(approvals.c.release_id == release_id)
        if environment is not None:
            query = query.where(approvals.c.environment == environment)
        if gate is not None:
            query = query.where(approvals.c.gate == gate)
        rows = self.conn.execute(query.order_by(approvals.c.id))
        return [Approval(**r._mapping) for r in rows]

    def approvals_since(self, since: datetime | None = None) -> list[Approval]:
        query = select(approvals).order_by(approvals.c.id)
        if since is not None:
            query = query.where(approvals.c.created_at >= since)
        return [Approval(**r._mapping) for r in self.conn.execute(query)]

    def approval_nodes_of(self, release_id: int) -> list[tuple[Deployment, Node]]:
        """The approval gates of a release's deployments, with their deployments, in one read.

        Oldest deployment first, its gates in order; not locked (lock the one to decide).
        """
        return _gate_pairs(_APPROVAL_NODES_RUN.run(self.conn, {"release_id": release_id}))

    def approval_context(
        self, release_id: int
    ) -> tuple[Release | None, list[tuple[Deployment, Node]]]:
        """What an approval starts from, in one round trip: the release (with its items
        and plan), the active config's version (kept for :meth:`latest_config_version`),
        and the release's approval gates as :meth:`approval_nodes_of` reads them, but
        locked on PostgreSQL (their rows, in order: the one decided is locked before it
        is read, so what the approval sees of it is its latest state).
        """
        gates = _APPROVAL_NODES_LOCKED_RUN if self.for_update() else _APPROVAL_NODES_RUN
        row, items, version, pairs = run_together(
            self.conn,
            [
                (_GET_RUN[True], {"id": release_id}),
                (_ITEMS_OF_ONE_RUN, {"id": release_id}),
                (_LATEST_VERSION_RUN, {}),
                (gates, {"release_id": release_id}),
            ],
        )
        if version.rows and version.rows[0][0] is not None:
            self.memo[LATEST_VERSION_MEMO] = int(version.rows[0][0])
        found = row.first()
        if found is None:
            return None, []
        at = [items.keys.index(name) for name in ("service", "version", "digest", "commit_sha")]
        release = _release_from(found, [Item(*(r[i] for i in at)) for r in items.rows])
        return release, _gate_pairs(pairs)

    def gate_reads(
        self,
        release_id: int,
        environment: str,
        gate: str,
        node_id: int | None,
        groups: Sequence[tuple[str, str]],
        record: Mapping[str, Any] | None = None,
    ) -> GateReads:
        """A gate's approvals, its escalations (if reached: ``node_id``) and the stored
        members of ``groups`` (``(kind, group)``), in one round trip.

        ``record``: a decision to store as :meth:`add_approval` would (its keyword
        arguments but ``known``), in that same round trip on PostgreSQL (after the
        reads: they do not see it), just after them elsewhere. The caller's checks
        come after it: one that fails rolls the transaction back, and the decision
        with it.
        """
        calls: list[tuple[Prepared, dict[str, Any]]] = [
            (_OF_GATE_RUN, {"release_id": release_id, "environment": environment, "gate": gate})
        ]
        if node_id is not None:
            calls.append((_ESCALATIONS_OF_RUN, {"node_id": node_id}))
        wanted = list(dict.fromkeys(groups))
        calls += [(_MEMBERS_RUN, {"kind": kind, "group": group}) for kind, group in wanted]
        together = record is not None and self.dialect == "postgresql"
        if together:
            assert record is not None
            calls.append((_RECORD_RUN, {**record, "created_at": record["at"]}))
        given, *rest = run_together(self.conn, calls)
        recorded = rest.pop() if together else None
        escalated: list[tuple[str, str]] = []
        if node_id is not None:
            escalated = [(str(r[0]), str(r[1])) for r in rest.pop(0).rows]
        read = GateReads(
            [Approval(**dict(zip(given.keys, r, strict=True))) for r in given.rows],
            escalated,
            {key: {str(r[0]) for r in found.rows} for key, found in zip(wanted, rest, strict=True)},
        )
        if recorded is not None:
            row = recorded.first()
            read.stored = Approval(**row) if row is not None else None
        elif record is not None:
            read.stored = self.add_approval(**record, known=read.approvals)
        return read

    # -- overrides -----------------------------------------------------------------
    def add_override(
        self,
        *,
        release_id: int,
        environment: str,
        gate: str,
        actor: str,
        reason: str,
        at: datetime,
    ) -> Override:
        override_id = self.conn.execute(
            overrides.insert()
            .values(
                release_id=release_id,
                environment=environment,
                gate=gate,
                actor=actor,
                reason=reason,
                created_at=at,
            )
            .returning(overrides.c.id)
        ).scalar_one()
        return self.require_override(int(override_id))

    def get_override(self, override_id: int) -> Override | None:
        row = self.conn.execute(select(overrides).where(overrides.c.id == override_id)).first()
        return Override(**row._mapping) if row else None

    def require_override(self, override_id: int) -> Override:
        """:meth:`get_override` of one assumed to exist; :class:`NotFound` if it does not."""
        return found(self.get_override(override_id), f"override {override_id}")

    def overrides_for(self, release_id: int, environment: str | None = None) -> list[Override]:
        query = select(overrides).where(overrides.c.release_id == release_id)
        if environment is not None:
            query = query.where(overrides.c.environment == environment)
        return [Override(**r._mapping) for r in self.conn.execute(query.order_by(overrides.c.id))]

    def list_overrides(
        self, unreviewed: bool = False, limit: int = 200, before_id: int | None = None
    ) -> list[Override]:
        """Break-glass overrides, newest first; ``before_id``: only those older than that one."""
        query = select(overrides).order_by(overrides.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(overrides.c.id < before_id)
        if unreviewed:
            query = query.where(overrides.c.reviewed_at.is_(None))
        return [Override(**r._mapping) for r in self.conn.execute(query)]

    def review_override(self, override_id: int, by: str, at: datetime, comment: str) -> bool:
        result = self.conn.execute(
            update(overrides)
            .where(overrides.c.id == override_id, overrides.c.reviewed_at.is_(None))
            .values(reviewed_by=by, reviewed_at=at, review_comment=comment)
        )
        return bool(result.rowcount)

    # -- environment locks -----------------------------------------------------------
    def environment_lock(self, environment: str) -> EnvironmentLock | None:
        row = self.conn.execute(
            select(environment_locks).where(environment_locks.c.environment == environment)
        ).first()
        return EnvironmentLock(**row._mapping) if row else None

    def require_environment_lock(self, environment: str) -> EnvironmentLock:
        """:meth:`environment_lock` of one assumed to be held; :class:`NotFound` if it is not."""
        return found(self.environment_lock(environment), f"lock on {environment}")

    def environment_locks(self) -> list[EnvironmentLock]:
        rows = self.conn.execute(
            select(environment_locks).order_by(environment_locks.c.environment)
        )
        return [EnvironmentLock(**r._mapping) for r in rows]

    def lock_environment(self, environment: str, by: str, reason: str, at: datetime) -> bool:
        if self.environment_lock(environment) is not None:
            return False
        self.conn.execute(
            environment_locks.insert().values(
                environment=environment, locked_by=by, reason=reason, locked_at=at
            )
        )
        return True

    def unlock_environment(self, environment: str) -> bool:
        result = self.conn.execute(
            delete(environment_locks).where(environment_locks.c.environment == environment)
        )
        return bool(result.rowcount)


def _gate_pairs(found: PreparedResult) -> list[tuple[Deployment, Node]]:
    """:data:`_APPROVAL_NODES`' rows as (deployment, node) pairs."""
    width = len(_NODE_NAMES)
    pairs = []
    for row in found.rows:
        node: dict[str, Any] = dict(zip(_NODE_NAMES, row[:width], strict=True))
        deployment = dict(zip(_DEPLOYMENT_NAMES, row[width:], strict=True))
        pairs.append((deployment_from(deployment), node_from(node)))
    return pairs

"""Approvals and rejections, break-glass overrides, and environment locks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from interlock.domain.records import Approval, EnvironmentLock, Override
from interlock.storage.base import QueryBase, found
from interlock.storage.schema import approvals, environment_locks, overrides


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
    ) -> Approval | None:
        """Record a decision; ``None`` when the same person's same one still stands.

        Given again after it expired, the decision is renewed (the audit log
        keeps both): one row per person, content and decision.
        """
        existing = self.conn.execute(
            select(approvals.c.id, approvals.c.expires_at).where(
                approvals.c.release_id == release_id,
                approvals.c.environment == environment,
                approvals.c.gate == gate,
                approvals.c.approver == approver,
                approvals.c.content_hash == content_hash,
                approvals.c.decision == decision,
            )
        ).first()
        if existing is not None and (existing.expires_at is None or existing.expires_at > at):
            return None
        renewed = {"comment": comment, "created_at": at, "expires_at": expires_at}
        if existing is not None:
            approval_id = existing.id
            self.conn.execute(
                approvals.update().where(approvals.c.id == approval_id).values(**renewed)
            )
        else:
            approval_id = self.conn.execute(
                approvals.insert()
                .values(
                    release_id=release_id,
                    environment=environment,
                    gate=gate,
                    approver=approver,
                    decision=decision,
                    content_hash=content_hash,
                    **renewed,
                )
                .returning(approvals.c.id)
            ).scalar_one()
        row = self.conn.execute(select(approvals).where(approvals.c.id == approval_id)).one()
        return Approval(**row._mapping)

    def approvals_for(
        self, release_id: int, environment: str | None = None, gate: str | None = None
    ) -> list[Approval]:
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

"""Config versions: every config the server loaded, numbered, with its hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy import text as sql

from interlock.domain.records import ConfigChange, ConfigVersion
from interlock.storage.base import Prepared, QueryBase, found
from interlock.storage.schema import config_changes, config_versions

_LATEST_VERSION = select(func.max(config_versions.c.version))
_LATEST_VERSION_RUN = Prepared(_LATEST_VERSION)  # read by every transaction that reads the config
# Where a transaction keeps the version it read along with other things (tx.memo).
LATEST_VERSION_MEMO = "latest_config_version"


class ConfigQueries(QueryBase):
    def lock_configs(self) -> None:
        """Serialise config loads (two servers starting at once store one version)."""
        if self.dialect == "postgresql":
            self.conn.execute(sql("SELECT pg_advisory_xact_lock(727003)"))

    def latest_config_version(self) -> int | None:
        """The active config's version (without its text)."""
        known = self.memo.get(LATEST_VERSION_MEMO)
        if known is not None:  # read in this transaction already (ApprovalQueries)
            return int(known)
        rows = _LATEST_VERSION_RUN.run(self.conn, {}).rows
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def latest_config(self) -> ConfigVersion | None:
        """The active config: the most recently loaded one."""
        row = self.conn.execute(
            select(config_versions).order_by(config_versions.c.version.desc()).limit(1)
        ).first()
        return ConfigVersion(**row._mapping) if row else None

    def get_config(self, version: int) -> ConfigVersion | None:
        row = self.conn.execute(
            select(config_versions).where(config_versions.c.version == version)
        ).first()
        return ConfigVersion(**row._mapping) if row else None

    def require_config(self, version: int) -> ConfigVersion:
        """:meth:`get_config` of a version assumed to exist; :class:`NotFound` if it does not."""
        return found(self.get_config(version), f"configuration version {version}")

    def add_config(self, *, hash: str, path: str, text: str, at: datetime, by: str) -> int:
        """Store a newly loaded config; return its version number."""
        current = self.conn.execute(select(func.max(config_versions.c.version))).scalar()
        version = int(current or 0) + 1
        self.memo.clear()  # the active config changes with this transaction
        self.conn.execute(
            config_versions.insert().values(
                version=version, hash=hash, path=path, text=text, loaded_at=at, loaded_by=by
            )
        )
        return version


class ConfigChangeQueries(QueryBase):
    """Config changes waiting for approval before they become a version."""

    def add_config_change(
        self,
        *,
        base_version: int,
        hash: str,
        path: str,
        text: str,
        diff: list[dict[str, Any]],
        reason: str,
        by: str,
        at: datetime,
    ) -> int:
        """Store a pending change; return its id."""
        result = self.conn.execute(
            config_changes.insert()
            .values(
                base_version=base_version,
                hash=hash,
                path=path,
                text=text,
                diff=diff,
                reason=reason,
                requested_by=by,
                requested_at=at,
                state="pending",
                approvals=[],
            )
            .returning(config_changes.c.id)
        )
        return int(result.scalar_one())

    def get_config_change(self, change_id: int, *, lock: bool = False) -> ConfigChange | None:
        query = select(config_changes).where(config_changes.c.id == change_id)
        if lock and self.dialect == "postgresql":
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return ConfigChange(**row._mapping) if row else None

    def require_config_change(self, change_id: int, *, lock: bool = False) -> ConfigChange:
        """:meth:`get_config_change`; :class:`NotFound` if there is none."""
        return found(self.get_config_change(change_id, lock=lock), f"config change {change_id}")

    def pending_config_changes(self) -> list[ConfigChange]:
        rows = self.conn.execute(
            select(config_changes)
            .where(config_changes.c.state == "pending")
            .order_by(config_changes.c.id)
        )
        return [ConfigChange(**row._mapping) for row in rows]

    def list_config_changes(self, limit: int = 50) -> list[ConfigChange]:
        rows = self.conn.execute(
            select(config_changes).order_by(config_changes.c.id.desc()).limit(limit)
        )
        return [ConfigChange(**row._mapping) for row in rows]

    def update_config_change(
        self,
        change_id: int,
        *,
        state: str | None = None,
        approvals: list[dict[str, Any]] | None = None,
        decided_by: str | None = None,
        decided_at: datetime | None = None,
        version: int | None = None,
    ) -> None:
        """Record an approval or a decision on a pending change."""
        values: dict[str, Any] = {}
        for key, value in (
            ("state", state),
            ("approvals", approvals),
            ("decided_by", decided_by),
            ("decided_at", decided_at),
            ("version", version),
        ):
            if value is not None:
                values[key] = value
        self.conn.execute(
            update(config_changes).where(config_changes.c.id == change_id).values(**values)
        )

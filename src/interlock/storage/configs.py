"""Config versions: every config the server loaded, numbered, with its hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy import text as sql

from interlock.domain.records import ConfigVersion
from interlock.storage.base import QueryBase, found
from interlock.storage.schema import config_versions


class ConfigQueries(QueryBase):
    def lock_configs(self) -> None:
        """Serialise config loads (two servers starting at once store one version)."""
        if self.dialect == "postgresql":
            self.conn.execute(sql("SELECT pg_advisory_xact_lock(727003)"))

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
        self.conn.execute(
            config_versions.insert().values(
                version=version, hash=hash, path=path, text=text, loaded_at=at, loaded_by=by
            )
        )
        return version

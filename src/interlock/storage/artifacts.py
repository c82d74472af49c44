"""Artifacts (builds registered by CI) and observed versions (drift)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from interlock.domain.records import Artifact, Observation
from interlock.storage.base import QueryBase, found
from interlock.storage.schema import artifacts, observations, release_items


class ArtifactQueries(QueryBase):
    def get_artifact(self, service: str, version: str) -> Artifact | None:
        row = self.conn.execute(
            select(artifacts).where(artifacts.c.service == service, artifacts.c.version == version)
        ).first()
        return Artifact(**row._mapping) if row else None

    def require_artifact(self, service: str, version: str) -> Artifact:
        """:meth:`get_artifact` of one assumed to exist; :class:`NotFound` if it does not."""
        return found(self.get_artifact(service, version), f"artifact {service}@{version}")

    def add_artifact(
        self,
        *,
        service: str,
        version: str,
        digest: str,
        commit: str | None,
        repo: str | None,
        build_url: str | None,
        committed_at: datetime | None,
        at: datetime,
        by: str,
    ) -> Artifact:
        self.conn.execute(
            artifacts.insert().values(
                service=service,
                version=version,
                digest=digest,
                commit_sha=commit,
                repo=repo,
                build_url=build_url,
                committed_at=committed_at,
                registered_at=at,
                registered_by=by,
            )
        )
        return self.require_artifact(service, version)

    def fill_artifact(
        self,
        artifact_id: int,
        *,
        digest: str,
        commit: str | None,
        repo: str | None,
        build_url: str | None,
        committed_at: datetime | None,
    ) -> None:
        """Register the content of a version that was blocked before it was registered."""
        self.conn.execute(
            update(artifacts)
            .where(artifacts.c.id == artifact_id)
            .values(
                digest=digest,
                commit_sha=commit,
                repo=repo,
                build_url=build_url,
                committed_at=committed_at,
            )
        )

    def placeholder_artifact(self, service: str, version: str, at: datetime, by: str) -> None:
        """A version known only as blocked (it may never have been registered)."""
        self.conn.execute(
            artifacts.insert().values(
                service=service, version=version, registered_at=at, registered_by=by
            )
        )

    def list_artifacts(
        self, service: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[Artifact]:
        """Artifacts, newest first; ``before_id``: only those registered before that one."""
        query = select(artifacts).order_by(artifacts.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(artifacts.c.id < before_id)
        if service:
            query = query.where(artifacts.c.service == service)
        return [Artifact(**r._mapping) for r in self.conn.execute(query)]

    def block_artifact(
        self,
        service: str,
        version: str,
        *,
        at: datetime | None,
        by: str | None,
        reason: str | None,
    ) -> bool:
        result = self.conn.execute(
            update(artifacts)
            .where(artifacts.c.service == service, artifacts.c.version == version)
            .values(blocked_at=at, blocked_by=by, block_reason=reason)
        )
        return bool(result.rowcount)

    def services_with_version(self, version: str) -> list[str]:
        """Services that have a registered artifact or a release of ``version``."""
        found = {
            r.service
            for r in self.conn.execute(
                select(artifacts.c.service).where(artifacts.c.version == version)
            )
        }
        found |= {
            r.service
            for r in self.conn.execute(
                select(release_items.c.service).distinct().where(release_items.c.version == version)
            )
        }
        return sorted(found)

    # -- observed versions ---------------------------------------------------------
    def observe(self, service: str, environment: str, version: str, at: datetime, by: str) -> None:
        self.conn.execute(
            delete(observations).where(
                observations.c.service == service, observations.c.environment == environment
            )
        )
        self.conn.execute(
            observations.insert().values(
                service=service,
                environment=environment,
                version=version,
                observed_at=at,
                observed_by=by,
            )
        )

    def all_observations(self) -> list[Observation]:
        return [Observation(**r._mapping) for r in self.conn.execute(select(observations))]

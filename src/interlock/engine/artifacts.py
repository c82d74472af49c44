"""Artifacts: the builds CI registers, pinned by digest from registration to production.

An artifact is immutable: registering the same version with another digest is
refused (and audited). A release pins each item to its artifact's digest, so
what was approved is what is deployed. Blocking a version stops it anywhere.
"""

from __future__ import annotations

from datetime import datetime

from interlock.domain.names import (
    check_commit,
    check_digest,
    check_service_name,
    check_version,
)
from interlock.domain.records import Artifact, Item
from interlock.domain.states import ReleaseState
from interlock.engine.core import Engine
from interlock.engine.progress import abort
from interlock.engine.transitions import move_release
from interlock.errors import Conflict, InvalidInput, NotFound
from interlock.storage.tx import Tx


def register(
    engine: Engine,
    *,
    actor: str,
    service: str,
    version: str,
    digest: str,
    commit: str | None = None,
    repo: str | None = None,
    build_url: str | None = None,
    committed_at: datetime | None = None,
) -> tuple[Artifact, bool]:
    """Register a build; return it and whether it is new (the same build twice is fine)."""
    check_service_name(service)
    check_version(version)
    check_digest(digest)
    if commit is not None:
        check_commit(commit)
    if committed_at is not None and committed_at.tzinfo is None:
        raise InvalidInput(
            "committed_at needs a time zone, e.g. 2026-11-27T10:00:00Z", field="committed_at"
        )
    if service not in engine.configs.active().config.services:
        raise NotFound(f"no service named {service!r} in the configuration")
    now = engine.clock.now()

    def work(tx: Tx) -> tuple[Artifact, bool | None]:
        existing = tx.get_artifact(service, version)
        if existing is not None and existing.digest is not None:
            if existing.digest == digest:
                return existing, False
            tx.audit(
                at=now,
                actor=actor,
                action="artifact.conflict",
                object_type="artifact",
                object_id=f"{service}@{version}",
                reason="a registered version cannot change its content",
                before={"digest": existing.digest},
                after={"digest": digest},
            )
            return existing, None  # refused after the audit event commits
        artifact = (
            tx.add_artifact(
                service=service,
                version=version,
                digest=digest,
                commit=commit,
                repo=repo,
                build_url=build_url,
                committed_at=committed_at,
                at=now,
                by=actor,
            )
            if existing is None
            else _fill(tx, existing, digest, commit, repo, build_url, committed_at)
        )
        tx.audit(
            at=now,
            actor=actor,
            action="artifact.registered",
            object_type="artifact",
            object_id=f"{service}@{version}",
            after={
                "digest": digest,
                "commit": commit,
                "repo": repo,
                "build_url": build_url,
                "committed_at": committed_at.isoformat() if committed_at else None,
            },
        )
        return artifact, True

    found, new = engine.db.run(work)
    if new is None:
        raise Conflict(
            f"{service}@{version} is already registered with digest {found.digest}; a version "
            "is immutable: build a new version instead",
            registered_digest=found.digest,
        )
    return found, bool(new)


def _fill(
    tx: Tx,
    existing: Artifact,
    digest: str,
    commit: str | None,
    repo: str | None,
    build_url: str | None,
    committed_at: datetime | None,
) -> Artifact:
    tx.fill_artifact(
        existing.id,
        digest=digest,
        commit=commit,
        repo=repo,
        build_url=build_url,
        committed_at=committed_at,
    )
    return tx.require_artifact(existing.service, existing.version)


def pin(tx: Tx, items: list[Item], *, required: bool) -> list[Item]:
    """Each item with its artifact's digest and commit; refuse blocked or changed content."""
    pinned = []
    for item in items:
        artifact = tx.get_artifact(item.service, item.version)
        if artifact is not None and artifact.blocked():
            raise Conflict(
                f"{item.service}@{item.version} is blocked: {artifact.block_reason}"
                f" (by {artifact.blocked_by})"
            )
        if artifact is None or artifact.digest is None:
            if required:
                raise Conflict(
                    f"{item.service}@{item.version} is not a registered artifact, and the "
                    "route has an environment with require_artifacts; register it from CI "
                    "with `interlock artifact register`"
                )
            pinned.append(item)
            continue
        if item.digest is not None and item.digest != artifact.digest:
            raise Conflict(
                f"{item.service}@{item.version} was registered with digest {artifact.digest}, "
                f"not {item.digest}; what is approved must be what is deployed"
            )
        pinned.append(
            Item(item.service, item.version, artifact.digest, item.commit or artifact.commit_sha)
        )
    return pinned


def block(engine: Engine, *, actor: str, service: str, version: str, reason: str) -> Artifact:
    """Mark a version bad: it can no longer be released, and deployments of it stop."""
    if not reason.strip():
        raise InvalidInput("say why the version is blocked", field="reason")
    now = engine.clock.now()

    def work(tx: Tx) -> Artifact:
        artifact = tx.get_artifact(service, version)
        if artifact is None:
            tx.placeholder_artifact(service, version, now, actor)
        elif artifact.blocked():
            raise Conflict(f"{service}@{version} is already blocked: {artifact.block_reason}")
        tx.block_artifact(service, version, at=now, by=actor, reason=reason.strip())
        tx.audit(
            at=now,
            actor=actor,
            action="artifact.blocked",
            object_type="artifact",
            object_id=f"{service}@{version}",
            reason=reason.strip(),
        )
        why = f"{service}@{version} was blocked by {actor}: {reason.strip()}"
        for deployment in tx.active_deployments_of(service, version):
            abort(tx, deployment, at=now, reason=why)
        for release in tx.list_releases(
            states=[ReleaseState.SCHEDULED.value], service=service, limit=500
        ):
            if any(i.service == service and i.version == version for i in release.items):
                move_release(
                    tx,
                    release,
                    ReleaseState.FAILED,
                    at=now,
                    actor=actor,
                    reason=why,
                    finished_at=now,
                    error=why,
                )
        tx.notify("cancel")
        return tx.require_artifact(service, version)

    result: Artifact = engine.db.run(work)
    return result


def unblock(engine: Engine, *, actor: str, service: str, version: str, reason: str) -> Artifact:
    now = engine.clock.now()

    def work(tx: Tx) -> Artifact:
        artifact = tx.get_artifact(service, version)
        if artifact is None or not artifact.blocked():
            raise Conflict(f"{service}@{version} is not blocked")
        tx.block_artifact(service, version, at=None, by=None, reason=None)
        tx.audit(
            at=now,
            actor=actor,
            action="artifact.unblocked",
            object_type="artifact",
            object_id=f"{service}@{version}",
            reason=reason,
            before={"blocked_by": artifact.blocked_by, "reason": artifact.block_reason},
        )
        return tx.require_artifact(service, version)

    result: Artifact = engine.db.run(work)
    return result


def observe(engine: Engine, *, actor: str, service: str, environment: str, version: str) -> None:
    """Report the version actually running (from a probe or a person): drift shows in status."""
    check_service_name(service)
    check_version(version)
    now = engine.clock.now()

    def work(tx: Tx) -> None:
        known = tx.inventory_entry(service, environment)
        tx.observe(service, environment, version, now, actor)
        tx.audit(
            at=now,
            actor=actor,
            action="service.observed",
            object_type="service",
            object_id=f"{service}@{environment}",
            data={
                "observed": version,
                "deployed": known.version if known else None,
                "drift": known is None or known.version != version,
            },
        )

    engine.db.run(work)


def services_with_version(engine: Engine, version: str) -> list[str]:
    """Which services have ``version`` (to block a bare version when it is unambiguous)."""
    check_version(version)
    with engine.db.read() as tx:
        found: list[str] = tx.services_with_version(version)
    return found


def get(engine: Engine, service: str, version: str) -> Artifact:
    with engine.db.read() as tx:
        found = tx.get_artifact(service, version)
    if found is None:
        raise NotFound(f"no artifact {service}@{version}")
    return found


def listing(
    engine: Engine, service: str | None = None, limit: int = 100, before: int | None = None
) -> list[Artifact]:
    """Registered artifacts, newest first (registered before the artifact ``before``, if given)."""
    with engine.db.read() as tx:
        found: list[Artifact] = tx.list_artifacts(service, limit, before)
    return found

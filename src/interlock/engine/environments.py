"""Environment locks and break-glass overrides of deploy windows."""

from __future__ import annotations

from interlock.domain.records import EnvironmentLock, Override
from interlock.domain.states import NodeState
from interlock.engine.access import Access
from interlock.engine.core import Engine
from interlock.engine.identity import Principal
from interlock.engine.progress import start_queued
from interlock.errors import Conflict, Forbidden, InvalidInput, NotFound
from interlock.storage.tx import Tx


def lock(engine: Engine, *, environment: str, actor: str, reason: str) -> EnvironmentLock:
    """Stop every new deployment to ``environment`` until it is unlocked."""
    engine.configs.known(environment)
    if not reason.strip():
        raise InvalidInput("say why the environment is locked", field="reason")
    now = engine.clock.now()

    def work(tx: Tx) -> EnvironmentLock:
        if not tx.lock_environment(environment, actor, reason.strip(), now):
            held = tx.require_environment_lock(environment)
            raise Conflict(f"{environment} is already locked by {held.locked_by}: {held.reason}")
        tx.audit(
            at=now,
            actor=actor,
            action="environment.locked",
            object_type="environment",
            object_id=environment,
            reason=reason.strip(),
        )
        return tx.require_environment_lock(environment)

    result: EnvironmentLock = engine.db.run(work)
    return result


def unlock(engine: Engine, *, environment: str, actor: str, reason: str | None = None) -> None:
    """Lift the lock; queued deployments start at once."""
    now = engine.clock.now()

    def work(tx: Tx) -> None:
        held = tx.environment_lock(environment)
        if held is None:
            raise Conflict(f"{environment} is not locked")
        tx.unlock_environment(environment)
        tx.audit(
            at=now,
            actor=actor,
            action="environment.unlocked",
            object_type="environment",
            object_id=environment,
            reason=reason,
            before={"locked_by": held.locked_by, "reason": held.reason},
        )
        start_queued(tx, environment, at=now)

    engine.db.run(work)


def locks(engine: Engine) -> list[EnvironmentLock]:
    with engine.db.read() as tx:
        found: list[EnvironmentLock] = tx.environment_locks()
    return found


def override_window(
    engine: Engine,
    access: Access,
    who: Principal,
    *,
    release_id: int,
    environment: str,
    reason: str,
) -> Override:
    """Break glass: let a release through a closed window or freeze, audited and flagged."""
    if not reason.strip():
        raise InvalidInput("a break-glass override needs a reason", field="reason")
    now = engine.clock.now()

    def work(tx: Tx) -> Override:
        release = tx.get_release(release_id, plan=False)
        if release is None or not access.can_read(who, [i.service for i in release.items]):
            raise NotFound(f"no release {release_id}")
        access.require(
            who,
            "freeze.override",
            environment=environment,
            services=[i.service for i in release.items],
        )
        if environment not in release.route:
            raise InvalidInput(
                f"release {release_id} does not go to {environment}", field="environment"
            )
        override: Override = tx.add_override(
            release_id=release_id,
            environment=environment,
            gate="*",
            actor=who.name,
            reason=reason.strip(),
            at=now,
        )
        tx.audit(
            at=now,
            actor=who.name,
            action="window.overridden",
            object_type="release",
            object_id=release_id,
            reason=reason.strip(),
            data={"environment": environment, "override": override.id, "flagged_for_review": True},
        )
        for deployment in tx.list_deployments(release_id=release_id, environment=environment):
            for node in tx.nodes_of(deployment.id):
                if node.executor == "window" and node.state is NodeState.READY:
                    tx.update_node(node, NodeState.READY, not_before=now)
                    tx.notify("work")
        tx.touch_release(release_id, now)
        return override

    result: Override = engine.db.run(work)
    return result


def review_override(engine: Engine, who: Principal, *, override_id: int, comment: str) -> Override:
    """Record that someone other than the person who broke the glass looked at it."""
    if not comment.strip():
        raise InvalidInput("say what the review found", field="comment")
    now = engine.clock.now()

    def work(tx: Tx) -> Override:
        found = tx.get_override(override_id)
        if found is None:
            raise NotFound(f"no override {override_id}")
        if found.actor == who.name:
            raise Forbidden("an override is reviewed by someone other than who made it")
        if not tx.review_override(override_id, who.name, now, comment.strip()):
            raise Conflict(f"override {override_id} was already reviewed")
        tx.audit(
            at=now,
            actor=who.name,
            action="override.reviewed",
            object_type="override",
            object_id=override_id,
            reason=comment.strip(),
            data={"release": found.release_id, "environment": found.environment},
        )
        return tx.require_override(override_id)

    result: Override = engine.db.run(work)
    return result


def overrides(
    engine: Engine, *, unreviewed: bool = False, limit: int = 200, before: int | None = None
) -> list[Override]:
    """Break-glass overrides, newest first (older than the override ``before``, if given)."""
    with engine.db.read() as tx:
        found: list[Override] = tx.list_overrides(
            unreviewed=unreviewed, limit=limit, before_id=before
        )
    return found

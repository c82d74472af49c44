"""Creating and cancelling releases."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from interlock.domain.plan import ReleaseItem, ReleasePlan
from interlock.domain.records import Item, Release
from interlock.domain.states import TERMINAL_RELEASE, DeploymentState, ReleaseState
from interlock.engine.artifacts import pin
from interlock.engine.configs import ActiveConfig, Configs
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.engine.progress import advance, open_deployment
from interlock.engine.transitions import move_release
from interlock.errors import Conflict, InvalidInput, NotFound
from interlock.spec.planner import build_plan
from interlock.storage.tx import Tx

# A start time this little in the past is "now" from a client whose clock runs behind.
PAST_GRACE = timedelta(minutes=1)


def create_release(
    engine: Engine,
    configs: Configs,
    *,
    actor: str,
    items: Sequence[Item],
    reason: str,
    until: str | None = None,
    start: str | None = None,
    scheduled_at: datetime | None = None,
    on_behalf_of: str | None = None,
    authorize: Callable[[ReleasePlan], None] | None = None,
) -> Release:
    """Plan a release from the active config, store it with its plan, and start it.

    ``authorize`` sees the plan (its route) before anything is stored.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidInput("a release needs a reason (a ticket, a sentence)", field="reason")
    active = configs.active()
    draft = _plan(active, items, until=until, start=start)
    if authorize is not None:
        authorize(draft)
    required = any(e.settings.require_artifacts for e in draft.environments)
    now = engine.clock.now()
    if scheduled_at is not None and scheduled_at < now - PAST_GRACE:
        later = (
            (now + timedelta(hours=1)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        )
        raise InvalidInput(
            f"`at` {scheduled_at.isoformat(timespec='seconds')} is in the past (it is "
            f"{now.isoformat(timespec='seconds')} now): leave it out to start now, or give "
            f"a time to come, e.g. {later.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            field="at",
        )
    scheduled = scheduled_at is not None and scheduled_at > now

    def work(tx: Tx) -> Release:
        pinned = pin(tx, list(items), required=required)
        plan = _plan(active, pinned, until=until, start=start)
        return store_release(
            tx,
            plan,
            pinned,
            actor=actor,
            reason=reason,
            at=now,
            scheduled_at=scheduled_at if scheduled else None,
            on_behalf_of=on_behalf_of,
        )

    result: Release = engine.db.run(work)
    return result


def _plan(
    active: ActiveConfig, items: Sequence[Item], *, until: str | None, start: str | None
) -> ReleasePlan:
    """The plan of ``items`` on the route of the active config."""
    return build_plan(
        active.config,
        [ReleaseItem(i.service, i.version, i.digest, i.commit) for i in items],
        config_version=active.version,
        base_dir=active.base_dir,
        until=until,
        start=start,
    )


def preview_release(
    engine: Engine,
    configs: Configs,
    *,
    items: Sequence[Item],
    until: str | None = None,
    start: str | None = None,
) -> tuple[ReleasePlan, list[Item]]:
    """What ``create_release`` would plan, with the artifacts it would pin; stores nothing.

    Refuses what creating would refuse for the same reasons (a blocked version, an
    unregistered artifact where the route requires one, a route that cannot start there).
    """
    active = configs.active()
    draft = _plan(active, items, until=until, start=start)
    required = any(e.settings.require_artifacts for e in draft.environments)
    with engine.db.read() as tx:
        pinned = pin(tx, list(items), required=required)
        if start is not None:
            _check_promotion(tx, draft)
    return draft, pinned


def store_release(
    tx: Tx,
    plan: ReleasePlan,
    items: Sequence[Item],
    *,
    actor: str,
    reason: str,
    at: datetime,
    scheduled_at: datetime | None = None,
    on_behalf_of: str | None = None,
    kind: str = "deploy",
) -> Release:
    """Store a planned release and open its first deployment (unless it is scheduled)."""
    _check_promotion(tx, plan)
    state = ReleaseState.SCHEDULED if scheduled_at is not None else ReleaseState.RUNNING
    release_id = tx.insert_release(
        reason=reason,
        created_by=actor,
        on_behalf_of=on_behalf_of,
        kind=kind,
        at=at,
        state=state,
        config_version=plan.config_version,
        plan=plan,
        items=list(items),
        scheduled_at=scheduled_at,
    )
    tx.audit(
        at=at,
        actor=actor,
        action="release.created" if kind == "deploy" else f"{kind}.created",
        object_type="release",
        object_id=release_id,
        reason=reason,
        after={
            "state": state.value,
            "kind": kind,
            "items": [f"{i.service}@{i.version}" for i in items],
            "digests": {i.service: i.digest for i in items if i.digest},
            "config_version": plan.config_version,
            "environments": [e.name for e in plan.environments],
        },
        data={
            "scheduled_at": scheduled_at.isoformat() if scheduled_at else None,
            "on_behalf_of": on_behalf_of,
        },
    )
    release = tx.require_release(release_id)
    if state is ReleaseState.RUNNING:
        open_deployment(tx, release, plan.environments[0], at=at, actor=actor)
    return tx.require_release(release_id)


def _check_promotion(tx: Tx, plan: ReleasePlan) -> None:
    """Refuse at once a route that starts part-way with artifacts not proven before it."""
    first = plan.environments[0]
    previous = first.settings.previous
    if not previous:
        return
    missing = [
        f"{i.service}@{i.version}"
        for i in plan.items
        if not tx.succeeded_in(previous, i.service, i.version, i.digest)
    ]
    if missing:
        raise Conflict(
            f"{', '.join(missing)} never succeeded in {previous}, so it cannot start in "
            f"{first.name} (no skipping environments); release it to {previous} first",
            missing=missing,
        )


def start_scheduled(engine: Engine, release_id: int) -> None:
    """Start a scheduled release whose time has come (called by the scheduler)."""
    now = engine.clock.now()

    def work(tx: Tx) -> None:
        release = tx.get_release(release_id, lock=True)
        if release is None or release.state is not ReleaseState.SCHEDULED:
            return
        move_release(
            tx,
            release,
            ReleaseState.RUNNING,
            at=now,
            actor=SYSTEM_ACTOR,
            reason="its scheduled time has come",
        )
        release = tx.require_release(release_id)
        plan = ReleasePlan.from_json(release.plan)
        open_deployment(tx, release, plan.environments[0], at=now, actor=SYSTEM_ACTOR)

    engine.db.run(work)


def cancel_release(engine: Engine, release_id: int, *, actor: str, reason: str) -> Release:
    """Cancel a release: nothing new starts, running steps are stopped."""
    now = engine.clock.now()

    def work(tx: Tx) -> Release:
        release = tx.get_release(release_id, lock=True)
        if release is None:
            raise NotFound(f"no release {release_id}")
        if release.state in TERMINAL_RELEASE:
            raise Conflict(
                f"release {release_id} already ended ({release.state.value}); nothing to cancel"
            )
        for deployment in tx.list_deployments(release_id=release_id):
            if deployment.finished_at is not None:
                continue
            if deployment.state is DeploymentState.ROLLING_BACK:
                continue  # a rollback under way finishes; the release ends cancelled
            tx.update_deployment(deployment.id, deployment.state, cancel_requested=True)
            tx.request_cancel(deployment.id)
        move_release(
            tx,
            release,
            ReleaseState.CANCELLED,
            at=now,
            actor=actor,
            reason=reason,
            finished_at=now,
            error=f"cancelled by {actor}: {reason}",
        )
        # The steps it stops are recorded as stopped by the person who cancelled.
        for deployment in tx.list_deployments(release_id=release_id):
            if deployment.finished_at is None:
                advance(tx, deployment.id, at=now, actor=actor, reason=reason)
        tx.notify("cancel")
        return tx.require_release(release_id)

    return engine.db.run(work)

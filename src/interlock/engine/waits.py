"""Every wait of a release explained: on what, since when, and who can move it.

One query, :func:`release_waits`, answers for the API (a release's ``waits``),
``release show``, ``release watch``, the web UI's release page and the messages
sent to people. Each wait is a record of its kind (:mod:`interlock.domain.waits`)
with a ``summary`` sentence a person can act on; ``as_dict`` is its JSON.

The kinds: an approval gate (who can approve, who did, when the approvals
expire), a deploy window (when it opens), a freeze (until when, set where), a
polled gate (its last result, its next try), the environment's lock (who, why,
since), a deployment queued ahead (behind which release), one queued ahead and
paused for a person, a manual step (who can sign it; in the release's pipeline or
in a runbook run it started), a step of the release that needs a person, and a
release scheduled for later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from interlock.domain.records import Deployment, Node, Release, User
from interlock.domain.states import DeploymentState, NodeState, ReleaseState
from interlock.domain.waits import (
    ApprovalRule,
    ApprovalWait,
    AttentionWait,
    CheckWait,
    FreezeWait,
    Given,
    LockWait,
    ManualWait,
    PausedWait,
    QueueWait,
    ScheduledWait,
    Wait,
    WindowWait,
)
from interlock.engine.access import Access
from interlock.engine.approvals import gate_status, people_lookup
from interlock.engine.core import Engine
from interlock.engine.identity import Principal
from interlock.engine.queue import blockers_of
from interlock.engine.run_visibility import may_read_run
from interlock.engine.views import ReleaseView, release_view
from interlock.storage.tx import Tx

People = Callable[[str], tuple[User, Principal] | None]

POLLED = ("check", "metric", "soak")
_NESTED_RUNS = 5  # a runbook step's run may start runs of its own; look this deep


def _at(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _show(value: datetime | None) -> str:
    """A time in a sentence: UTC, to the second (clients show their own local time)."""
    if value is None:
        return "an unknown time"
    return value.astimezone(UTC).isoformat(timespec="seconds")


def waits_of(engine: Engine, access: Access, release_id: int) -> list[Wait]:
    """Every wait of release ``release_id`` now (what a message about it renders)."""
    return release_waits(engine, access, release_view(engine, release_id))


def release_waits(engine: Engine, access: Access, view: ReleaseView) -> list[Wait]:
    """Every wait of the release in ``view`` now, in route order (one read transaction)."""
    release = view.release
    now = engine.clock.now()
    found: list[Wait] = []
    if release.state is ReleaseState.SCHEDULED:
        found.append(
            ScheduledWait(
                release=release.id,
                deployment=None,
                environment=None,
                since=release.created_at,
                starts_at=release.scheduled_at,
                summary=f"scheduled: it starts at {_show(release.scheduled_at)}",
            )
        )
    with engine.db.read() as tx:
        people = people_lookup(tx, engine)
        services = [i.service for i in release.items]
        for dv in view.deployments:
            deployment = dv.deployment
            if deployment.finished_at is not None:
                continue
            if deployment.state is DeploymentState.QUEUED:
                found.extend(_queued(release, deployment, blockers_of(tx, deployment)))
                continue
            for node in dv.nodes:
                found.extend(
                    _node_waits(
                        tx, engine, access, people, release, services, deployment, node, now
                    )
                )
    return found


def approval_wait(
    tx: Tx, engine: Engine, release: Release, deployment: Deployment, node: Node, now: datetime
) -> ApprovalWait:
    """The wait of approval gate ``node`` inside ``tx``: what a message about it says
    (the same record the API, the CLI and the web UI show)."""
    return _approval(
        tx,
        engine,
        Access(engine.configs),
        people_lookup(tx, engine),
        release,
        [i.service for i in release.items],
        deployment,
        node,
        now,
    )


def _queued(release: Release, deployment: Deployment, entries: list[dict[str, Any]]) -> list[Wait]:
    out: list[Wait] = []
    for entry in entries:
        common: dict[str, Any] = {
            "release": release.id,
            "deployment": deployment.id,
            "environment": deployment.environment,
            "since": deployment.created_at,
            "summary": entry["detail"],
        }
        if "lock" in entry:
            lock = entry["lock"]
            since = _at(lock["since"])
            summary = (
                f"{deployment.environment} is locked by {lock['by']}: {lock['reason']} "
                f"(since {_show(since)}; it starts once the lock is lifted)"
            )
            out.append(
                LockWait(
                    **{**common, "since": since, "summary": summary},
                    by=lock["by"],
                    reason=lock["reason"],
                )
            )
            continue
        ahead: dict[str, Any] = {
            "behind_deployment": entry["deployment"],
            "behind_release": entry["release"],
            "services": tuple(entry["services"]),
            "state": entry["state"],
        }
        if entry["state"] == DeploymentState.NEEDS_ATTENTION.value or "step_id" in entry:
            out.append(
                PausedWait(
                    **common,
                    **ahead,
                    paused_step_id=entry.get("step_id"),
                    paused_step=entry.get("step"),
                )
            )
        else:
            out.append(QueueWait(**common, **ahead))
    return out


def _node_waits(
    tx: Tx,
    engine: Engine,
    access: Access,
    people: People,
    release: Release,
    services: list[str],
    deployment: Deployment,
    node: Node,
    now: datetime,
    *,
    depth: int = 0,
    prefix: str = "",
) -> list[Wait]:
    common: dict[str, Any] = {
        "release": release.id,
        "deployment": deployment.id,
        "environment": deployment.environment,
        "step_id": node.id,
        "step": prefix + node.key,
        "since": node.started_at or deployment.started_at,
    }
    # A gate is named as `approve --gate` and the log headers name it; a step by its key.
    where = f"{deployment.environment}/{prefix}{node.name if node.kind == 'gate' else node.key}"
    if node.state is NodeState.NEEDS_ATTENTION:
        command = f"interlock resolve {node.id} --retry|--skip|--fail|--rollback --reason '…'"
        return [
            AttentionWait(
                **common,
                error=node.error,
                resolve=command,
                summary=f"{where} (step id {node.id}) needs a person: "
                f"{node.error or 'it stopped'}; decide with `{command}`",
            )
        ]
    if node.executor == "manual" and node.state is NodeState.WAITING:
        return [_manual(tx, engine, access, people, services, deployment, node, common, where)]
    if node.executor == "runbook" and node.state is NodeState.WAITING and depth < _NESTED_RUNS:
        out: list[Wait] = []
        for run in tx.children_of(node.id):
            if run.finished_at is not None:
                continue
            for child in tx.nodes_of(run.id):
                out.extend(
                    _node_waits(
                        tx,
                        engine,
                        access,
                        people,
                        release,
                        services,
                        run,
                        child,
                        now,
                        depth=depth + 1,
                        prefix=f"{prefix}{node.key} > ",
                    )
                )
        return out
    if node.kind != "gate":
        return []
    if node.executor == "approval" and node.state is NodeState.WAITING:
        return [_approval(tx, engine, access, people, release, services, deployment, node, now)]
    waiting = node.state is NodeState.READY and node.attempt > 0
    if node.executor == "window" and waiting:
        return [_window(tx, release, node, common, where, now)]
    if node.executor in POLLED and (waiting or node.state is NodeState.RUNNING):
        result = node.result or {}
        next_try = node.not_before if node.state is NodeState.READY else None
        last = result.get("last") or node.error
        return [
            CheckWait(
                **common,
                gate=node.name,
                type=node.executor,
                last=last,
                tries=node.attempt,
                next_try=next_try,
                summary=f"{where} ({node.executor}) "
                + (f"try {node.attempt}: {node.error or last or 'not passed yet'}")
                + (f"; next try at {_show(next_try)}" if next_try else "; checking now"),
            )
        ]
    return []


def _window(
    tx: Tx, release: Release, node: Node, common: dict[str, Any], where: str, now: datetime
) -> Wait:
    result = node.result or {}
    opens_at = _at(result.get("opens_at")) or node.not_before
    until = _at(result.get("freeze_until"))
    if result.get("freeze") and (until is None or until > now):
        source = result.get("freeze_source")
        config = tx.get_config(release.config_version)  # who set it: who loaded that config
        loaded_by = config.loaded_by if config is not None else None
        return FreezeWait(
            **common,
            gate=node.name,
            until=until,
            reason=result.get("freeze"),
            set_by=source,
            config_version=release.config_version,
            loaded_by=loaded_by,
            opens_at=opens_at,
            summary=f"{where}: frozen until {_show(until)}: {result.get('freeze')}"
            + (f" (set in {source}" if source else " (set")
            + f" of config v{release.config_version}"
            + (f", loaded by {loaded_by})" if loaded_by else ")")
            + (f"; it looks again at {_show(opens_at)}" if opens_at else ""),
        )
    reason = result.get("reason") or node.error
    if result.get("freeze"):  # it was frozen when the gate last looked; the freeze is over
        reason = f"the freeze ({result['freeze']}) ended at {_show(until)}"
    return WindowWait(
        **common,
        gate=node.name,
        opens_at=opens_at,
        reason=reason,
        summary=f"{where}: the deploy window is closed"
        + (f" ({reason})" if reason else "")
        + f"; it opens at {_show(opens_at)}",
    )


def _approval(
    tx: Tx,
    engine: Engine,
    access: Access,
    people: People,
    release: Release,
    services: list[str],
    deployment: Deployment,
    node: Node,
    now: datetime,
) -> ApprovalWait:
    environment = deployment.environment or ""
    status, valid, _ = gate_status(tx, engine, node, environment, release, now, people)

    def can_approve(name: str) -> bool:
        found = people(name)
        if found is None or found[0].disabled:
            return False
        return bool(
            found[1].is_person()
            and access.allows(found[1], "approve", environment=environment, services=services)
        )

    rules = tuple(
        ApprovalRule(
            rule=entry.slot.describe(),
            kind=entry.slot.kind,
            group=entry.slot.group,
            needed=entry.slot.count,
            missing=entry.missing,
            given_by=tuple(
                Given(a.approver, a.created_at, a.expires_at, a.comment)
                for a in valid
                if a.approver in entry.given_by
            ),
            can_clear=tuple(n for n in entry.eligible if can_approve(n)),
        )
        for entry in status
    )
    expiries = [a.expires_at for a in valid if a.expires_at is not None]
    expires_at = min(expiries) if expiries else None
    needed = "; ".join(
        f"{r.rule}: {r.missing} more from {', '.join(r.can_clear) or 'nobody (check roles)'}"
        for r in rules
        if r.missing
    )
    given = ", ".join(sorted({g.by for r in rules for g in r.given_by}))
    lasts = node.spec.get("expires")
    return ApprovalWait(
        release=release.id,
        deployment=deployment.id,
        environment=deployment.environment,
        step_id=node.id,
        step=node.key,
        since=node.started_at or deployment.started_at,
        gate=node.name,
        rules=rules,
        expires_at=expires_at,
        approvals_last=float(lasts) if lasts is not None else None,
        summary=f"{environment}/{node.name} waits for approval: {needed or 'nothing more'}"
        + (f"; approved so far by {given}" if given else "")
        + (f" (the first of those expires at {_show(expires_at)})" if expires_at else ""),
    )


def signers(
    tx: Tx,
    engine: Engine,
    access: Access,
    people: People,
    node: Node,
    environment: str | None,
    services: Sequence[str] | None,
) -> tuple[str, str, tuple[str, ...]]:
    """(``role`` or ``team``, its name, who in it may sign the manual step ``node`` now)."""
    manual = node.spec.get("manual") or {}
    kind = "role" if manual.get("role") else "team"
    group = str(manual.get("role") or manual.get("team") or "")
    config = engine.configs.active().config if engine.configs is not None else None
    declared = (config.roles if kind == "role" else config.teams) if config is not None else {}
    members = set(declared.get(group, [])) | tx.members(kind, group)
    may = []
    for name in sorted(members):
        found = people(name)
        if found is None or found[0].disabled or not found[1].is_person():
            continue
        if services is not None and not access.can_read(found[1], services):
            continue  # `runbook sign` answers 404 to who may not see the release
        if access.allows(found[1], "runbook.sign", environment=environment, services=services):
            may.append(name)
    return kind, group, tuple(may)


def _manual(
    tx: Tx,
    engine: Engine,
    access: Access,
    people: People,
    services: list[str],
    deployment: Deployment,
    node: Node,
    common: dict[str, Any],
    where: str,
) -> Wait:
    # As `runbook sign` checks it: a run's own step, without the release's services.
    scope = services if deployment.release_id is not None else None
    kind, group, may = signers(tx, engine, access, people, node, deployment.environment, scope)
    instructions = (node.spec.get("manual") or {}).get("instructions")
    command = f"interlock runbook sign {deployment.id} {node.name}"
    return ManualWait(
        **common,
        run=deployment.id,
        runbook=deployment.runbook,
        instructions=instructions,
        signer_kind=kind,
        signer=group,
        can_sign=may,
        sign=command,
        summary=f"{where} waits for {kind} {group} to sign off"
        + (f": {instructions}" if instructions else "")
        + f"; can sign: {', '.join(may) or 'nobody (check roles and permissions)'}"
        f" (`{command}`)",
    )


def owning_release(tx: Tx, run_: Deployment) -> Release | None:
    """The release of a deployment, or of the pipeline that started a runbook run (maybe
    through runs that started runs); ``None`` for a run started by hand."""
    found: Deployment | None = run_
    for _ in range(_NESTED_RUNS + 1):
        if found is None or found.release_id is not None:
            break
        parent = tx.get_node(found.parent_node_id) if found.parent_node_id else None
        found = tx.get_deployment(parent.deployment_id) if parent is not None else None
    if found is None or found.release_id is None:
        return None
    release: Release | None = tx.get_release(found.release_id, plan=False)
    return release


def manual_for(
    tx: Tx,
    engine: Engine,
    access: Access,
    who: Principal,
    people: People,
    node: Node,
    deployment: Deployment,
    now: datetime,
) -> dict[str, Any] | None:
    """A manual step waiting for a sign-off as "waiting on me" shows it, if ``who`` may
    sign it (in its role or team, with ``runbook.sign``, and able to see it)."""
    if not who.is_person():
        return None
    release = owning_release(tx, deployment)
    services = [i.service for i in release.items] if release is not None else None
    if deployment.release_id is not None:
        if services is None or not access.can_read(who, services):
            return None
    elif not may_read_run(tx, access, who, deployment):
        return None
    scope = services if deployment.release_id is not None else None
    kind, group, may = signers(tx, engine, access, people, node, deployment.environment, scope)
    if who.name not in may:
        return None
    manual = node.spec.get("manual") or {}
    return {
        "kind": "manual",
        "release": release.id if release is not None else None,
        "run": deployment.id,
        "runbook": deployment.runbook,
        "environment": deployment.environment,
        "step": node.key,
        "step_name": node.name,  # what the sign-off names
        "step_id": node.id,
        "instructions": manual.get("instructions"),
        "signer": f"{kind} {group}",
        "items": [f"{i.service}@{i.version}" for i in release.items] if release else [],
        "reason": release.reason if release is not None else "",
        "created_by": release.created_by if release is not None else deployment.created_by,
        "waiting_since": (node.started_at or now).isoformat(),
        "sign": f"interlock runbook sign {deployment.id} {node.name}",
        "rules": [],
    }

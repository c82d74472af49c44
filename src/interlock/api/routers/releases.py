"""Releases: create, list, show, watch, cancel, logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from starlette.concurrency import run_in_threadpool

from interlock.api.deps import AppDep, Id, PrincipalDep
from interlock.api.paging import Cursor, limit_query, page_of
from interlock.api.schemas import (
    CancelIn,
    DeploymentOut,
    LogOut,
    Page,
    Progress,
    ReleaseCreate,
    ReleaseOut,
    StepOut,
)
from interlock.api.text import Line
from interlock.domain.bounds import MAX_ID, AttemptNumber
from interlock.domain.names import parse_ref
from interlock.domain.plan import ReleasePlan
from interlock.domain.records import Item, Node
from interlock.domain.states import ReleaseState
from interlock.engine import views
from interlock.engine.approval_views import open_gates
from interlock.engine.estimates import gate_waits
from interlock.engine.queue import queued_behind
from interlock.engine.releases import cancel_release, create_release
from interlock.engine.waits import release_waits
from interlock.errors import Forbidden, InvalidInput, NotFound

router = APIRouter(tags=["releases"])


def release_out(view: views.ReleaseView) -> ReleaseOut:
    deployments = []
    done = 0
    envs_done: set[str | None] = set()
    for dv in view.deployments:
        steps = [StepOut.of(n, dv.attempts.get(n.id)) for n in dv.nodes]
        out_deployment = DeploymentOut.of(dv.deployment, steps)
        out_deployment.services = views.service_states(dv.nodes)
        deployments.append(out_deployment)
        # A rollback release's deployments are of kind "rollback" and run its plan like
        # any other; only the rollback steps appended to a failed deployment are not in
        # the plan.
        done += sum(
            1
            for n in dv.nodes
            if n.phase != "rollback" and n.state.value in ("succeeded", "skipped")
        )
        if dv.deployment.state.value == "succeeded":
            envs_done.add(dv.deployment.environment)
    out = ReleaseOut.of(view.release, deployments)
    total = sum(len(env.nodes) for env in view.release.planned.environments)
    out.progress = Progress(
        steps_done=done,
        steps_total=total,
        environments_done=len(envs_done),
        environments_total=len(out.environments),
    )
    return out


@router.post("/releases", status_code=status.HTTP_201_CREATED, response_model=ReleaseOut)
def create(
    body: ReleaseCreate,
    app: AppDep,
    who: PrincipalDep,
) -> ReleaseOut:
    """Create a release of one or more SERVICE@VERSION and start it (or schedule it)."""
    items = [Item(r.service, r.version) for r in map(parse_ref, body.services)]
    items += [Item(i.service, i.version, i.digest, i.commit) for i in body.items]
    if not items:
        raise InvalidInput(
            "give at least one SERVICE@VERSION in `services` or `items`", field="services"
        )
    on_behalf_of = None
    if body.on_behalf_of is not None:
        if who.is_person():
            raise Forbidden("only a service account names the person it acts for (on_behalf_of)")
        on_behalf_of = app.identity.person(body.on_behalf_of, field="on_behalf_of").name

    def authorize(plan: ReleasePlan) -> None:
        for env in plan.environments:
            app.access.require(
                who, "release.create", environment=env.name, services=[i.service for i in items]
            )

    release = create_release(
        app.engine,
        app.configs,
        actor=who.name,
        items=items,
        reason=body.reason,
        until=body.until,
        start=body.start,
        scheduled_at=body.at,
        on_behalf_of=on_behalf_of,
        authorize=authorize,
    )
    return release_out(views.release_view(app.engine, release.id))


@router.get("/releases", response_model=Page[ReleaseOut])
def list_(
    app: AppDep,
    who: PrincipalDep,
    state_: Annotated[list[ReleaseState] | None, Query(alias="state")] = None,
    service: Line | None = None,
    created_by: Line | None = None,
    cursor: Cursor = None,
    limit: int = limit_query(50, 200),
) -> Page[ReleaseOut]:
    """Releases, newest first; filter by state, service or creator (only what you may read)."""
    readable = app.access.readable_services(who)
    return page_of(
        lambda before, n: views.list_releases(
            app.engine,
            states=[s.value for s in state_ or []],
            service=service,
            created_by=created_by,
            cursor=before,
            limit=n,
            services_in=sorted(readable) if readable is not None else None,
        ),
        key=lambda r: r.id,
        cursor=cursor,
        limit=limit,
        out=ReleaseOut.of,
    )


@router.get("/releases/{release_id}", response_model=ReleaseOut)
async def get(
    release_id: Id,
    app: AppDep,
    who: PrincipalDep,
    since: Annotated[
        int | None,
        Query(
            ge=-1,  # what `release watch` asks first: any revision is past it
            le=MAX_ID,
            description="Long-poll: answer once the revision is past this one.",
        ),
    ] = None,
    wait: float = Query(default=0, ge=0, le=60, description="Long-poll for at most this long."),
) -> ReleaseOut:
    """One release with its deployments and steps (long-poll with `since` and `wait`)."""
    services = await run_in_threadpool(views.release_services, app.engine, release_id)
    if not services:  # no such release: a long-poll has nothing to wait for
        raise NotFound(f"no release {release_id}")
    app.readable_or_404(who, services, f"release {release_id}")
    if since is not None and wait > 0:
        await app.watch.wait(release_id, since, wait)
    view = await run_in_threadpool(views.release_view, app.engine, release_id)
    out = release_out(view)
    out.waiting_on = await run_in_threadpool(
        open_gates, app.engine, app.access, view.release, view.deployments
    )
    out.queued_behind = await run_in_threadpool(
        queued_behind, app.engine, [d.deployment for d in view.deployments]
    )
    found = await run_in_threadpool(release_waits, app.engine, app.access, view)
    out.waits = [w.as_dict() for w in found]
    return out


@router.post("/releases/{release_id}/cancel", response_model=ReleaseOut)
def cancel(
    release_id: Id,
    app: AppDep,
    who: PrincipalDep,
    body: CancelIn | None = None,
) -> ReleaseOut:
    """Cancel a release: nothing new starts; running steps are stopped."""
    reason = body.reason if body else "cancelled"
    view = views.release_view(app.engine, release_id)
    services = [i.service for i in view.release.items]
    app.readable_or_404(who, services, f"release {release_id}")
    app.access.require(
        who, "release.cancel", environment=view.release.environment, services=services
    )
    cancel_release(app.engine, release_id, actor=who.name, reason=reason)
    return release_out(views.release_view(app.engine, release_id))


@router.get("/releases/{release_id}/logs", response_model=list[LogOut])
def logs(
    release_id: Id,
    app: AppDep,
    who: PrincipalDep,
    step: Line | None = Query(
        default=None,
        description="Only this step or gate: its name (`migrate`, every environment), its "
        "key (`api/migrate`), or the key the logs print (`staging/api/migrate`); a step "
        "that runs a runbook brings the output of the run's steps.",
    ),
    attempt: Annotated[
        AttemptNumber | None, Query(description="This try of each step that had it.")
    ] = None,
) -> list[LogOut]:
    """The output of every step of a release (the latest attempt of each, or ``attempt``):
    steps, gates that wrote some (a check's, a metric's), and the steps of the runbook runs
    its pipeline started (keyed ``ENV/STEP > RUNBOOK-STEP``)."""
    view = views.release_view(app.engine, release_id)
    app.readable_or_404(who, [i.service for i in view.release.items], f"release {release_id}")
    out: list[LogOut] = []

    def add(node: Node, key: str) -> None:
        _, number, text, finished, truncated = views.step_log(app.engine, node.id, attempt)
        out.append(
            LogOut(
                step_id=node.id,
                key=key,
                attempt=number,
                text=text,
                next_offset=len(text),
                finished=finished,
                truncated=truncated,
            )
        )

    for dv in view.deployments:
        for node in dv.nodes:
            key = f"{dv.deployment.environment}/{node.key}"
            named = step in (node.name, node.key, key)
            wrote = any(a.log_size for a in dv.attempts.get(node.id, []))
            # A gate's output (a check's, a metric's) is shown when it wrote some, or
            # when it is asked for by name.
            shown = node.kind == "step" or wrote or named
            if (not step or named) and shown and node.attempt >= (attempt or 1):
                add(node, key)
            if node.executor != "runbook":
                continue
            # A runbook step's output is the output of the run it started.
            for run in views.runs_started_by(app.engine, node.id):
                for child in run.nodes:
                    inner = f"{key} > {child.key}"
                    wanted = not step or named or step in (child.name, child.key, inner)
                    if wanted and child.kind == "step" and child.attempt >= (attempt or 1):
                        add(child, inner)
    if attempt and not out:
        raise NotFound(f"no step of release {release_id} has run {attempt} times")
    if step and not out:
        raise NotFound(f"release {release_id} has no step {step!r} that has run")
    return out


@router.get("/estimates")
def estimates(
    app: AppDep,
    who: PrincipalDep,
    service: Annotated[list[Line] | None, Query()] = None,
) -> dict[str, Any]:
    """Median step durations and gate waits per environment from past runs (`interlock plan`)."""
    wanted = [s for s in service or [] if app.access.can_read(who, [s])]
    durations, runs = views.step_estimates(app.engine, wanted)
    return {"durations": durations, "runs": runs, "gates": gate_waits(app.engine)}

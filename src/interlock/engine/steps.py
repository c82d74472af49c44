"""Running one claimed node: claim it, build its context, execute it, record the outcome."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from interlock.domain.durations import doubled
from interlock.domain.records import Deployment, Node, Release
from interlock.domain.states import NodeState
from interlock.domain.templating import map_texts, missing_reference, resolve_env
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.engine.environ import inherited
from interlock.engine.gate_decisions import decide_gate
from interlock.engine.gate_outcome import apply_gate_decision
from interlock.engine.progress import advance, node_done
from interlock.engine.transitions import move_node
from interlock.executors.base import (
    LazyEnviron,
    LogSink,
    StepContext,
    StepResult,
    fill_templates,
)
from interlock.executors.registry import BUILT_IN, get_executor
from interlock.gates import evaluate
from interlock.storage.tx import Tx

log = logging.getLogger(__name__)


@dataclass
class Job:
    """A node this process holds a lease on, while it runs."""

    node: Node
    deployment: Deployment
    release: Release | None
    sink: LogSink
    ctx: StepContext
    lost: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


_BEFORE_START = {"state": NodeState.READY.value}  # (read only: its audit event's body)
_AFTER_START = {"state": NodeState.RUNNING.value}


def claim(
    tx: Tx,
    engine: Engine,
    worker: str,
    releases: dict[int, Release] | None = None,
    *,
    keep: tuple[int, Deployment] | None = None,
    ahead: tuple[Node, datetime, Deployment] | None = None,
) -> tuple[Node, Deployment, Release | None] | None:
    """Lease the next ready node and record that it started.

    ``releases`` caches what never changes about a release (its items, reason and
    author) across claims, saving two reads per step. ``keep`` names a node this
    transaction made ready and its deployment as this transaction read it: that
    node is leased if it is still ready (a worker going on with its pipeline,
    with no search for the oldest ready node), else the oldest ready one.
    ``ahead`` is a node this transaction already leased to ``worker`` (at that
    time, see :func:`complete`'s ``go_on``) with its deployment: it is started.
    """
    now = engine.clock.now()
    ttl = engine.settings.lease_ttl
    claimed: tuple[Node, Deployment] | None = None
    if ahead is not None:
        node, now, kept = ahead
        tx.start_attempt(node, worker, now)
        claimed = node, kept
    elif keep is not None:
        node_id, kept = keep
        leased = tx.claim_ready(node_id, kept.id, worker, now, ttl)
        if leased is not None:
            claimed = leased, kept
    if claimed is None:
        claimed = tx.claim_node(worker, now, ttl)
    if claimed is None:
        return None
    node, deployment = claimed
    release = None
    if deployment.release_id is not None:
        release = releases.get(deployment.release_id) if releases is not None else None
        if release is None:
            release = tx.get_release(deployment.release_id, plan=False)
            if releases is not None and release is not None:
                if len(releases) > 1000:
                    releases.clear()
                releases[release.id] = release
    if node.kind == "step":
        tx.audit(
            at=now,
            actor=SYSTEM_ACTOR,
            action="step.started",
            object_type="step",
            object_id=node.id,
            before=_BEFORE_START,
            after=_AFTER_START,
            data={
                "deployment": node.deployment_id,
                "key": node.key,
                "attempt": node.attempt,
                "worker": worker,
                "idempotency_key": node.idempotency_key(),
            },
        )
    if release is not None:
        tx.touch_release(release.id, now)
    return node, deployment, release


def variables(node: Node, deployment: Deployment, release: Release | None) -> dict[str, str]:
    """The values of ``{{ placeholders }}`` (and ``INTERLOCK_*`` variables) for a node."""
    values = {
        "environment": deployment.environment or "",
        "deployment": str(deployment.id),
        "step": node.name,
        "attempt": str(node.attempt),
        "idempotency_key": node.idempotency_key(),
        "release": str(release.id) if release else "",
        "reason": release.reason if release else "",
        "service": node.service or "",
        "version": "",
        "digest": "",
        "commit": "",
        "previous_version": "",
        "previous_digest": "",
    }
    if release is not None and node.service is not None:
        for item in release.items:
            if item.service == node.service:
                values.update(
                    version=item.version, digest=item.digest or "", commit=item.commit or ""
                )
        previous = deployment.previous.get(node.service) or {}
        values["previous_version"] = previous.get("version") or ""
        values["previous_digest"] = previous.get("digest") or ""
        if node.spec.get("to_previous"):
            # An automatic rollback step puts back what ran before this deployment.
            values["previous_version"], values["version"] = (
                values["version"],
                values["previous_version"],
            )
            values["previous_digest"], values["digest"] = (
                values["digest"],
                values["previous_digest"],
            )
    for name, value in (deployment.params or {}).items():
        values[f"params.{name}"] = str(value)
    for name, value in (node.spec.get("vars") or {}).items():
        values[f"vars.{name}"] = str(value)
    return values


def prepare(engine: Engine, node: Node, deployment: Deployment, release: Release | None) -> Job:
    values = variables(node, deployment, release)
    named = node.spec.get("secrets") or ()

    def own() -> dict[str, str]:
        """The INTERLOCK_* variables, built when an environment is (most steps need none)."""
        # ``vars.*`` reach a command as the INTERLOCK_ARG_VARS_* its placeholders refer to.
        found = {
            f"INTERLOCK_{k.upper().replace('.', '_')}": v
            for k, v in values.items()
            if not k.startswith("vars.")
        }
        # The names scripts are told to use; INTERLOCK_RELEASE and _DEPLOYMENT stay too.
        found["INTERLOCK_RELEASE_ID"] = values["release"]
        found["INTERLOCK_DEPLOYMENT_ID"] = values["deployment"]
        return found

    def worker_env() -> dict[str, str]:
        withheld = set(engine.settings.withheld_env)
        return {**{k: v for k, v in os.environ.items() if k not in withheld}, **own()}

    def environ() -> dict[str, str]:
        found = inherited(
            os.environ,
            secrets=named,
            inherit=node.spec.get("inherit_env") or (),
            withheld=engine.settings.withheld_env,
        )
        return {**found, **own()}

    sink = LogSink(
        engine.settings.log_limit,
        secrets=[*engine.secrets.values(), *(os.environ[n] for n in named if n in os.environ)],
    )
    ctx = StepContext(
        variables=values,
        environ=LazyEnviron(environ),
        cwd=node.spec.get("cwd") or os.getcwd(),
        timeout=node.timeout,
        log=sink,
        kill_grace=engine.settings.kill_grace,
        worker_env=LazyEnviron(worker_env),
    )
    return Job(node, deployment, release, sink, ctx)


def execute(engine: Engine, job: Job) -> StepResult:
    """Run the node's executor; an executor that raises fails the step, never the worker."""
    node = job.node
    try:
        refused = _resolve_vars(job)
        if refused is not None:
            return refused
        if node.kind == "gate":
            return evaluate(node.executor, node.spec, job.ctx)
        if node.executor in ("manual", "runbook"):
            return StepResult(ok=True)  # decided in the transaction that records it
        executor = get_executor(node.executor)
        spec = node.spec
        if node.executor not in BUILT_IN:
            try:
                spec = {**spec, "with": fill_templates(spec.get("with") or {}, job.ctx)}
            except KeyError as exc:
                return StepResult(
                    ok=False,
                    error=f"no value for {exc.args[0]!r} in the step's `with`: set the "
                    "environment variable on the worker or fix the placeholder",
                )
            except ValueError as exc:  # a ${file:/path} that cannot be read
                return StepResult(ok=False, error=f"in the step's `with`: {exc}")
        return _masked(job, executor.run(spec, job.ctx))
    except Exception as exc:  # noqa: BLE001 - a plug-in's bug must not kill the worker
        log.exception("executor %s failed on %s", node.executor, node.key)
        return _masked(
            job, StepResult(ok=False, error=f"executor {node.executor!r} crashed: {exc!r}")
        )


def _resolve_vars(job: Job) -> StepResult | None:
    """Read the secrets a ``{{ vars.NAME }}`` value refers to (``${VAR}``, ``${file:/path}``)
    now, as the step runs; they are masked from here on. A failed step when one has none."""
    ctx = job.ctx
    for name in job.node.spec.get("vars") or {}:
        key = f"vars.{name}"
        value = ctx.variables.get(key, "")
        if "${" not in value:
            continue
        try:
            ctx.variables[key], used = resolve_env(value, ctx.env_for_references())
        except KeyError as exc:
            return StepResult(ok=False, error=f"{{{{ {key} }}}}: {missing_reference(exc.args[0])}")
        except ValueError as exc:
            return StepResult(ok=False, error=f"{{{{ {key} }}}}: {exc}")
        ctx.log.add_secrets(used)
    return None


def _masked(job: Job, result: StepResult) -> StepResult:
    """Secrets never reach the step's error or details (stored, shown, audited)."""
    if result.error is None and not result.details:
        return result
    details = map_texts(result.details, job.sink.mask)
    error = job.sink.mask(result.error) if result.error else result.error
    return dataclasses.replace(result, error=error, details=details)


def complete(
    tx: Tx, engine: Engine, job: Job, result: StepResult, *, go_on: str | None = None
) -> Deployment | None:
    """Record the outcome of a run in one transaction, with everything it implies.

    Returns the node's deployment as this transaction read it, when the step
    succeeded and the deployment goes on as it was (its worker may claim the
    node that success made ready, with it: engine/worker.py); else ``None``.
    ``go_on`` names that worker when it would go on with that node: on SQLite
    the node is then leased to it as it becomes ready (``tx.leased_ahead``).
    """
    node = job.node
    now = engine.clock.now()
    tail, truncated = job.sink.finish()

    def ended(outcome: str) -> None:
        tx.finish_attempt(
            node.id,
            node.attempt,
            at=now,
            outcome=outcome,
            exit_code=result.exit_code,
            error=result.error,
            log=tail,
            truncated=truncated,
        )

    decided_here = node.kind == "gate" or node.executor in ("manual", "runbook")
    if result.ok and not decided_here:
        ahead = None if go_on is None else (go_on, engine.settings.lease_ttl)
        moved, going = _succeeded(tx, job, result, now, ended, ahead)
        if moved:
            return going
    current = tx.get_node(node.id, lock=True)
    stale = current is None or current.state is not NodeState.RUNNING or current.fence != node.fence
    cancelled = current is not None and current.cancel_requested
    if decided_here and current is not None and not stale and not cancelled:
        verdict = decide_gate(tx, engine, current, job.deployment, job.release, result, now)
        tx.finish_attempt(
            node.id,
            node.attempt,
            at=now,
            outcome={"pass": "passed", "fail": "failed"}.get(verdict.outcome, "waiting"),
            error=None if verdict.outcome == "pass" else verdict.reason,
            log=tail,
            truncated=truncated,
        )
        apply_gate_decision(tx, engine, current, verdict, now)
        return None
    if stale:
        ended("lost")
        log.warning("lease on %s was lost; its result is recorded but not applied", node.key)
        return None
    if cancelled:
        _cancelled(tx, job, result, now, ended, decided_here)
        return None
    if result.ok:
        moved, going = _succeeded(tx, job, result, now, ended)
        if not moved:
            ended("lost")
        return going
    ended("failed")
    common: dict[str, Any] = {"lease_owner": None, "lease_expires": None}
    if node.attempt < node.max_attempts:
        delay = doubled(node.backoff, node.attempt - 1)
        move_node(
            tx,
            node,
            NodeState.READY,
            at=now,
            actor=SYSTEM_ACTOR,
            action="step.retrying",
            reason=result.error,
            not_before=now + timedelta(seconds=delay),
            error=result.error,
            data={"retry_in": delay, "exit_code": result.exit_code},
            **common,
        )
        tx.notify("work")
    elif job.deployment.rules.on_failure == "pause":
        why = f"{result.error}; paused for a person (on_failure: pause)"
        move_node(
            tx,
            node,
            NodeState.NEEDS_ATTENTION,
            at=now,
            actor=SYSTEM_ACTOR,
            reason=why,
            error=why,
            result=result.details or None,
            data={"exit_code": result.exit_code},
            **common,
        )
    else:
        move_node(
            tx,
            node,
            NodeState.FAILED,
            at=now,
            actor=SYSTEM_ACTOR,
            finished_at=now,
            reason=result.error,
            error=result.error,
            result=result.details or None,
            data={"exit_code": result.exit_code},
            **common,
        )
    if job.release is not None:
        tx.touch_release(job.release.id, now)
    advance(tx, node.deployment_id, at=now)
    return None


def _succeeded(
    tx: Tx,
    job: Job,
    result: StepResult,
    now: datetime,
    ended: Callable[[str], None],
    ahead: tuple[str, float] | None = None,
) -> tuple[bool, Deployment | None]:
    """Record a step that succeeded under a lease still held; ``False`` when it was lost
    or its cancellation was asked (the full path then reads the node and decides).
    With ``True``, the deployment as :func:`advance` left it (``None``: it moved).

    The common case, so it skips re-reading the node: the guarded update
    (still running, same fence, no cancellation asked) is the check, and it
    locks the row as a read ``FOR UPDATE`` would.
    """
    node = job.node
    moved = move_node(
        tx,
        node,
        NodeState.SUCCEEDED,
        at=now,
        actor=SYSTEM_ACTOR,
        finished_at=now,
        error=None,
        result=result.details or None,
        data={"exit_code": result.exit_code},
        lease_owner=None,
        lease_expires=None,
    )
    if not moved:
        return False, None  # the full path reads the node and records the attempt as lost
    ended("succeeded")
    tx.lease_ahead = ahead
    try:
        node_done(tx, node, at=now, deployment=job.deployment, release=job.release)
    finally:
        tx.lease_ahead = None
    if job.release is not None:
        tx.touch_release(job.release.id, now)
    return True, advance(tx, node.deployment_id, at=now)


def _cancelled(
    tx: Tx,
    job: Job,
    result: StepResult,
    now: datetime,
    ended: Callable[[str], None],
    decided_here: bool,
) -> None:
    """Record a run whose cancellation was asked while it ran: the step ends ``cancelled``.

    Whatever its executor says. One that reports success after the cancel
    may really have done its work (the request had completed), so its attempt
    and the audit event record that outcome; but the step is not done, its
    dependents never start, and the inventory keeps what ran before. Only
    steps that succeeded before the cancel count (a service is recorded as
    deployed when all its deploy steps did), as Spinnaker keeps the stages
    that completed and marks the one it stopped ``CANCELED``.
    """
    node = job.node
    outcome = "succeeded" if result.ok and not decided_here else "cancelled"
    ended(outcome)
    reason = (
        "cancelled while it ran; it reported success after the cancel, so its effect "
        "may be in place"
        if outcome == "succeeded"
        else result.error or "cancelled"
    )
    move_node(
        tx,
        node,
        NodeState.CANCELLED,
        at=now,
        actor=SYSTEM_ACTOR,
        reason=reason,
        data={"outcome": outcome, "exit_code": result.exit_code},
        finished_at=now,
        error=reason,
        result=result.details or None,
        lease_owner=None,
        lease_expires=None,
    )
    if job.release is not None:
        tx.touch_release(job.release.id, now)
    advance(tx, node.deployment_id, at=now)

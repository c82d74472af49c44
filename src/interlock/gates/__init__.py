"""Gates: what must hold before (or after) a deployment's steps.

A gate is a node of the deployment graph. Evaluating it has two halves:
:func:`probe` does the I/O (run a check, query Prometheus) outside any
transaction, and :func:`decide` reads the database and the clock inside the
transaction that records the outcome: pass, fail, wait until a time (a timer
kept as the node's ``not_before``), or wait for an event (an approval).
Waiting costs a row, never a thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from interlock.domain.records import Deployment, Node, Override, Release
from interlock.domain.windows import WindowPolicy
from interlock.domain.windows import decide as window_decide
from interlock.errors import InvalidInput
from interlock.executors.base import StepContext, StepResult
from interlock.executors.http import HttpExecutor
from interlock.executors.shell import ShellExecutor
from interlock.gates.prometheus import PrometheusClient, evaluate_metric
from interlock.spec.metric_gate import MetricGateSpec
from interlock.spec.windows import WindowSpec

PROBED = ("check", "metric", "soak")


class GateReads(Protocol):
    """What the gates read of the transaction that records their verdict (``Tx`` has it)."""

    def succeeded_in(
        self, environment: str, service: str, version: str, digest: str | None
    ) -> bool: ...

    def overrides_for(self, release_id: int, environment: str | None = None) -> list[Override]: ...


@dataclass(frozen=True)
class Decision:
    outcome: str  # pass | fail | wait
    reason: str
    until: datetime | None = None  # with wait: look again then; None: wait for an event
    detail: dict[str, Any] = field(default_factory=dict)


def evaluate(kind: str, spec: dict[str, Any], ctx: StepContext) -> StepResult:
    """The probe half of a gate of ``kind`` (outside any transaction), run in ``ctx``.

    The decision comes in :func:`decide`.
    """
    if kind == "check":
        return _check(spec, ctx)
    if kind == "metric":
        return _metric(spec, ctx)
    if kind == "soak":
        results = []
        for item in spec.get("checks", []):
            if item.get("check"):
                outcome = _check({**item["check"], "cwd": spec.get("cwd")}, ctx)
            else:
                outcome = _metric(item["metric"], ctx)
            results.append(
                {
                    "ok": outcome.ok,
                    "message": outcome.error or outcome.details.get("message", "passed"),
                }
            )
            if not outcome.ok:
                return StepResult(ok=False, error=outcome.error, details={"checks": results})
        return StepResult(ok=True, details={"checks": results})
    return StepResult(ok=True)


def _check(spec: dict[str, Any], ctx: StepContext) -> StepResult:
    probe_ctx = dataclasses.replace(
        ctx, cwd=spec.get("cwd") or ctx.cwd, timeout=float(spec.get("attempt_timeout", 60))
    )
    if spec.get("run"):
        return ShellExecutor().run({"run": spec["run"], "env": {}}, probe_ctx)
    return HttpExecutor().run({"http": spec["http"]}, probe_ctx)


def _metric(spec: dict[str, Any], ctx: StepContext) -> StepResult:
    model = MetricGateSpec.model_validate({k: v for k, v in spec.items() if k != "cwd"})
    # ${VARS} come from the step's environment, which withholds Interlock's own secrets.
    outcome = evaluate_metric(model, PrometheusClient(environ=ctx.env_for_references()))
    ctx.log.write(outcome.message + "\n")
    # `retry` is False when polling cannot help (a PromQL syntax error, a missing ${VAR}).
    details = {"value": outcome.value, "message": outcome.message, "final": not outcome.retry}
    return StepResult(
        ok=outcome.passed, error=None if outcome.passed else outcome.message, details=details
    )


def decide(
    tx: GateReads,
    node: Node,
    deployment: Deployment,
    release: Release | None,
    probed: StepResult,
    now: datetime,
) -> Decision:
    """The gate's verdict, inside the transaction that records it."""
    decider = _DECIDERS.get(node.executor)
    if decider is None:
        return Decision("fail", f"unknown gate type {node.executor!r}")
    return decider(tx, node, deployment, release, probed, now)


def _poll(node: Node, probed: StepResult, now: datetime) -> Decision:
    detail = {
        "last": probed.details.get("message") or probed.error or "passed",
        "value": probed.details.get("value"),
        "tries": node.attempt,
    }
    if probed.ok:
        return Decision("pass", f"passed on try {node.attempt}", detail=detail)
    if probed.details.get("final"):
        return Decision("fail", f"cannot pass by waiting: {probed.error}", detail=detail)
    started = node.started_at or now
    timeout = float(node.spec.get("timeout", node.timeout))
    if (now - started).total_seconds() >= timeout:
        return Decision(
            "fail",
            f"did not pass within {timeout:g}s ({node.attempt} tries); last: {probed.error}",
            detail=detail,
        )
    interval = float(node.spec.get("interval", 10))
    return Decision(
        "wait", f"not yet: {probed.error}", until=now + timedelta(seconds=interval), detail=detail
    )


def _soak(node: Node, probed: StepResult, now: datetime) -> Decision:
    previous = node.result or {}
    started = (
        datetime.fromisoformat(previous["soak_started"]) if previous.get("soak_started") else now
    )
    duration = float(node.spec["duration"])
    detail = {"soak_started": started.isoformat(), "checks": probed.details.get("checks", [])}
    if not probed.ok:
        return Decision("fail", f"a check failed during the soak: {probed.error}", detail=detail)
    ends = started + timedelta(seconds=duration)
    if now >= ends:
        return Decision("pass", f"soaked {duration:g}s with every check passing", detail=detail)
    interval = float(node.spec.get("interval", 30))
    return Decision(
        "wait",
        f"soaking until {ends.isoformat()}",
        until=min(ends, now + timedelta(seconds=interval)),
        detail=detail,
    )


def _promotion(tx: GateReads, node: Node, release: Release | None) -> Decision:
    if release is None:
        return Decision("pass", "nothing to promote")
    previous = node.spec["previous"]
    missing = [
        f"{i.service}@{i.version}"
        for i in release.items
        if not tx.succeeded_in(previous, i.service, i.version, i.digest)
    ]
    if missing:
        return Decision(
            "fail",
            f"{', '.join(missing)} never succeeded in {previous}; release it there first "
            "(no skipping environments)",
            detail={"previous": previous, "missing": missing},
        )
    return Decision(
        "pass", f"every artifact succeeded in {previous}", detail={"previous": previous}
    )


def _window(
    tx: GateReads, node: Node, deployment: Deployment, release: Release | None, now: datetime
) -> Decision:
    if release is not None:
        overrides = [
            o
            for o in tx.overrides_for(release.id, deployment.environment)
            if o.gate in (node.key, "*")
        ]
        if overrides:
            last = overrides[-1]
            return Decision(
                "pass",
                f"overridden by {last.actor}: {last.reason} (flagged for review)",
                detail={"override": last.id, "by": last.actor, "reason": last.reason},
            )
    spec = WindowSpec.model_validate({k: v for k, v in node.spec.items() if k != "cwd"})
    try:
        policy = WindowPolicy.from_spec(spec, node.spec.get("cwd"))
    except InvalidInput as exc:
        return Decision("fail", f"the freeze calendar cannot be read: {exc.detail}")
    verdict = window_decide(now, policy)
    detail = {
        "reason": verdict.reason,
        "opens_at": verdict.opens_at.isoformat() if verdict.opens_at else None,
        "closes_at": verdict.closes_at.isoformat() if verdict.closes_at else None,
        "freeze": verdict.freeze.reason if verdict.freeze else None,
        # Who set the freeze (interlock.yaml or the calendar file) and until when:
        # what a person waiting on it asks first.
        "freeze_until": verdict.freeze.end.isoformat() if verdict.freeze else None,
        "freeze_source": verdict.freeze.source if verdict.freeze else None,
    }
    if verdict.open:
        return Decision("pass", verdict.reason, detail=detail)
    if verdict.opens_at is None:
        return Decision("fail", verdict.reason, detail=detail)
    return Decision("wait", verdict.reason, until=verdict.opens_at, detail=detail)


Decider = Callable[[GateReads, Node, Deployment, "Release | None", StepResult, datetime], Decision]

_DECIDERS: dict[str, Decider] = {
    "promotion": lambda tx, node, _d, release, _p, _now: _promotion(tx, node, release),
    "window": lambda tx, node, deployment, release, _p, now: _window(
        tx, node, deployment, release, now
    ),
    "check": lambda _tx, node, _d, _r, probed, now: _poll(node, probed, now),
    "metric": lambda _tx, node, _d, _r, probed, now: _poll(node, probed, now),
    "soak": lambda _tx, node, _d, _r, probed, now: _soak(node, probed, now),
}

"""How long a release is expected to take: each environment's steps and gates, and a total.

Steps count their median duration from past runs. Gates count what holds a release
there: an approval its median wait from history, a soak its duration, a window the
time until it opens when the environment is reached, a check or metric gate its
median time to clear. The environments run one after another, so the total is their
sum; inside one, the longest chain of needs (the critical path) counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from interlock.domain.plan import EnvironmentPlan, NodePlan, ReleasePlan
from interlock.domain.windows import WindowPolicy, next_open
from interlock.engine.core import Engine
from interlock.errors import InvalidInput
from interlock.spec.windows import WindowSpec

# Durations as the API hands them out: environment -> node key -> median seconds.
Durations = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class GateEstimate:
    """What one gate is expected to hold a release for, and on what that rests."""

    key: str
    type: str
    seconds: float | None  # None: nothing to go on (no history)
    basis: str


@dataclass(frozen=True)
class EnvironmentEstimate:
    environment: str
    seconds: float  # the critical path, steps and gates
    steps_without_history: int
    gates: list[GateEstimate] = field(default_factory=list)
    starts_at: str | None = None  # ISO time the environment is expected to be reached


@dataclass(frozen=True)
class PlanEstimate:
    environments: list[EnvironmentEstimate]
    total_seconds: float
    known: bool  # False when no step of the plan ever ran (the figures are gates only)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate_waits(engine: Engine) -> dict[str, dict[str, float]]:
    """Median time each gate took to clear, per environment, from recent deployments."""
    with engine.db.read() as tx:
        rows = tx.recent_gate_waits()
    samples: dict[tuple[str, str], list[float]] = {}
    for environment, key, _type, seconds in rows:
        samples.setdefault((environment, key), []).append(seconds)
    out: dict[str, dict[str, float]] = {}
    for (environment, key), values in samples.items():
        out.setdefault(environment, {})[key] = median(values[:20])
    return out


def _window_wait(node: NodePlan, at: datetime) -> tuple[float | None, str]:
    try:
        spec = WindowSpec.model_validate({k: v for k, v in node.spec.items() if k != "cwd"})
        policy = WindowPolicy.from_spec(spec, node.spec.get("cwd"))
    except (InvalidInput, ValueError) as exc:
        return None, f"the window cannot be read: {exc}"
    opens = next_open(at, policy)
    if opens is None:
        return None, "the window does not open in the horizon"
    wait = max(0.0, (opens - at).total_seconds())
    if wait == 0:
        return 0.0, "open when the environment is reached"
    return wait, f"opens at {opens.isoformat()}"


def _gate(node: NodePlan, history: Mapping[str, float], at: datetime) -> tuple[float | None, str]:
    if node.executor == "window":
        return _window_wait(node, at)
    if node.executor == "soak":
        return float(node.spec.get("duration", 0)), "the soak's duration"
    if node.executor == "promotion":
        return 0.0, "checked at once"
    known = history.get(node.key)
    if node.executor == "approval":
        if known is None:
            return None, "no approval given here before"
        return known, "median approval wait from history"
    if known is None:
        return None, "never cleared here before"
    return known, "median time to clear from history"


def _environment(
    env: EnvironmentPlan, steps: Mapping[str, float], gates: Mapping[str, float], at: datetime
) -> EnvironmentEstimate:
    finish: dict[str, float] = {}
    unknown = 0
    found: list[GateEstimate] = []
    for node in env.nodes:  # plans list nodes after everything they need
        start = max((finish[k] for k in node.needs if k in finish), default=0.0)
        if node.kind == "gate":
            took, basis = _gate(node, gates, at + timedelta(seconds=start))
            found.append(GateEstimate(node.key, node.executor, took, basis))
        else:
            took = steps.get(node.key)
            if took is None:
                unknown += 1
        finish[node.key] = start + (took or 0.0)
    return EnvironmentEstimate(
        environment=env.name,
        seconds=max(finish.values(), default=0.0),
        steps_without_history=unknown,
        gates=found,
        starts_at=at.isoformat(),
    )


def estimate_plan(
    plan: ReleasePlan,
    steps: Durations,
    gates: Durations,
    *,
    now: datetime,
) -> PlanEstimate:
    """Each environment's expected duration (steps and gates) and the total, from ``now``."""
    at = now
    out = []
    for env in plan.environments:
        found = _environment(env, steps.get(env.name, {}), gates.get(env.name, {}), at)
        out.append(found)
        at += timedelta(seconds=found.seconds)
    known = any(steps.get(e.name) for e in plan.environments)
    return PlanEstimate(out, sum(e.seconds for e in out), known)

"""Every gate's verdict, from one table: which module decides a gate of each kind.

Gates that people or runs decide (a manual sign-off, a runbook run, an
approval) are decided by the engine modules that own them; the rest (check,
metric, soak, window, promotion) by :func:`interlock.gates.decide`. Only the
worker's steps call :func:`decide_gate`, so the deciders never import the steps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from interlock.domain.records import Deployment, Node, Release
from interlock.engine.approvals import decide_approval
from interlock.engine.core import Engine
from interlock.engine.runbooks import decide_manual, decide_runbook_step
from interlock.executors.base import StepResult
from interlock.gates import Decision, decide
from interlock.storage.tx import Tx

EngineDecider = Callable[
    [Any, Engine, Node, Deployment, "Release | None", StepResult, datetime], Decision
]

DECIDERS: dict[str, EngineDecider] = {
    "manual": lambda tx, _engine, node, _d, _r, _p, _now: decide_manual(tx, node),
    "runbook": lambda tx, engine, node, deployment, release, _p, now: decide_runbook_step(
        tx, engine, node, deployment, release, now
    ),
    "approval": lambda tx, engine, node, deployment, release, _p, now: decide_approval(
        tx, engine, node, deployment, release, now
    ),
}


def decide_gate(
    tx: Tx,
    engine: Engine,
    node: Node,
    deployment: Deployment,
    release: Release | None,
    probed: StepResult,
    now: datetime,
) -> Decision:
    """The verdict on ``node`` (a gate, or a manual or runbook step), inside the transaction."""
    decider = DECIDERS.get(node.executor)
    if decider is None:
        return decide(tx, node, deployment, release, probed, now)
    return decider(tx, engine, node, deployment, release, probed, now)

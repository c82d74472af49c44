"""Evidence for auditors: every change to an environment in a period, read from the audit chain.

What a SOC 2 CC8.1 or SOX change-management sample asks of each change: why
(reason, ticket), what (artifact digest and commit), who made it and who
approved it (never the author), which gates and checks it passed, what came
of it (and what was rolled back), and any break-glass override with its
review. Each change is built from audit events and cites them (sequence and
hash); the document carries the chain's head and the published checkpoint it
was verified against, so the sample can be checked against an export.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from interlock.audit.chain import Verification, verify_rows
from interlock.audit.published import Published
from interlock.domain.records import AuditEvent, Deployment, Node, Release
from interlock.engine.core import Engine
from interlock.errors import InvalidInput
from interlock.storage.tx import Tx

KINDS = ("deploy", "rollback")  # a runbook run is not a change of what runs


@dataclass(frozen=True)
class Cited:
    """An audit event a change rests on."""

    seq: int
    hash: str
    action: str


@dataclass(frozen=True)
class ArtifactFact:
    service: str
    version: str
    digest: str | None
    commit: str | None


@dataclass(frozen=True)
class GateFact:
    key: str
    kind: str  # approval, check, window, metric, soak, promotion
    state: str
    at: datetime | None
    detail: str | None


@dataclass(frozen=True)
class ApprovalFact:
    by: str
    at: datetime
    gate: str | None
    decision: str  # approve | reject
    comment: str | None


@dataclass(frozen=True)
class OverrideFact:
    id: int
    by: str
    at: datetime
    reason: str | None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review: str | None = None


@dataclass(frozen=True)
class Change:
    """One deployment to the environment: the row of the evidence."""

    deployment: int
    release: int | None
    kind: str
    environment: str
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str
    error: str | None
    reason: str | None
    tickets: tuple[str, ...]
    author: str | None
    on_behalf_of: str | None
    artifacts: tuple[ArtifactFact, ...]
    gates: tuple[GateFact, ...]
    approvals: tuple[ApprovalFact, ...]
    overrides: tuple[OverrideFact, ...]
    rolled_back: tuple[str, ...]  # "api 1.4.2 -> 1.4.1": the release's version, then back on
    findings: tuple[str, ...]  # what an auditor must look at
    events: tuple[Cited, ...]


@dataclass(frozen=True)
class Evidence:
    environments: tuple[str, ...]
    since: datetime
    until: datetime
    generated_at: datetime
    generated_by: str
    changes: tuple[Change, ...]
    chain: Verification
    published: Published | None

    @property
    def findings(self) -> int:
        """How many findings the changes carry."""
        return sum(len(c.findings) for c in self.changes)


def gather(
    engine: Engine,
    *,
    environments: Sequence[str],
    since: datetime,
    until: datetime,
    actor: str,
    published: Published | None = None,
) -> Evidence:
    """The changes to ``environments`` started in ``[since, until)``, and the chain verified.

    The chain is verified in full, against ``published`` when given.
    """
    if since >= until:
        raise InvalidInput("--since must be before --until", field="since")
    pattern = re.compile(engine.configs.active().config.tickets.pattern)
    with engine.db.read() as tx:
        changes = [
            _change(tx, deployment, pattern)
            for environment in environments
            for deployment in tx.deployments_started(environment, since, until, KINDS)
        ]
        chain = verify_rows(
            tx.stored_event_rows(),
            head=tx.audit_head(),
            checkpoints=[published.checkpoint] if published else [],
        )
    changes.sort(key=lambda c: (c.started_at or since, c.deployment))
    return Evidence(
        environments=tuple(environments),
        since=since,
        until=until,
        generated_at=engine.clock.now(),
        generated_by=actor,
        changes=tuple(changes),
        chain=chain,
        published=published,
    )


def _facts(event: AuditEvent) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(event.body)
    return body


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _state(facts: dict[str, Any]) -> str | None:
    state = _mapping(facts.get("after")).get("state")
    return str(state) if state else None


def _change(tx: Tx, deployment: Deployment, pattern: re.Pattern[str]) -> Change:
    environment = deployment.environment or ""
    release: Release | None = (
        tx.get_release(deployment.release_id, plan=False) if deployment.release_id else None
    )
    items = release.items if release else ()
    gates = [n for n in tx.nodes_of(deployment.id) if n.kind == "gate"]
    events = tx.audit_of(
        {
            "deployment": [str(deployment.id)],
            "release": [str(release.id)] if release else [],
            "gate": [str(n.id) for n in gates],
            "artifact": [f"{i.service}@{i.version}" for i in items],
        }
    )
    own = [e.seq for e in events if e.object_type == "deployment"]
    if own:  # what it did to its services happened while it ran, not in every deployment's time
        services = [f"{i.service}@{environment}" for i in items]
        events += tx.audit_of({"service": services}, seqs=(min(own), max(own)))
        events.sort(key=_seq)
    used: list[AuditEvent] = []  # the events the change cites
    cite = used.append
    parsed = [(event, _facts(event)) for event in events]  # each body read once

    created = reason = author = on_behalf_of = None
    digests: dict[str, str] = {}
    commits: dict[str, str] = {}
    approvals: list[ApprovalFact] = []
    overrides: dict[int, OverrideFact] = {}
    deployed: dict[str, str] = {}
    rolled_back: list[str] = []
    for event, facts in parsed:
        data = facts.get("data") or {}
        after = _mapping(facts.get("after"))
        if event.object_type == "release" and event.action.endswith(".created"):
            cite(event)
            created = facts
            reason, author = created.get("reason"), event.actor
            on_behalf_of = data.get("on_behalf_of")
            digests = dict(after.get("digests") or {})
        elif event.action in ("approval.given", "approval.rejected"):
            if data.get("environment") == environment:
                cite(event)
                approvals.append(
                    ApprovalFact(
                        by=event.actor,
                        at=event.at,
                        gate=data.get("gate"),
                        decision="approve" if event.action == "approval.given" else "reject",
                        comment=facts.get("reason"),
                    )
                )
        elif event.action == "window.overridden" and data.get("environment") == environment:
            cite(event)
            number = int(data.get("override") or 0)
            overrides[number] = OverrideFact(number, event.actor, event.at, facts.get("reason"))
        elif event.object_type == "artifact" and event.action == "artifact.registered":
            cite(event)
            service = event.object_id.partition("@")[0]
            if after.get("commit"):
                commits[service] = str(after["commit"])
        elif event.object_type == "service" and data.get("deployment") == deployment.id:
            cite(event)
            service = event.object_id.partition("@")[0]
            if event.action == "service.deployed":
                deployed[service] = str(after.get("digest") or "")
            elif event.action == "service.rolled_back":
                attempted = next((i.version for i in items if i.service == service), "?")
                rolled_back.append(f"{service} {attempted} -> {after.get('version', 'none')}")
        elif event.object_type == "deployment":
            cite(event)
    reviews = tx.audit_of({"override": [str(n) for n in overrides]})
    for event in reviews:
        if event.action == "override.reviewed":
            cite(event)
            facts = _facts(event)
            made = overrides[int(event.object_id)]
            overrides[made.id] = OverrideFact(
                made.id, made.by, made.at, made.reason, event.actor, event.at, facts.get("reason")
            )
    gate_events = [(e, f) for e, f in parsed if e.object_type == "gate"]
    gate_facts = [_gate(n, gate_events, cite) for n in gates]
    artifacts = tuple(
        ArtifactFact(
            i.service,
            i.version,
            digests.get(i.service) or i.digest,
            i.commit or commits.get(i.service),
        )
        for i in items
    )
    findings = _findings(release, created, approvals, list(overrides.values()), artifacts, deployed)
    return Change(
        deployment=deployment.id,
        release=release.id if release else None,
        kind=deployment.kind,
        environment=environment,
        started_at=deployment.started_at,
        finished_at=deployment.finished_at,
        outcome=deployment.state.value,
        error=deployment.error,
        reason=reason,
        tickets=tuple(dict.fromkeys(pattern.findall(reason or ""))),
        author=author,
        on_behalf_of=on_behalf_of,
        artifacts=artifacts,
        gates=tuple(gate_facts),
        approvals=tuple(approvals),
        overrides=tuple(overrides.values()),
        rolled_back=tuple(rolled_back),
        findings=findings,
        events=tuple(Cited(e.seq, e.hash, e.action) for e in sorted(set(used), key=_seq)),
    )


def _seq(event: AuditEvent) -> int:
    return event.seq


def _gate(
    node: Node,
    events: list[tuple[AuditEvent, dict[str, Any]]],
    cite: Callable[[AuditEvent], None],
) -> GateFact:
    mine = [(e, f) for e, f in events if e.object_id == str(node.id) and _state(f)]
    if not mine:
        return GateFact(node.key, node.executor, node.state.value, node.finished_at, node.error)
    last, facts = mine[-1]
    cite(last)
    return GateFact(node.key, node.executor, _state(facts) or "", last.at, facts.get("reason"))


def _findings(
    release: Release | None,
    created: dict[str, Any] | None,
    approvals: list[ApprovalFact],
    overrides: list[OverrideFact],
    artifacts: tuple[ArtifactFact, ...],
    deployed: dict[str, str],
) -> tuple[str, ...]:
    found: list[str] = []
    if release is not None and created is None:
        found.append(f"release {release.id} has no creation event in the audit log")
    authors = release.authors() if release else set()
    for approval in approvals:
        if approval.decision == "approve" and approval.by in authors:
            found.append(f"approved by its own author, {approval.by}")
    approvers = {a.by for a in approvals if a.decision == "approve"} - authors
    if release is not None and release.kind == "deploy" and deployed and not approvers:
        found.append("deployed with no approval by anyone but its author")
    for override in overrides:
        if override.reviewed_by is None:
            found.append(f"break-glass override {override.id} by {override.by} is not reviewed")
        elif override.reviewed_by == override.by:
            found.append(f"break-glass override {override.id} was reviewed by who made it")
    for artifact in artifacts:
        ran = deployed.get(artifact.service)
        if ran and artifact.digest and ran != artifact.digest:
            found.append(
                f"{artifact.service}: deployed digest {ran} is not the one approved "
                f"({artifact.digest})"
            )
    return tuple(found)

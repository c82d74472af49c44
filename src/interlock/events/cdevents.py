"""Audit events as CDEvents 0.5.1 (what Interlock emits).

One audit event becomes at most one CDEvent; its ``context.id`` is the audit
event's hash, so it is stable across redeliveries and ties the CDEvent to the
tamper-evident log. Types and their versions come from the schema files.

==========================================  ======================================
audit event                                  CDEvent
==========================================  ======================================
deployment.queued                            pipelinerun.queued
deployment.running (from queued)             pipelinerun.started
deployment.succeeded / failed / rolled_back  pipelinerun.finished success / failure
/ cancelled; failed while rolling back       / failure / cancel; error
step.started                                 taskrun.started
step.succeeded / failed / retrying /         taskrun.finished success / failure /
cancelled (while running) / recovered        failure / cancel / error
service.deployed: first in the environment   service.deployed
service.deployed: replacing a version        service.upgraded
service.deployed by a rollback release,      service.rolledback
service.rolled_back
incident.opened automatically / by hand      incident.detected / incident.reported
incident.resolved                            incident.resolved
artifact.registered                          artifact.published
==========================================  ======================================
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Protocol

from interlock.domain.records import AuditEvent, Deployment, Incident, Release
from interlock.events import purl
from interlock.events.schemas import SPEC_VERSION, bundled

CONTENT_TYPE = "application/cdevents+json"


class Facts(Protocol):
    """What a mapping may look up beyond the audit event (immutable facts only)."""

    def deployment(self, deployment_id: int) -> Deployment | None: ...

    def release(self, release_id: int) -> Release | None: ...

    def incident(self, incident_id: int) -> Incident | None: ...


@dataclass(frozen=True)
class Context:
    """Who emits: ``source`` (context.source), links, ticket links."""

    source: str
    public_url: str | None = None
    ticket_url: Callable[[str], str | None] | None = None

    def link(self, path: str) -> str:
        """An absolute URI of an Interlock object: its API URL, or a URN with no public URL."""
        if self.public_url:
            return f"{self.public_url}/api/v1/{path}"
        return "urn:interlock:" + path.replace("/", ":")


@dataclass(frozen=True)
class Kind:
    """Which CDEvent an audit event becomes (decided from the event alone)."""

    name: str  # subject.predicate, e.g. pipelinerun.finished
    outcome: str | None = None


def body_of(event: AuditEvent) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(event.body)
    return body


def _state(value: Any) -> str | None:
    return value.get("state") if isinstance(value, dict) else None


def kind_of(event: AuditEvent, body: dict[str, Any] | None = None) -> Kind | None:
    """The CDEvent ``event`` maps to, or ``None`` (it has no CDEvents counterpart)."""
    body = body_of(event) if body is None else body
    action, before, data = event.action, _state(body.get("before")), body.get("data") or {}
    if action == "deployment.queued":
        return Kind("pipelinerun.queued")
    if action == "deployment.running":
        return Kind("pipelinerun.started") if before == "queued" else None
    finished = {
        "deployment.succeeded": "success",
        "deployment.failed": "error" if before == "rolling_back" else "failure",
        "deployment.rolled_back": "failure",
        "deployment.cancelled": "cancel",
    }
    if action in finished:
        return Kind("pipelinerun.finished", finished[action])
    if action == "step.started":
        return Kind("taskrun.started")
    ended = {
        "step.succeeded": "success",
        "step.failed": "failure",
        "step.retrying": "failure",
        "step.recovered": "error",
    }
    if action in ended or (action == "step.cancelled" and before == "running"):
        return Kind("taskrun.finished", ended.get(action, "cancel"))
    if action == "service.deployed":
        if data.get("kind") == "rollback":
            return Kind("service.rolledback")
        return Kind("service.deployed" if body.get("before") is None else "service.upgraded")
    if action == "service.rolled_back":
        return Kind("service.rolledback")
    if action == "incident.opened":
        return Kind("incident.detected" if data.get("automatic") else "incident.reported")
    if action == "incident.resolved":
        return Kind("incident.resolved")
    if action == "artifact.registered":
        return Kind("artifact.published")
    return None


def to_cdevent(event: AuditEvent, context: Context, facts: Facts) -> dict[str, Any] | None:
    """The CDEvent of ``event`` (a JSON object), or ``None`` when it has none."""
    body = body_of(event)
    kind = kind_of(event, body)
    return None if kind is None else cdevent_of(event, body, kind, context, facts)


def cdevent_of(
    event: AuditEvent, body: dict[str, Any], kind: Kind, context: Context, facts: Facts
) -> dict[str, Any] | None:
    """:func:`to_cdevent` of an event whose body and kind are already known."""
    build = _BUILDERS[kind.name.partition(".")[0]]
    built = build(_Mapping(event, body, kind, context, facts))
    if built is None:
        return None
    subject_id, content, release_id = built
    out: dict[str, Any] = {
        "context": {
            "specversion": SPEC_VERSION,
            "id": event.hash,
            "source": context.source,
            "type": bundled().types()[kind.name],
            "timestamp": event.at.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z",
        },
        "subject": {"id": subject_id, "source": context.source, "content": content},
        "customData": {
            "interlock": {
                "seq": event.seq,
                "action": event.action,
                "actor": event.actor,
                "object": {"type": event.object_type, "id": event.object_id},
                "reason": body.get("reason"),
                "before": body.get("before"),
                "after": body.get("after"),
                "data": body.get("data") or {},
            }
        },
        "customDataContentType": "application/json",
    }
    if release_id is not None:
        # Every event of one release shares a chain id (deterministic: same on every retry).
        out["context"]["chainId"] = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"{context.source}#releases/{release_id}")
        )
    return out


@dataclass(frozen=True)
class _Mapping:
    event: AuditEvent
    body: dict[str, Any]
    kind: Kind
    context: Context
    facts: Facts

    @property
    def data(self) -> dict[str, Any]:
        found: dict[str, Any] = self.body.get("data") or {}
        return found

    def ref(self, id_: str) -> dict[str, str]:
        return {"id": id_, "source": self.context.source}

    def artifact(self, release_id: Any, service: str | None) -> str | None:
        """The purl of ``service``'s artifact in a release, if both are known."""
        release = self.facts.release(int(release_id)) if release_id is not None else None
        item = next((i for i in (release.items if release else ()) if i.service == service), None)
        return purl.build(item.service, item.version, item.digest) if item else None


Built = tuple[str, dict[str, Any], int | None]  # subject id, content, release (for chainId)


def _pipelinerun(m: _Mapping) -> Built:
    deployment_id = int(m.event.object_id)
    deployment = m.facts.deployment(deployment_id)
    release_id = deployment.release_id if deployment else m.data.get("release")
    release = m.facts.release(int(release_id)) if release_id is not None else None
    content: dict[str, Any] = {
        "pipelineName": _pipeline_name(deployment, release, m.data),
        "uri": m.context.link(f"deployments/{deployment_id}"),
    }
    if m.kind.outcome is not None:
        content["outcome"] = m.kind.outcome
        if m.kind.outcome != "success" and m.body.get("reason"):
            content["errors"] = str(m.body["reason"])
    return f"deployments/{deployment_id}", content, release_id


def _pipeline_name(
    deployment: Deployment | None, release: Release | None, data: dict[str, Any]
) -> str:
    """A stable name per kind, services and environment (versions are in customData)."""
    environment = (deployment.environment if deployment else None) or data.get("environment")
    kind = deployment.kind if deployment else "deploy"
    if kind == "runbook":
        runbook = deployment.runbook if deployment else None
        return f"runbook {runbook}" + (f" in {environment}" if environment else "")
    services = ",".join(i.service for i in release.items) if release else "?"
    if kind == "rollback" or (release is not None and release.kind == "rollback"):
        return f"rollback {services} in {environment}"
    return f"deploy {services} to {environment}"


def _taskrun(m: _Mapping) -> Built:
    deployment_id = m.data.get("deployment")
    attempt = m.data.get("attempt") or 1
    content: dict[str, Any] = {"taskName": str(m.data.get("key") or m.event.object_id)}
    if m.context.public_url:
        content["uri"] = m.context.link(f"steps/{m.event.object_id}")
    release_id = None
    if deployment_id is not None:
        content["pipelineRun"] = m.ref(f"deployments/{deployment_id}")
        deployment = m.facts.deployment(int(deployment_id))
        release_id = deployment.release_id if deployment else None
    if m.kind.outcome is not None:
        content["outcome"] = m.kind.outcome
        if m.kind.outcome != "success" and m.body.get("reason"):
            content["errors"] = str(m.body["reason"])
    return f"steps/{m.event.object_id}/attempts/{attempt}", content, release_id


def _service(m: _Mapping) -> Built | None:
    service, _, environment = m.event.object_id.rpartition("@")
    after = m.body.get("after") or {}
    if not service or not after.get("version"):
        return None
    content = {
        "environment": m.ref(environment),
        "artifactId": purl.build(service, str(after["version"]), after.get("digest")),
    }
    release_id = m.data.get("release")
    if release_id is None and m.data.get("deployment") is not None:
        deployment = m.facts.deployment(int(m.data["deployment"]))
        release_id = deployment.release_id if deployment else None
    return service, content, release_id


def _incident(m: _Mapping) -> Built | None:
    incident_id = int(m.event.object_id)
    incident = m.facts.incident(incident_id)
    environment = m.data.get("environment") or (incident.environment if incident else None)
    if not environment:
        return None
    service = m.data.get("service") if "service" in m.data else None
    if service is None and incident is not None:
        service = incident.service
    release_id = m.data.get("release") or (incident.release_id if incident else None)
    if release_id is None and m.data.get("deployment") is not None:
        deployment = m.facts.deployment(int(m.data["deployment"]))
        release_id = deployment.release_id if deployment else None
    description = m.body.get("reason") or (incident.summary if incident else None)
    content: dict[str, Any] = {"environment": m.ref(environment)}
    if description:
        content["description"] = str(description)
    if service:
        content["service"] = m.ref(service)
        artifact = m.artifact(release_id, service)
        if artifact:
            content["artifactId"] = artifact
    if m.kind.name == "incident.reported":
        ticket = m.context.ticket_url(str(description or "")) if m.context.ticket_url else None
        content["ticketURI"] = ticket or m.context.link(f"incidents/{incident_id}")
    return f"incidents/{incident_id}", content, release_id


def _artifact(m: _Mapping) -> Built | None:
    service, _, version = m.event.object_id.partition("@")
    after = m.body.get("after") or {}
    if not service or not version:
        return None
    content = {"user": m.event.actor} if m.event.actor else {}
    return purl.build(service, version, after.get("digest")), content, None


_BUILDERS: dict[str, Callable[[_Mapping], Built | None]] = {
    "pipelinerun": _pipelinerun,
    "taskrun": _taskrun,
    "service": _service,
    "incident": _incident,
    "artifact": _artifact,
}

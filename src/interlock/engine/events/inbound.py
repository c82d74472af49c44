"""CDEvents other tools send: artifacts, observed versions, incidents.

=====================================  ==============================================
CDEvent                                 what Interlock does
=====================================  ==============================================
artifact.published, artifact.packaged  registers the artifact (service from
                                        ``notifications.services`` or the purl name,
                                        version from the purl, digest from its
                                        ``checksum`` qualifier or OCI digest)
service.deployed, .upgraded,            records an observation (what really runs:
.rolledback                             drift shows in ``interlock status``)
incident.detected, .reported            opens an incident
incident.resolved                       resolves the incident opened for that subject
anything else                           202: accepted and ignored, and says why
=====================================  ==============================================

An event Interlock cannot use (a service or environment it does not know, an
artifact without a digest) is accepted and ignored (202) with the reason: a
CD event bus sends everything, and most of it is for other tools. An event
that is not valid against its 0.5.1 schema is refused (422, naming the
field). Observations and incidents keep a receipt per (source, id, type), so
a sender's retry changes nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interlock.engine import incidents
from interlock.engine.events.receiving import (
    Ignore,
    Outcome,
    Receiver,
    digest_key,
    ignored,
    observe,
    once,
    printable,
    register_artifact,
)
from interlock.errors import InvalidInput
from interlock.events import purl
from interlock.events.schemas import SPEC_VERSION, EventType, bundled
from interlock.storage.tx import Tx


def receive(receiver: Receiver, event: object) -> Outcome:
    """Validate one CDEvent and act on it; raise :class:`InvalidInput` when it is invalid."""
    if not isinstance(event, dict):
        raise InvalidInput("the body is not a JSON object (a CDEvent)", field="body")
    printable(event)
    context = event.get("context")
    if not isinstance(context, dict) or not isinstance(context.get("type"), str):
        raise InvalidInput("context.type is missing: not a CDEvent", field="context.type")
    type_text = str(context["type"])
    meta = {"id": context.get("id"), "type": type_text}
    schemas = bundled()
    parsed = EventType.parse(type_text)
    if parsed is None or not schemas.knows(type_text):
        return ignored(meta, f"{type_text} is not a CDEvents {SPEC_VERSION} type Interlock knows")
    problems = schemas.errors(event)
    if problems:
        raise InvalidInput(
            "; ".join(f"{field}: {message}" for field, message in problems[:5]),
            field=problems[0][0],
            errors=[{"field": f, "message": m} for f, m in problems],
        )
    handler = HANDLERS.get(parsed.name)
    if handler is None:
        return ignored(meta, f"Interlock does not act on {parsed.name} events")
    if context["source"] == receiver.config.notifications.event_source():
        return ignored(meta, "this Interlock sent it")
    try:
        return handler(receiver, event, meta)
    except Ignore as skip:
        return ignored(meta, skip.reason)


# -- handlers ------------------------------------------------------------------------


def _artifact_id(text: object, field: str) -> purl.Purl:
    found = purl.parse(text) if isinstance(text, str) else None
    if found is None:
        raise Ignore(f"{field} {text!r} is not a package URL (pkg:type/name@version)")
    return found


def _purl_names(found: purl.Purl) -> list[str]:
    names = [found.without_version()]
    if found.namespace:
        names.append(f"{found.namespace}/{found.name}")
    return names + [found.name]


def _artifact(receiver: Receiver, event: dict[str, Any], meta: dict[str, Any]) -> Outcome:
    subject = event["subject"]
    found = _artifact_id(subject["id"], "subject.id")
    given = event.get("customData")
    custom: dict[str, Any] = given if isinstance(given, dict) else {}
    service = receiver.known_service(receiver.service(*_purl_names(found)), subject["id"])
    digest = found.digest() or (
        custom.get("digest") if purl.DIGEST.match(str(custom.get("digest", ""))) else None
    )
    return register_artifact(
        receiver,
        meta,
        service=service,
        version=found.tag(),
        digest=digest,
        commit=str(custom["commit"]) if custom.get("commit") else None,
        repo=found.qualifiers.get("repository_url") or found.qualifiers.get("vcs_url"),
    )


def _service(receiver: Receiver, event: dict[str, Any], meta: dict[str, Any]) -> Outcome:
    subject = event["subject"]
    content = subject["content"]
    found = _artifact_id(content["artifactId"], "subject.content.artifactId")
    service = receiver.known_service(
        receiver.service(subject["id"], *_purl_names(found)), subject["id"]
    )
    environment = receiver.known_environment(content["environment"]["id"])
    return observe(
        receiver,
        _receipt_key(event),
        meta,
        service=service,
        environment=environment,
        version=found.tag(),
        digest=found.digest(),
    )


def _subject_key(event: dict[str, Any]) -> str:
    subject = event["subject"]
    return digest_key(subject.get("source") or event["context"]["source"], subject["id"])


def _incident_service(receiver: Receiver, content: dict[str, Any]) -> str | None:
    named = (content.get("service") or {}).get("id")
    artifact = purl.parse(content["artifactId"]) if content.get("artifactId") else None
    candidates = [named] + (_purl_names(artifact) if artifact else [])
    if not any(candidates):
        return None  # an incident of the environment as a whole
    return receiver.known_service(receiver.service(*candidates), named or content["artifactId"])


def _receipt_key(event: dict[str, Any]) -> tuple[str, str, str]:
    """What a receipt is kept per: (source, id, type) of the event."""
    context = event["context"]
    return context["source"], context["id"], context["type"]


def _incident_scope(receiver: Receiver, content: dict[str, Any]) -> tuple[str, str | None]:
    """The environment and service (``None``: all of it) of an incident; the sender may manage."""
    environment = receiver.known_environment(content["environment"]["id"])
    service = _incident_service(receiver, content)
    receiver.access.require(
        receiver.who,
        "incident.manage",
        environment=environment,
        services=[service] if service else None,
    )
    return environment, service


def _incident_opened(receiver: Receiver, event: dict[str, Any], meta: dict[str, Any]) -> Outcome:
    context, subject = event["context"], event["subject"]
    content = subject["content"]
    environment, service = _incident_scope(receiver, content)
    summary = str(
        content.get("description") or f"incident {subject['id']} from {context['source']}"
    )
    if content.get("ticketURI"):
        summary += f" - {content['ticketURI']}"
    subject_key = _subject_key(event)

    def act(tx: Tx) -> tuple[str, str | None, int | None]:
        for incident_id in tx.incidents_of_subject(subject_key):
            existing = tx.get_incident(incident_id)
            if existing is not None and existing.state == "open":
                return "already open", f"incident {incident_id} is open for it", incident_id
        opened = incidents.open_incident(
            receiver.engine,
            actor=receiver.who.name,
            service=service,
            environment=environment,
            summary=summary,
        )
        return "incident opened", f"incident {opened.id} in {environment}", opened.id

    return once(receiver, _receipt_key(event), meta, act, subject_key=subject_key)


def _incident_resolved(receiver: Receiver, event: dict[str, Any], meta: dict[str, Any]) -> Outcome:
    context, subject = event["context"], event["subject"]
    content = subject["content"]
    environment, service = _incident_scope(receiver, content)
    subject_key = _subject_key(event)
    note = str(content.get("description") or f"resolved by {context['source']}")

    def act(tx: Tx) -> tuple[str, str | None, int | None]:
        linked = [i for i in map(tx.get_incident, tx.incidents_of_subject(subject_key)) if i]
        if not linked:
            # Not opened through an event: the one open incident this sender opened there.
            linked = [
                i
                # Every open one (limit None): the sender's may lie behind a page of others.
                for i in tx.list_incidents(state="open", environment=environment, limit=None)
                if i.opened_by == receiver.who.name and (service is None or i.service == service)
            ]
            if len(linked) != 1:
                raise Ignore(f"no open incident matches {subject['id']} in {environment}")
        target = next((i for i in linked if i.state == "open"), None)
        if target is None:
            return "already resolved", f"incident {linked[0].id} is resolved", linked[0].id
        incidents.resolve_incident(receiver.engine, target.id, actor=receiver.who.name, note=note)
        return "incident resolved", f"incident {target.id}", target.id

    return once(receiver, _receipt_key(event), meta, act, subject_key=subject_key)


HANDLERS: dict[str, Callable[[Receiver, dict[str, Any], dict[str, Any]], Outcome]] = {
    "artifact.published": _artifact,
    "artifact.packaged": _artifact,
    "service.deployed": _service,
    "service.upgraded": _service,
    "service.rolledback": _service,
    "incident.detected": _incident_opened,
    "incident.reported": _incident_opened,
    "incident.resolved": _incident_resolved,
}

"""GitHub webhooks: published packages become artifacts, successful deployments observations.

=====================================  ==============================================
GitHub event (``X-GitHub-Event``)       what Interlock does
=====================================  ==============================================
ping                                    200 (the hook is set up right)
package / registry_package, published   registers the artifact: service from the
                                        package or repository name, version from the
                                        tag, digest from the container digest or the
                                        package file's sha256, commit from target_oid
deployment_status, state success        records an observation of the deployed
                                        version (looked up by the deployment's commit,
                                        or ``payload.version``)
release                                 ignored: a release is a git tag, neither a
                                        build (no digest) nor a deployment
anything else                           202: accepted and ignored
=====================================  ==============================================
"""

from __future__ import annotations

from typing import Any

from interlock.domain.names import COMMIT
from interlock.domain.text import control_character
from interlock.engine.events.receiving import (
    ACTED,
    Ignore,
    Outcome,
    Receiver,
    ignored,
    observe,
    printable,
    register_artifact,
)
from interlock.errors import InvalidInput
from interlock.events import purl

MOVING_TAGS = frozenset({"latest", "main", "master", "edge", "nightly"})


def receive_github(
    receiver: Receiver, source: str, event: str, delivery: str | None, payload: object, raw: bytes
) -> Outcome:
    """Act on one GitHub delivery (its signature already verified).

    The delivery id is not signed: a replay of a delivery under another id is
    recognised by its body (see :func:`~interlock.engine.events.receiving.once`).
    """
    if not (delivery or "").strip():
        raise InvalidInput(
            "the X-GitHub-Delivery header is missing or empty: GitHub sends one with every "
            "delivery, and Interlock acts on each delivery once",
            field="X-GitHub-Delivery",
        )
    assert delivery is not None
    for header, value in (("X-GitHub-Delivery", delivery), ("X-GitHub-Event", event)):
        problem = control_character(value)  # kept with the receipt and echoed in the answer
        if problem is not None:
            raise InvalidInput(f"the {header} header {problem}", field=header)
    if not isinstance(payload, dict):
        raise InvalidInput("the body is not a JSON object (a GitHub payload)", field="body")
    printable(payload)
    action = str(payload.get("action") or "")
    kind = f"{event}.{action}" if action else event
    meta: dict[str, Any] = {"id": delivery, "type": kind}
    if event == "ping":
        return Outcome(
            ACTED,
            {
                **meta,
                "outcome": "pong",
                "zen": payload.get("zen"),
                "hook_id": payload.get("hook_id"),
            },
        )
    key = (f"github:{source}", delivery, kind)
    try:
        if event in ("package", "registry_package"):
            if action != "published":
                raise Ignore(f"a package {action or 'event'} changes nothing in Interlock")
            return _package(receiver, payload, meta)
        if event == "deployment_status":
            return _deployment_status(receiver, payload, meta, key, raw)
        if event == "release":
            raise Ignore(
                "a GitHub release is a git tag, not a build (no digest) nor a deployment: "
                "artifacts come from package events or CI, observations from deployment_status"
            )
        raise Ignore(f"Interlock does not act on GitHub {event} events")
    except Ignore as skip:
        return ignored(meta, skip.reason)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _package(receiver: Receiver, payload: dict[str, Any], meta: dict[str, Any]) -> Outcome:
    package = payload.get("package") or payload.get("registry_package") or {}
    version = package.get("package_version") or {}
    repository = payload.get("repository") or {}
    name = _text(package.get("name"))
    service = receiver.known_service(
        receiver.service(
            name,
            f"{package.get('namespace')}/{name}" if package.get("namespace") else None,
            _text(repository.get("full_name")),
            _text(repository.get("name")),
        ),
        f"package {name!r} of {repository.get('full_name')}",
    )
    container = version.get("container_metadata") or {}
    tag = (container.get("tag") or {}) if isinstance(container, dict) else {}
    # The content digest: the container's, else the one package file's, else a container's
    # version (which is its manifest digest).
    files = [f for f in version.get("package_files") or [] if f.get("sha256")]
    candidates = [
        tag.get("digest"),
        f"sha256:{files[0]['sha256']}" if len(files) == 1 else None,
        version.get("version"),
        version.get("name"),
    ]
    digest = next((d for d in candidates if isinstance(d, str) and purl.DIGEST.match(d)), None)
    # The version is the tag; a container's "version" is its digest, never a label.
    label = _text(tag.get("name")) or _text(version.get("tag_name"))
    named = _text(version.get("version"))
    if label is None and named is not None and not purl.DIGEST.match(named):
        label = named
    if label in MOVING_TAGS:
        raise Ignore(f"{label!r} is a moving tag, not a version: tag the build with its version")
    commit = _text(version.get("target_oid"))
    return register_artifact(
        receiver,
        meta,
        service=service,
        version=label,
        digest=digest,
        commit=commit if commit and COMMIT.match(commit) else None,
        repo=_text(repository.get("html_url")),
        build_url=_text(version.get("html_url")),
    )


def _deployment_status(
    receiver: Receiver,
    payload: dict[str, Any],
    meta: dict[str, Any],
    key: tuple[str, str, str],
    raw: bytes,
) -> Outcome:
    status = payload.get("deployment_status") or {}
    deployment = payload.get("deployment") or {}
    state = status.get("state")
    if state != "success":
        raise Ignore(f"deployment status {state!r}: only a successful deployment is observed")
    given = deployment.get("payload")
    extra: dict[str, Any] = given if isinstance(given, dict) else {}
    repository = payload.get("repository") or {}
    service = receiver.known_service(
        receiver.service(
            _text(extra.get("service")),
            _text(repository.get("full_name")),
            _text(repository.get("name")),
        ),
        f"repository {repository.get('full_name')!r}",
    )
    environment = receiver.known_environment(
        str(status.get("environment") or deployment.get("environment") or "")
    )
    digest = _text(extra.get("digest"))
    return observe(
        receiver,
        key,
        meta,
        service=service,
        environment=environment,
        version=_text(extra.get("version")),
        digest=digest if digest and purl.DIGEST.match(digest) else None,
        commit=_text(deployment.get("sha")),
        body=raw,
    )

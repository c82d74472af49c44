"""Acting on another tool's event: who sends, what maps to what, and doing it once.

Shared by the CDEvents receiver (:mod:`~interlock.engine.events.inbound`) and the
GitHub one (:mod:`~interlock.engine.events.github`). An event Interlock cannot use
(a service or environment it does not know, an artifact without a digest)
raises :class:`Ignore`: the answer is 202 with the reason, and whatever the
transaction did is undone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interlock.domain.names import COMMIT, VERSION
from interlock.domain.text import control_character
from interlock.engine import artifacts
from interlock.engine.access import Access
from interlock.engine.core import Engine
from interlock.engine.identity import Principal
from interlock.errors import InvalidInput
from interlock.spec.model import Config
from interlock.storage.tx import Tx

ACTED, IGNORED = 200, 202


@dataclass(frozen=True)
class Outcome:
    """The answer to a sender: 200 when Interlock acted, 202 when it ignored the event."""

    status: int
    body: dict[str, Any]


class Ignore(Exception):
    """Raised inside a transaction to undo it and answer 202 with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Receiver:
    """Who sends (after authentication), and the config that maps their names."""

    engine: Engine
    access: Access
    who: Principal
    config: Config

    def service(self, *candidates: str | None) -> str | None:
        """The Interlock service for the first name that maps (or is one)."""
        names = [c for c in candidates if c]
        mapping = self.config.notifications.services
        for name in names:
            if name in mapping:
                return mapping[name]
        return next((n for n in names if n in self.config.services), None)

    def environment(self, external: str) -> str | None:
        return self.config.notifications.environments.get(external) or (
            external if any(e.name == external for e in self.config.environments) else None
        )

    def known_service(self, service: str | None, what: str) -> str:
        if service is None:
            raise Ignore(f"no Interlock service for {what}; map it under notifications.services")
        if service not in self.config.services:
            raise Ignore(f"{what} maps to {service!r}, which is not a service in the config")
        return service

    def known_environment(self, external: str) -> str:
        found = self.environment(external)
        if found is None or not any(e.name == found for e in self.config.environments):
            raise Ignore(
                f"no Interlock environment for {external!r}; map it under "
                "notifications.environments"
            )
        return found


def printable(document: object) -> None:
    """Refuse (422 naming where) an event whose keys or strings hold a control character.

    Tabs and line breaks are fine: descriptions are text people wrote.
    """
    stack: list[tuple[object, str]] = [(document, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                stack.append((key, where or "body"))
                stack.append((child, f"{where}.{key}" if where else str(key)))
        elif isinstance(value, list):
            stack.extend((child, f"{where}[{n}]") for n, child in enumerate(value))
        elif isinstance(value, str):
            problem = control_character(value, multiline=True)
            if problem is not None:
                raise InvalidInput(f"{where or 'body'} {problem}", field=where or "body")


def digest_key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def ignored(meta: dict[str, Any], reason: str) -> Outcome:
    return Outcome(IGNORED, {**meta, "outcome": "ignored", "detail": reason})


def once(
    receiver: Receiver,
    key: tuple[str, str, str],
    meta: dict[str, Any],
    act: Callable[[Tx], tuple[str, str | None, int | None]],
    *,
    subject_key: str | None = None,
    body: bytes | None = None,
) -> Outcome:
    """Run ``act`` once per (source, id, type), in one transaction with its receipt.

    ``act`` returns (outcome, detail, incident id). A second delivery of the
    same event answers ``duplicate`` with what the first one did. With the
    signed ``body`` (whose id is not signed: GitHub's delivery header), the same
    body from the same source is the same event too, whatever id it carries.
    """
    engine = receiver.engine
    receipt = digest_key(*key)
    body_digest = hashlib.sha256(body).hexdigest() if body is not None else None

    def work(tx: Tx) -> Outcome:
        claimed = tx.claim_event_receipt(
            key=receipt,
            source=key[0],
            event_id=key[1],
            type=key[2],
            subject_key=subject_key,
            at=engine.clock.now(),
            by=receiver.who.name,
            body_digest=body_digest,
        )
        if not claimed:
            found = tx.event_receipt(receipt, source=key[0], body_digest=body_digest)
            return Outcome(
                ACTED,
                {
                    **meta,
                    "outcome": "duplicate",
                    "detail": f"already received: {found.outcome if found else 'pending'}",
                    "incident": found.incident_id if found else None,
                },
            )
        outcome, detail, incident_id = act(tx)
        tx.settle_event_receipt(receipt, outcome=outcome, detail=detail, incident_id=incident_id)
        body = {**meta, "outcome": outcome, "detail": detail}
        if incident_id is not None:
            body["incident"] = incident_id
        return Outcome(ACTED, body)

    result: Outcome = engine.db.run(work)
    return result


def register_artifact(
    receiver: Receiver,
    meta: dict[str, Any],
    *,
    service: str,
    version: str | None,
    digest: str | None,
    commit: str | None = None,
    repo: str | None = None,
    build_url: str | None = None,
) -> Outcome:
    """Register a build another tool published (idempotent by nature: no receipt needed)."""
    what = f"{service}@{version}" if version else service
    if not version:
        raise Ignore(f"the artifact of {service} names no version (a tag) to register it under")
    if not VERSION.match(version):
        raise Ignore(f"{version!r} is not a version Interlock accepts")
    if not digest:
        raise Ignore(
            f"{what} carries no sha256 digest (a purl checksum qualifier, an OCI digest, "
            "or customData.digest): Interlock pins artifacts by digest"
        )
    receiver.access.require(receiver.who, "artifact.register", services=[service])
    found, new = artifacts.register(
        receiver.engine,
        actor=receiver.who.name,
        service=service,
        version=version,
        digest=digest,
        commit=commit if commit and COMMIT.match(commit) else None,
        repo=repo,
        build_url=build_url,
    )
    return Outcome(
        ACTED,
        {
            **meta,
            "outcome": "registered" if new else "already registered",
            "detail": f"{service}@{version} {found.digest}",
            "artifact": {"service": service, "version": version, "digest": found.digest},
        },
    )


def observe(
    receiver: Receiver,
    key: tuple[str, str, str],
    meta: dict[str, Any],
    *,
    service: str,
    environment: str,
    version: str | None,
    digest: str | None = None,
    commit: str | None = None,
    body: bytes | None = None,
) -> Outcome:
    """Record what another tool says runs where (once per event; see :func:`once`)."""
    receiver.access.require(receiver.who, "artifact.register", services=[service])

    def act(tx: Tx) -> tuple[str, str | None, int | None]:
        # The digest is the truth; then a version the sender names; then the commit.
        known = tx.artifact_with_digest(service, digest) if digest else None
        resolved = known.version if known is not None else version
        if not resolved and commit:
            known = tx.artifact_with_commit(service, commit)
            resolved = known.version if known is not None else None
        if not resolved:
            by = f"digest {digest}" if digest else f"commit {commit}" if commit else "its id"
            raise Ignore(f"no artifact of {service} is registered with {by}: which version runs?")
        if not VERSION.match(resolved):
            raise Ignore(f"{resolved!r} is not a version Interlock accepts")
        artifacts.observe(
            receiver.engine,
            actor=receiver.who.name,
            service=service,
            environment=environment,
            version=resolved,
        )
        return "observed", f"{service}@{resolved} runs in {environment}", None

    return once(receiver, key, meta, act, body=body)

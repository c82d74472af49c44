"""Who sent an inbound event: a bearer token, or a source that signs with a shared secret.

A source under ``notifications.inbound`` signs the raw body with HMAC-SHA256
and acts as the user it names (a service account): that user's permissions
apply, exactly as if it had sent a token. A missing or wrong signature is
refused (401) and audited, at most once a minute per caller and endpoint, so a
scanner cannot flood the audit log.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import NoReturn

from interlock.engine.core import Engine
from interlock.engine.identity import Identity, Principal
from interlock.errors import Forbidden, NotFound, Unauthenticated
from interlock.events.signing import matching
from interlock.spec.model import Config
from interlock.spec.notifications import InboundSource

log = logging.getLogger(__name__)

_last_audit: weakref.WeakKeyDictionary[Engine, dict[tuple[str, str, str], float]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def signed_by(config: Config, kind: str, body: bytes, header: str | None) -> InboundSource | None:
    """The configured source of ``kind`` whose secret signed ``body``, if any."""
    sources = [(s, s.secret) for s in config.notifications.inbound if s.kind == kind]
    return matching(sources, body, header)


def acting_as(identity: Identity, config: Config, source: InboundSource) -> Principal:
    """The principal a signed source acts as (its user must exist and be enabled)."""
    try:
        user = identity.user(source.as_)
    except NotFound:
        raise Forbidden(
            f"inbound source {source.name!r} acts as {source.as_!r}, which is not a user: "
            f"create it with `interlock user add {source.as_} --service`"
        ) from None
    if user.disabled:
        raise Forbidden(f"inbound source {source.name!r} acts as {source.as_!r}, who is disabled")
    return identity.principal(user, config.roles, config.teams)


def refuse(
    engine: Engine, *, host: str, endpoint: str, why: str, hint: str | None = None
) -> NoReturn:
    """Answer 401 for a bad or missing signature; audit it once a minute per caller."""
    now = time.monotonic()
    with _lock:
        seen = _last_audit.setdefault(engine, {})
        audit = now - seen.get((host, endpoint, why), -1e9) >= 60
        if audit:
            if len(seen) > 10_000:
                seen.clear()
            seen[(host, endpoint, why)] = now
    if audit:
        at = engine.clock.now()
        engine.db.run(
            lambda tx: tx.audit(
                at=at,
                actor="anonymous",
                action="auth.failed",
                object_type="hook",
                object_id=endpoint,
                reason=why,
                data={"source": f"{host} {endpoint}"},
            )
        )
    else:
        log.warning("signature refused (%s) from %s on %s; already audited", why, host, endpoint)
    raise Unauthenticated(
        f"authentication failed: {why}; "
        + (
            hint
            or "sign the raw body with HMAC-SHA256 using the secret "
            "of a source under notifications.inbound (or send a bearer token)"
        )
    )

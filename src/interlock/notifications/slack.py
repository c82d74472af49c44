"""Slack's interactive requests: the Approve and Reject buttons of a waiting gate.

Slack signs each request with the app's signing secret: ``v0=`` and the hex
HMAC-SHA256 of ``v0:{X-Slack-Request-Timestamp}:{body}``. A request is taken
only if that matches (constant-time), its timestamp is within 5 minutes of
now, and its signature was not seen before (a replay). The Slack user must be
an Interlock user (``notifications.people: {name: {slack: U…}}``); the
decision then goes through the API's approval rules, audited ``via: slack``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from interlock.engine.approvals import give
from interlock.engine.core import Engine
from interlock.engine.identity import principal_of
from interlock.errors import Conflict, InterlockError, InvalidInput, Unauthenticated
from interlock.events.signing import MissingSecret, secret_value
from interlock.spec.notifications import SlackChannel
from interlock.storage.tx import Tx

WINDOW = 300  # seconds: Slack's advice
VERSION = "v0"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` of ``body`` sent at ``timestamp``."""
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret, base, hashlib.sha256).hexdigest()


def verify(
    secrets: list[bytes], timestamp: str | None, body: bytes, given: str | None, now: float
) -> None:
    """Raise :class:`Unauthenticated` unless one secret signed ``body`` within the window."""
    if not timestamp or not given:
        raise Unauthenticated(
            "a Slack request needs X-Slack-Request-Timestamp and X-Slack-Signature"
        )
    try:
        sent = int(timestamp)
    except ValueError:
        raise Unauthenticated("X-Slack-Request-Timestamp is not a Unix time") from None
    if abs(now - sent) > WINDOW:
        raise Unauthenticated("the Slack request is more than 5 minutes old (or from the future)")
    if not any(hmac.compare_digest(signature(s, timestamp, body), given) for s in secrets):
        raise Unauthenticated("the Slack signature does not match (check the signing secret)")


def _secrets(engine: Engine, environ: Mapping[str, str]) -> list[bytes]:
    config = engine.configs.active().config if engine.configs is not None else None
    found = []
    for channel in config.notifications.channels if config is not None else []:
        if isinstance(channel, SlackChannel) and channel.signing_secret:
            try:
                found.append(secret_value(channel.signing_secret, environ))
            except MissingSecret:
                continue
    if not found:
        raise Unauthenticated("no Slack channel with a signing_secret is configured")
    return found


def ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


def handle(
    engine: Engine,
    access: Any,
    headers: Mapping[str, str],
    body: bytes,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Verify a Slack interactive request and act on its button; the reply Slack shows."""
    environ = os.environ if environ is None else environ
    now = engine.clock.now()
    given = headers.get("x-slack-signature")
    verify(
        _secrets(engine, environ),
        headers.get("x-slack-request-timestamp"),
        body,
        given,
        now.timestamp(),
    )
    assert given is not None
    forget = now - timedelta(seconds=2 * WINDOW)
    if not engine.db.run(lambda tx: bool(tx.first_slack_request(given[:80], now, forget))):
        raise Conflict("this Slack request was received already (a replay)")
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        user_id = str(payload["user"]["id"])
        action = payload["actions"][0]
        kind, value = str(action["action_id"]), str(action["value"])
        release, environment, gate = value.split(":", 2)
    except (KeyError, IndexError, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput("not a Slack button action of Interlock", field="payload") from None
    config = engine.configs.active().config
    person = next((n for n, p in config.notifications.people.items() if p.slack == user_id), None)
    if person is None:
        return ephemeral(
            f"Your Slack account ({user_id}) is not linked to an Interlock user, so Interlock "
            "cannot act for you. Ask an administrator to add `slack: "
            f"{user_id}` to your entry under `notifications.people`."
        )
    if kind == "reject":
        return ephemeral(
            "A rejection needs a comment that says why: use the reject link of your e-mail, "
            f"or `interlock release reject {release} --env {environment} --comment …`."
        )
    if kind != "approve":
        return ephemeral("Nothing to do for this button.")

    def work(tx: Tx) -> dict[str, Any]:
        user = tx.get_user(person)
        if user is None or user.disabled:
            raise Unauthenticated(f"{person} is not an active Interlock user")
        who = principal_of(tx, user, config.roles, config.teams)
        return give(
            engine,
            access,
            who,
            release_id=int(release),
            environment=environment,
            gate=gate,
            decision="approve",
            comment=None,
            via="slack",
        )

    try:
        result = engine.db.run(work)
    except (InterlockError, ValueError) as exc:
        detail = exc.detail if isinstance(exc, InterlockError) else str(exc)
        return ephemeral(f"Not recorded: {detail}")
    return ephemeral(
        f"Approved release {result['release']} for {result['environment']} as {person}; "
        f"the gate is now {result['gate_state']}."
    )

"""Webhook delivery: the audit log is the outbox, read from a cursor per webhook.

Every state change commits with its audit event, so the log already holds
every event in order. Each scheduler tick, a webhook with events after its
cursor gets one *delivery round* in a thread of its own: read a batch after
the cursor, POST each event the webhook takes (in order, one per request),
stop at the first failure, and store how far it got. The cursor moves only
past events that were answered 2xx (or that the webhook does not take), so
a crash or a failing receiver never loses an event; what was sent but not
yet recorded is sent again (at least once; the ``X-Interlock-Delivery`` id
is stable, so receivers de-duplicate).

Bounds: the tick itself only reads the cursors and starts threads; a round
lasts about ``ROUND_SECONDS`` plus one request timeout at most; a webhook
has at most one round in flight, and a failing one waits ``backoff``
(doubling up to ``max_backoff``) before its next round, so it never delays
the others. Deliveries write no audit events (that would feed the outbox).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from interlock.domain.durations import doubled
from interlock.domain.masking import mask, variants
from interlock.domain.templating import resolve_env
from interlock.engine.core import Engine
from interlock.errors import Conflict, InvalidInput, NotFound
from interlock.events.cdevents import Context
from interlock.events.outbound import Message, TxFacts, render, ticket_links
from interlock.events.signing import (
    SIGNATURE_HEADER,
    MissingSecret,
    secret_value,
    secret_variable,
    sign,
)
from interlock.spec.model import Tickets
from interlock.spec.notifications import Notifications, Webhook
from interlock.tls import client_tls

if TYPE_CHECKING:
    import httpx

    from interlock.storage.tx import Tx
    from interlock.storage.webhooks import WebhookCursor

log = logging.getLogger(__name__)

ROUND_SECONDS = 10.0


def _batch(
    engine: Engine, hook: Webhook, context: Context, after: int
) -> tuple[list[tuple[int, Message | None]], str | None]:
    """The next events after ``after``, rendered; and an error at one that cannot be."""
    out: list[tuple[int, Message | None]] = []
    with engine.db.read() as tx:
        facts = TxFacts(tx)
        for event in tx.list_audit(after=after, limit=hook.batch):
            try:
                out.append((event.seq, render(event, hook, context, facts)))
            except Exception as exc:  # a mapping bug must stop the stream, not skip an event
                log.exception("webhook %s: cannot render audit event %s", hook.name, event.seq)
                return out, f"event {event.seq} could not be rendered: {exc}"
    return out, None


@dataclass(frozen=True)
class Round:
    """What one delivery round did."""

    delivered: int
    position: int
    error: str | None


def deliver_round(
    engine: Engine,
    hook: Webhook,
    notifications: Notifications,
    *,
    tickets: Tickets | None = None,
    budget: float = ROUND_SECONDS,
    environ: Mapping[str, str] | None = None,
) -> Round:
    """Deliver what ``hook`` has pending, in order, for about ``budget`` seconds at most."""
    import httpx

    environ = os.environ if environ is None else environ
    context = Context(
        notifications.event_source(),
        notifications.public_url,
        ticket_links(tickets) if tickets else None,
    )
    with engine.db.read() as tx:
        cursor = tx.webhook_cursor(hook.name)
    if (
        cursor is not None
        and cursor.next_attempt_at is not None
        and cursor.next_attempt_at > engine.clock.now()
    ):
        # Backing off: the tick that started this round read the cursor before the last
        # round's failure was stored. Nothing is sent and nothing is written.
        return Round(0, cursor.delivered_seq, cursor.last_error)
    if cursor is None:  # a new webhook: it starts where the config that added it was loaded
        cursor = engine.db.run(
            lambda tx: tx.ensure_webhook_cursor(
                hook.name, tx.config_loaded_seq(), engine.clock.now()
            )
        )
    position, delivered, error = cursor.delivered_seq, 0, None
    hidden: list[str] = []
    deadline = time.monotonic() + budget
    try:
        secret = secret_value(hook.secret, environ) if hook.secret else None
        url, hidden = resolve_env(hook.url, environ)
        extra = {}
        for name, value in hook.headers.items():
            extra[name], used = resolve_env(value, environ)
            hidden += used
    except (MissingSecret, KeyError) as exc:
        name = exc.variable if isinstance(exc, MissingSecret) else exc.args[0]
        error = f"the environment variable {name} is not set on the server"
    hide = variants([*hidden, *engine.secrets.values()])
    if error is None:
        with httpx.Client(
            timeout=hook.timeout, follow_redirects=False, verify=client_tls()
        ) as client:
            while error is None and time.monotonic() < deadline:
                batch, error = _batch(engine, hook, context, position)
                for seq, message in batch:
                    if message is not None:
                        if time.monotonic() >= deadline:
                            break
                        error = _post(client, url, message, secret, extra, hide)
                        if error is not None:
                            break
                        delivered += 1
                    position = seq
                else:
                    if len(batch) < hook.batch:
                        break
                    continue
                break
    if error:
        error = mask(error, hide)
    _record(engine, hook, cursor, position, delivered, error)
    return Round(delivered, position, error)


def _post(
    client: httpx.Client,
    url: str,
    message: Message,
    secret: bytes | None,
    extra: dict[str, str],
    hide: frozenset[str] = frozenset(),
) -> str | None:
    """POST one event; ``None`` on a 2xx answer, else what went wrong (``hide`` masked
    in the answer before it is cut short: a cut through a secret shows its beginning)."""
    import httpx

    headers = {**extra, **message.headers}
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, message.body)
    try:
        response = client.post(url, content=message.body, headers=headers)
    except httpx.HTTPError as exc:
        return f"event {message.seq}: {type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return None
    # A NUL shown as U+FFFD: PostgreSQL stores none, and the failure must be recorded.
    text = " ".join(mask(response.text, hide).replace("\x00", "\ufffd").split())[:200]
    return f"event {message.seq}: HTTP {response.status_code}" + (f": {text}" if text else "")


def _record(
    engine: Engine,
    hook: Webhook,
    cursor: WebhookCursor,
    position: int,
    delivered: int,
    error: str | None,
) -> None:
    if error is None and position == cursor.delivered_seq and not cursor.failures:
        return  # nothing changed: no write
    now = engine.clock.now()
    if error is None:
        failures, next_attempt = 0, None
    else:
        failures = 1 if position > cursor.delivered_seq else cursor.failures + 1
        delay = doubled(hook.backoff, failures - 1, most=hook.max_backoff)
        next_attempt = now + timedelta(seconds=delay)
        log.warning("webhook %s: %s (next try in %.1fs)", hook.name, error, delay)

    def work(tx: Tx) -> None:
        tx.record_webhook_round(
            hook.name,
            delivered_seq=position,
            at=now,
            succeeded=delivered > 0,
            error=error,
            failures=failures,
            next_attempt_at=next_attempt,
        )

    engine.db.run(work)


class Dispatcher:
    """Starts delivery rounds for one engine; at most one in flight per webhook."""

    def __init__(self) -> None:
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def drain(self, timeout: float) -> bool:
        """Wait for the rounds in flight to end; whether they all did within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def tick(self, engine: Engine) -> list[threading.Thread]:
        """Start a round for every webhook with pending events that is not backing off."""
        active = engine.configs.loaded()
        if active is None:
            return []
        notifications: Notifications = active.config.notifications
        if not notifications.webhooks:
            return []
        now = engine.clock.now()
        with engine.db.read() as tx:
            cursors = tx.webhook_cursors()
            head = tx.audit_head()
        started = []
        for hook in notifications.webhooks:
            cursor = cursors.get(hook.name)
            if cursor is not None and (
                cursor.delivered_seq >= (head.seq if head else 0)
                or (cursor.next_attempt_at is not None and cursor.next_attempt_at > now)
            ):
                continue
            with self._lock:
                if hook.name in self._busy:
                    continue
                self._busy.add(hook.name)
            thread = threading.Thread(
                target=self._round,
                args=(engine, hook, notifications, active.config.tickets),
                name=f"webhook-{hook.name}",
                daemon=True,
            )
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
            started.append(thread)
        return started

    def _round(
        self, engine: Engine, hook: Webhook, notifications: Notifications, tickets: Tickets
    ) -> None:
        try:
            deliver_round(engine, hook, notifications, tickets=tickets)
        except Exception:  # a round must never take its thread (or the scheduler) down
            log.exception("webhook %s: delivery round failed", hook.name)
        finally:
            with self._lock:
                self._busy.discard(hook.name)


_dispatchers: weakref.WeakKeyDictionary[Engine, Dispatcher] = weakref.WeakKeyDictionary()
_dispatchers_lock = threading.Lock()


def deliver_webhooks(engine: Engine) -> None:
    """The scheduler task: start the delivery rounds that are due (returns at once)."""
    with _dispatchers_lock:
        dispatcher = _dispatchers.get(engine)
        if dispatcher is None:
            dispatcher = _dispatchers[engine] = Dispatcher()
    dispatcher.tick(engine)


def drain(engine: Engine, timeout: float = ROUND_SECONDS + 60) -> bool:
    """Wait for ``engine``'s delivery rounds in flight to end (a clean shutdown, tests)."""
    with _dispatchers_lock:
        dispatcher = _dispatchers.get(engine)
    return dispatcher.drain(timeout) if dispatcher is not None else True


def webhook_status(engine: Engine, notifications: Notifications) -> list[dict[str, Any]]:
    """Each configured webhook with its cursor, backlog, last success and last error."""
    with engine.db.read() as tx:
        cursors = tx.webhook_cursors()
        head = tx.audit_head()
    head_seq = head.seq if head else 0
    out = []
    for hook in notifications.webhooks:
        cursor = cursors.get(hook.name)
        variable = secret_variable(hook.secret) if hook.secret else None
        out.append(
            {
                "name": hook.name,
                "url": hook.url,
                "format": hook.format,
                "events": list(hook.events),
                "signed": hook.secret is not None,
                "secret_set": bool(os.environ.get(variable)) if variable else None,
                "cursor": cursor.delivered_seq if cursor else None,
                "head": head_seq,
                "pending": max(0, head_seq - cursor.delivered_seq) if cursor else None,
                "last_success_at": cursor.last_success_at if cursor else None,
                "last_error": cursor.last_error if cursor else None,
                "last_error_at": cursor.last_error_at if cursor else None,
                "failures": cursor.failures if cursor else 0,
                "next_attempt_at": cursor.next_attempt_at if cursor else None,
            }
        )
    return out


def _configured(notifications: Notifications, name: str) -> Webhook:
    for hook in notifications.webhooks:
        if hook.name == name:
            return hook
    known = ", ".join(h.name for h in notifications.webhooks) or "none"
    raise NotFound(f"no webhook named {name!r} in the active config (configured: {known})")


def _status_of(engine: Engine, notifications: Notifications, name: str) -> dict[str, Any]:
    return next(s for s in webhook_status(engine, notifications) if s["name"] == name)


def skip_events(
    engine: Engine,
    notifications: Notifications,
    *,
    name: str,
    through: int,
    actor: str,
    reason: str,
) -> dict[str, Any]:
    """Move ``name``'s cursor past the events up to ``through``: they are never sent.

    The way out of a receiver that refuses one event for good (order keeps every
    later event waiting behind it). Audited as ``webhook.skipped`` with the
    cursor before and after, the reason and the last error, in the transaction
    that moves the cursor. Failures and backoff are cleared: delivery resumes at
    the next scheduler tick.
    """
    _configured(notifications, name)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("say why these events are skipped", field="reason")
    now = engine.clock.now()

    def work(tx: Tx) -> None:
        cursor = tx.webhook_cursor(name)
        if cursor is None:
            raise Conflict(f"webhook {name} has not started delivering yet: nothing to skip")
        head = tx.audit_head()
        newest = head.seq if head else 0
        if through > newest:
            raise InvalidInput(
                f"there is no audit event {through} yet: the newest is {newest}", field="through"
            )
        if through <= cursor.delivered_seq:
            raise Conflict(
                f"webhook {name} has already dealt with every event up to "
                f"{cursor.delivered_seq}: skip through a later one"
            )
        if not tx.skip_webhook_events(name, expected=cursor.delivered_seq, through=through, at=now):
            raise Conflict(f"webhook {name} delivered more meanwhile: look again and retry")
        tx.audit(
            at=now,
            actor=actor,
            action="webhook.skipped",
            object_type="webhook",
            object_id=name,
            before={"cursor": cursor.delivered_seq},
            after={"cursor": through},
            reason=reason,
            data={"events": through - cursor.delivered_seq, "last_error": cursor.last_error},
        )

    engine.db.run(work)
    log.warning("webhook %s: %s skipped the events up to %s", name, actor, through)
    return _status_of(engine, notifications, name)


def retry_now(
    engine: Engine, notifications: Notifications, *, name: str, actor: str
) -> dict[str, Any]:
    """Forget ``name``'s backoff (the receiver is fixed): the next tick delivers. Audited."""
    _configured(notifications, name)
    now = engine.clock.now()

    def work(tx: Tx) -> None:
        cursor = tx.webhook_cursor(name)
        if cursor is None:
            raise Conflict(f"webhook {name} has not started delivering yet: nothing to retry")
        tx.retry_webhook_now(name, now)
        tx.audit(
            at=now,
            actor=actor,
            action="webhook.retried",
            object_type="webhook",
            object_id=name,
            before={
                "next_attempt_at": (
                    cursor.next_attempt_at.isoformat() if cursor.next_attempt_at else None
                ),
                "failures": cursor.failures,
            },
        )

    engine.db.run(work)
    return _status_of(engine, notifications, name)

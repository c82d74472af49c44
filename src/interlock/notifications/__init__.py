"""Messages to people: Slack, Microsoft Teams, e-mail and signed webhooks (docs/notifications.md).

What happens is recorded as audit events; :func:`install` hooks the outbox into
every write transaction of an engine's database, so a message exists exactly
when its event committed (:mod:`.outbox`). :class:`.delivery.Notifier` sends
what the outbox holds, in order per channel, at least once, with backoff, in
threads of its own (a channel that is down never slows a release), and fires
the reminder and escalation timers of waiting gates (:mod:`.timers`).
Approvers act from a signed single-use link (:mod:`.links`) or a Slack button
(:mod:`.slack`), both through the API's own approval rules.
"""

from __future__ import annotations

from interlock.engine.core import Engine
from interlock.notifications.outbox import OutboxWriter


def install(engine: Engine) -> None:
    """Write the outbox in every transaction of ``engine``'s database (once per database)."""
    if not any(isinstance(h, OutboxWriter) for h in engine.db.audit_hooks):
        engine.db.audit_hooks.append(OutboxWriter(engine))

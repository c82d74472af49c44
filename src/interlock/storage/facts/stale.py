"""What a transaction changed that the delivery facts derive from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class StaleFacts:
    """What a transaction changed that the delivery facts derive from.

    The facts are brought up to date once, just before the transaction
    commits (:meth:`~interlock.storage.facts.delivery.DeliveryQueries.project_delivery_facts`):
    in the same transaction, from its final state, and with the facts lock
    held only for the last moments of the transaction.
    """

    finished: set[int] = field(default_factory=set)  # deployments that ended
    started: set[int] = field(default_factory=set)  # deployments that began (slips)
    gates: set[int] = field(default_factory=set)  # deployments with an approval decided
    incidents: list[tuple[str | None, str, datetime, int | None]] = field(default_factory=list)
    behind: float | None = None  # the earliest incident time set (opened or resolved at)

    def set_at(self, at: datetime) -> None:
        """An incident's opening or resolution is dated ``at`` (it may be in the past)."""
        seconds = at.timestamp()
        self.behind = seconds if self.behind is None else min(self.behind, seconds)

    def __bool__(self) -> bool:
        return (
            bool(self.finished or self.started or self.gates or self.incidents)
            or self.behind is not None
        )

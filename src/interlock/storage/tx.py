"""One transaction: the only way the engine reads and writes.

:class:`Tx` gathers the queries of every concept (one module each) behind a
single object, so the engine never sees SQL and the backends differ only
inside this package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from interlock.storage.approvals import ApprovalQueries
from interlock.storage.artifacts import ArtifactQueries
from interlock.storage.audit import AuditQueries
from interlock.storage.base import Prepared
from interlock.storage.configs import ConfigChangeQueries, ConfigQueries
from interlock.storage.deployments import DeploymentQueries
from interlock.storage.facts.delivery import DeliveryQueries
from interlock.storage.facts.stale import StaleFacts
from interlock.storage.handle import NOTIFY_CHANNEL, DatabaseHandle
from interlock.storage.identity import IdentityQueries
from interlock.storage.incidents import IncidentQueries
from interlock.storage.inventory import InventoryQueries
from interlock.storage.metrics import MetricQueries
from interlock.storage.nodes import NodeQueries
from interlock.storage.notifications import NotificationQueries
from interlock.storage.releases import ReleaseQueries
from interlock.storage.web_sessions import WebSessionQueries
from interlock.storage.webhooks import WebhookQueries

_NOTIFY = Prepared(text("SELECT pg_notify(:c, :p)"))


class Tx(
    ConfigQueries,
    ConfigChangeQueries,
    ReleaseQueries,
    DeploymentQueries,
    NodeQueries,
    InventoryQueries,
    IdentityQueries,
    ApprovalQueries,
    ArtifactQueries,
    IncidentQueries,
    AuditQueries,
    MetricQueries,
    WebhookQueries,
    DeliveryQueries,
    WebSessionQueries,
    NotificationQueries,
):
    """One transaction, opened by :meth:`Database.transaction` or :meth:`Database.read`."""

    def __init__(self, conn: Connection, db: DatabaseHandle, read_only: bool = False) -> None:
        self.conn = conn
        self.db = db
        self.dialect = db.dialect
        self.read_only = read_only
        self.channels: set[str] = set()
        self._pending_audit = []
        self._touched: set[int] = set()
        self.changed_releases: frozenset[int] = frozenset()  # set as it commits
        self.readied: set[int] = set()
        self.lease_ahead = None  # see NodeQueries.satisfy
        self.leased_ahead = None
        # Called with True once the transaction committed, False once it rolled back.
        self.ended: list[Callable[[bool], None]] = []
        # What this transaction already read and will read the same (the active config).
        self.memo: dict[str, Any] = {}
        self.stale = StaleFacts()
        self._later = []  # writes sent with the next statements that go out together

    def notify(self, channel: str = "work") -> None:
        """Wake workers (in this process and, on PostgreSQL, everywhere) after commit."""
        self.channels.add(channel)

    def made_ready(self, node_ids: Iterable[int]) -> None:
        """These nodes became ready to run now: wake the workers at commit, unless
        this very transaction claims them (see :meth:`claim_node`).

        A worker records a step's success and claims its next one in one
        transaction; when that success readied just the node it claims, the
        other workers have nothing new to find, and waking them would cost each
        an empty claim transaction per step.
        """
        self.readied.update(node_ids)

    def before_commit(self) -> None:
        """What runs in the transaction just before it commits, in this order.

        The releases' revisions first, then the audit hooks (the outbox: it
        reads the active config and writes its messages), then the delivery
        fact projections (they lock the facts until commit, so they come after
        the releases' rows and the hooks: a deployment ending elsewhere never
        waits on the outbox's reads and work for that commit), then the
        wake-ups of PostgreSQL (delivered at commit), and
        last the audit chain: its head's row lock, which every writer takes,
        is held only for the head's update, the events' insert and the commit.
        On PostgreSQL the writes held till now (:meth:`send_later`: the claims'
        attempts, the releases' revisions, a gate's facts, the wake-ups) go out
        in that order, with the audit chain (or the facts' lock, when what
        follows it reads), and the COMMIT with them, in the chain statement's
        round trip: with audit events, the transaction is committed once this
        returns (``Database.transaction``'s commit then has nothing left to do).
        """
        if self.readied:
            for ready_hook in self.db.ready_hooks:  # idle workers claim them here, in this commit
                ready_hook(self)
        if self.readied:
            self.channels.add("work")
        if self._touched:
            self.flush_touched(datetime.now(UTC))
        if self._pending_audit:  # before the facts: their locks never wait on a hook's work
            for hook in self.db.audit_hooks:
                hook(self, list(self._pending_audit))
        self.project_delivery_facts()
        if self.channels and self.dialect == "postgresql":  # sent at commit, whatever the order
            for channel in sorted(self.channels):
                self.send_later(_NOTIFY, {"c": NOTIFY_CHANNEL, "p": channel})
        self.flush_audit(commit=True)
        if self._later:
            self.send_now()

"""The active config: loaded from a file, versioned in the database, shared by every server.

The database holds every config that was ever loaded, numbered, with its
hash; the newest one is active for every API server on that database. A file
that does not validate, or whose ``roles: admin:`` would leave nobody who can
sign in as an administrator, is refused and audited, and the active one stays.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from interlock.domain.records import ConfigChange, ConfigVersion
from interlock.engine.admins import ADMIN, keep_an_admin_in_config
from interlock.engine.clock import Clock
from interlock.engine.config_review import (
    Approvers,
    ReloadOutcome,
    approvers_of,
    decide_change,
    diff_data,
    request_change,
)
from interlock.engine.environ import KnownSecrets
from interlock.errors import (
    ConfigError,
    Conflict,
    InterlockError,
    InvalidInput,
    NotFound,
)
from interlock.spec.diff import Change, diff_configs, needs_review
from interlock.spec.loader import LoadedConfig, load_config, parse_config
from interlock.spec.model import Config
from interlock.storage.db import Database
from interlock.storage.tx import Tx

log = logging.getLogger(__name__)
_ACTIVE = "active_config"  # the key of the active config in a transaction's memo


@dataclass(frozen=True)
class ActiveConfig:
    version: int
    hash: str
    config: Config
    base_dir: Path
    path: str


class Configs:
    """The configs stored in a database, parsed once per version (each engine owns one)."""

    def __init__(self, db: Database, clock: Clock, secrets: KnownSecrets) -> None:
        self.db = db
        self.clock = clock
        self.secrets = secrets  # a parsed config's secrets are masked from then on
        self._lock = threading.Lock()
        self._parsed: dict[int, ActiveConfig] = {}

    def load_file(self, path: str | Path, *, actor: str) -> tuple[ConfigVersion, bool]:
        """Validate ``path`` and make it the active config; return it and whether it is new.

        A change the active config asks approval for (``config_changes``) is stored as a
        pending change instead, and the active config stays (returned, not new)."""
        outcome = self.reload(path, actor=actor, reason=f"the file changed ({actor})")
        if outcome.pending is not None:
            log.warning(
                "config change %d waits for approval (config_changes); version %d stays "
                "active: `interlock config approve %d`",
                outcome.pending.id,
                outcome.stored.version,
                outcome.pending.id,
            )
        return outcome.stored, outcome.changed

    def diff_file(self, path: str | Path) -> tuple[LoadedConfig, list[Change], list[Change]]:
        """What loading ``path`` would change, and which of those changes need approval."""
        loaded = load_config(path)
        try:
            active = self.active()
        except NotFound:
            return loaded, [], []
        changes = diff_configs(active.config, loaded.config)
        return loaded, changes, needs_review(active.config, changes)

    def reload(self, path: str | Path, *, actor: str, reason: str = "") -> ReloadOutcome:
        """Load ``path``: apply it, or store it as a pending change when it needs approval.

        Each applied reload records its diff, who and why in the audit."""
        now = self.clock.now()
        try:
            loaded, changes, reviewed = self.diff_file(path)
        except ConfigError as exc:
            self._rejected(path, exc, actor, now, {"errors": exc.errors})
            raise
        if reviewed:
            return self._request(loaded, changes, reviewed, actor, reason, now)

        def store(tx: Tx) -> tuple[ConfigVersion, bool]:
            tx.lock_configs()
            latest = tx.latest_config()
            if latest is not None and latest.hash == loaded.hash:
                return latest, False
            version = self._store(
                tx,
                latest,
                loaded.hash,
                str(loaded.path),
                loaded.text,
                loaded.config,
                actor=actor,
                reason=reason,
                changes=changes,
                now=now,
            )
            return tx.require_config(version), True

        try:
            stored, changed = self.db.run(store)
        except Conflict as exc:
            self._rejected(path, exc, actor, now, {})
            raise
        self._activate(stored, loaded.config, loaded.base_dir)
        return ReloadOutcome(stored, changed, changes if changed else [], None)

    def _store(
        self,
        tx: Tx,
        latest: ConfigVersion | None,
        hash: str,
        path: str,
        text: str,
        config: Config,
        *,
        actor: str,
        reason: str,
        changes: list[Change],
        now: datetime,
        data: dict[str, Any] | None = None,
    ) -> int:
        """Store a new version and its audit event (the diff, who, why) in ``tx``."""
        if latest is not None:
            keep_an_admin_in_config(
                tx,
                self.active().config.roles.get(ADMIN, []),
                config.roles.get(ADMIN, []),
                now,
                version=latest.version,
            )
        version = int(tx.add_config(hash=hash, path=path, text=text, at=now, by=actor))
        tx.audit(
            at=now,
            actor=actor,
            action="config.loaded",
            object_type="config",
            object_id=str(version),
            reason=reason or None,
            before={"version": latest.version, "hash": latest.hash} if latest else None,
            after={"version": version, "hash": hash},
            data={"path": path, **diff_data(changes), **(data or {})},
        )
        return version

    def _activate(self, stored: ConfigVersion, config: Config, base_dir: Path) -> None:
        self.secrets.learn_config(config, os.environ)
        self._keep(ActiveConfig(stored.version, stored.hash, config, base_dir, stored.path))

    def _keep(self, parsed: ActiveConfig) -> None:
        """Keep ``parsed`` and only the newest version: an older one is never asked for
        again (each reload's config was kept for good: 20 MB with 10,000 services)."""
        with self._lock:
            self._parsed[parsed.version] = parsed
            newest = max(self._parsed)
            for version in [v for v in self._parsed if v != newest]:
                del self._parsed[version]

    def _request(
        self,
        loaded: LoadedConfig,
        changes: list[Change],
        reviewed: list[Change],
        actor: str,
        reason: str,
        now: datetime,
    ) -> ReloadOutcome:
        """Store a change that needs approval; older pending changes are superseded."""
        if not reason.strip():
            raise InvalidInput(
                "this change needs approval (config_changes in the active config): say why "
                "with --reason",
                field="reason",
            )
        active = self.active()

        def request(tx: Tx) -> tuple[ConfigVersion, ConfigChange]:
            return request_change(
                tx,
                base_version=active.version,
                loaded=loaded,
                changes=changes,
                reviewed=reviewed,
                actor=actor,
                reason=reason,
                now=now,
            )

        latest, pending = self.db.run(request)
        return ReloadOutcome(latest, False, changes, pending)

    def changes(self, limit: int = 50) -> list[ConfigChange]:
        """The latest config changes that needed approval, newest first."""
        with self.db.read() as tx:
            found: list[ConfigChange] = tx.list_config_changes(limit)
        return found

    def change(self, change_id: int) -> ConfigChange:
        """One config change; :class:`NotFound` if there is none."""
        with self.db.read() as tx:
            found: ConfigChange = tx.require_config_change(change_id)
        return found

    def approvers(self) -> Approvers | None:
        """Who approves reviewed config changes, by the active config."""
        return approvers_of(self.active().config)

    def decide(
        self, change_id: int, *, actor: str, approve: bool, comment: str = ""
    ) -> ConfigChange:
        """Approve (or reject) a pending change; once enough people other than the one who
        asked approved it, it becomes the active config. The active config's rules say who
        may approve."""
        now = self.clock.now()
        active = self.active()

        def store(tx: Tx, latest: ConfigVersion, change: ConfigChange, config: Config) -> int:
            return self._store(
                tx,
                latest,
                change.hash,
                change.path,
                change.text,
                config,
                actor=change.requested_by,
                reason=change.reason,
                changes=[],
                now=now,
                data={
                    "diff": change.diff,
                    "change": change.id,
                    "approved_by": [a["by"] for a in change.approvals],
                },
            )

        def decide(tx: Tx) -> tuple[ConfigChange, tuple[ConfigVersion, Config] | None]:
            return decide_change(
                tx,
                change_id=change_id,
                active=active.config,
                actor=actor,
                approve=approve,
                comment=comment,
                now=now,
                store=store,
            )

        change, applied = self.db.run(decide)
        if applied is not None:
            stored, config = applied
            self._activate(stored, config, Path(stored.path).parent)
        return change

    def _rejected(
        self,
        path: str | Path,
        error: InterlockError,
        actor: str,
        now: datetime,
        data: Mapping[str, object],
    ) -> None:
        """Audit a config that was refused (the active one stays)."""

        def refuse(tx: Tx) -> None:
            tx.audit(
                at=now,
                actor=actor,
                action="config.rejected",
                object_type="config",
                object_id=str(path),
                reason=error.detail.splitlines()[0],
                data=data,
            )

        self.db.run(refuse)

    def active(self) -> ActiveConfig:
        """The newest stored config, parsed (cached per version); NotFound when there is none."""
        found = self.loaded()
        if found is None:
            raise NotFound("no configuration has been loaded; start the server with --config")
        return found

    def admins(self) -> set[str]:
        """The members of role ``admin`` named by the active config."""
        active = self.loaded()
        return set(active.config.roles.get(ADMIN, [])) if active is not None else set()

    def loaded(self) -> ActiveConfig | None:
        """The newest stored config, parsed (cached per version); None when none was loaded."""
        with self.db.read() as tx:  # the enclosing transaction's, if there is one
            found = tx.memo.get(_ACTIVE)
            if found is not None:
                return found  # type: ignore[no-any-return]
            version = tx.latest_config_version()
            if version is None:
                return None
            with self._lock:
                found = self._parsed.get(version)
            if found is None:
                found = self._parse(tx.require_config(version))
            tx.memo[_ACTIVE] = found  # read once per transaction (8 times per approval before)
            return found

    def _parse(self, latest: ConfigVersion) -> ActiveConfig:
        config = parse_config(latest.text, Path(latest.path))
        self.secrets.learn_config(config, os.environ)
        found = ActiveConfig(
            latest.version, latest.hash, config, Path(latest.path).parent, latest.path
        )
        self._keep(found)
        return found

    def known(self, environment: str) -> None:
        """Raise :class:`NotFound` unless the active config has ``environment``."""
        names = [e.name for e in self.active().config.environments]
        if environment not in names:
            raise NotFound(f"no environment named {environment!r} (known: {', '.join(names)})")

"""The active config: loaded from a file, versioned in the database, shared by every server.

The database holds every config that was ever loaded, numbered, with its
hash; the newest one is active for every API server on that database. A file
that does not validate, or whose ``roles: admin:`` would leave nobody who can
sign in as an administrator, is refused and audited, and the active one stays.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from interlock.domain.records import ConfigVersion
from interlock.engine.admins import ADMIN, keep_an_admin_in_config
from interlock.engine.clock import Clock
from interlock.engine.environ import KnownSecrets
from interlock.errors import ConfigError, Conflict, InterlockError, NotFound
from interlock.spec.loader import load_config, parse_config
from interlock.spec.model import Config
from interlock.storage.db import Database
from interlock.storage.tx import Tx


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
        """Validate ``path`` and make it the active config; return it and whether it is new."""
        now = self.clock.now()
        try:
            loaded = load_config(path)
        except ConfigError as exc:
            self._rejected(path, exc, actor, now, {"errors": exc.errors})
            raise

        def store(tx: Tx) -> tuple[ConfigVersion, bool]:
            tx.lock_configs()
            latest = tx.latest_config()
            if latest is not None and latest.hash == loaded.hash:
                return latest, False
            if latest is not None:
                keep_an_admin_in_config(
                    tx,
                    self.active().config.roles.get(ADMIN, []),
                    loaded.config.roles.get(ADMIN, []),
                    now,
                    version=latest.version,
                )
            version = tx.add_config(
                hash=loaded.hash, path=str(loaded.path), text=loaded.text, at=now, by=actor
            )
            tx.audit(
                at=now,
                actor=actor,
                action="config.loaded",
                object_type="config",
                object_id=str(version),
                before={"version": latest.version, "hash": latest.hash} if latest else None,
                after={"version": version, "hash": loaded.hash},
                data={"path": str(loaded.path)},
            )
            return tx.require_config(version), True

        try:
            stored, changed = self.db.run(store)
        except Conflict as exc:
            self._rejected(path, exc, actor, now, {})
            raise
        self.secrets.learn_config(loaded.config, os.environ)
        with self._lock:
            self._parsed[stored.version] = ActiveConfig(
                stored.version, stored.hash, loaded.config, loaded.base_dir, stored.path
            )
        return stored, changed

    def _rejected(
        self, path: str | Path, error: InterlockError, actor: str, now: datetime, data: Any
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

    def loaded(self) -> ActiveConfig | None:
        """The newest stored config, parsed (cached per version); None when none was loaded."""
        with self.db.read() as tx:
            latest = tx.latest_config()
        if latest is None:
            return None
        with self._lock:
            found = self._parsed.get(latest.version)
        if found is not None:
            return found
        config, _ = parse_config(latest.text, Path(latest.path))
        self.secrets.learn_config(config, os.environ)
        found = ActiveConfig(
            latest.version, latest.hash, config, Path(latest.path).parent, latest.path
        )
        with self._lock:
            self._parsed[latest.version] = found
        return found

    def known(self, environment: str) -> None:
        """Raise :class:`NotFound` unless the active config has ``environment``."""
        names = [e.name for e in self.active().config.environments]
        if environment not in names:
            raise NotFound(f"no environment named {environment!r} (known: {', '.join(names)})")

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
from interlock.engine.core import Engine
from interlock.errors import ConfigError, Conflict, InterlockError, NotFound
from interlock.spec.loader import load_config, parse_config
from interlock.spec.model import Config


@dataclass(frozen=True)
class ActiveConfig:
    version: int
    hash: str
    config: Config
    base_dir: Path
    path: str


class Configs:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._parsed: dict[int, ActiveConfig] = {}
        engine.configs = self  # workers find memberships and owners here

    def load_file(self, path: str | Path, *, actor: str) -> tuple[ConfigVersion, bool]:
        """Validate ``path`` and make it the active config; return it and whether it is new."""
        now = self.engine.clock.now()
        try:
            loaded = load_config(path)
        except ConfigError as exc:
            self._rejected(path, exc, actor, now, {"errors": exc.errors})
            raise

        def store(tx):  # type: ignore[no-untyped-def]
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
            return tx.get_config(version), True

        try:
            stored, changed = self.engine.db.run(store)
        except Conflict as exc:
            self._rejected(path, exc, actor, now, {})
            raise
        self.engine.secrets.learn_config(loaded.config, os.environ)
        with self._lock:
            self._parsed[stored.version] = ActiveConfig(
                stored.version, stored.hash, loaded.config, loaded.base_dir, stored.path
            )
        return stored, changed

    def _rejected(
        self, path: str | Path, error: InterlockError, actor: str, now: datetime, data: Any
    ) -> None:
        """Audit a config that was refused (the active one stays)."""

        def refuse(tx: Any) -> None:
            tx.audit(
                at=now,
                actor=actor,
                action="config.rejected",
                object_type="config",
                object_id=str(path),
                reason=error.detail.splitlines()[0],
                data=data,
            )

        self.engine.db.run(refuse)

    def active(self) -> ActiveConfig:
        """The newest stored config, parsed (cached per version)."""
        with self.engine.db.read() as tx:
            latest = tx.latest_config()
        if latest is None:
            raise NotFound("no configuration has been loaded; start the server with --config")
        with self._lock:
            found = self._parsed.get(latest.version)
        if found is not None:
            return found
        config, _ = parse_config(latest.text, Path(latest.path))
        self.engine.secrets.learn_config(config, os.environ)
        found = ActiveConfig(
            latest.version, latest.hash, config, Path(latest.path).parent, latest.path
        )
        with self._lock:
            self._parsed[latest.version] = found
        return found


def known(engine: Engine, environment: str) -> None:
    """Raise :class:`NotFound` unless the active config has ``environment``."""
    names = [e.name for e in engine.configs.active().config.environments]
    if environment not in names:
        raise NotFound(f"no environment named {environment!r} (known: {', '.join(names)})")

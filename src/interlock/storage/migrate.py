"""Schema migrations: check, create and upgrade (Alembic, one history for both backends)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from interlock.errors import SchemaOutOfDate
from interlock.storage.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(db: Database):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


# `revision = "0018"` / `down_revision = "0017"` as the migration template writes them.
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def _head_from_sources() -> str | None:
    """The head read from the migration files' text, or None when unsure.

    Every ``interlock server`` start asks for the head; Alembic would import
    itself and execute every migration module for it (~0.1 CPU-s).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = {m[1]: m[2] for m in _REVISION_LINE.finditer(path.read_text())}
        if not found:
            continue  # __init__.py
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
            parents.update(down)
        elif down is not None:
            return None
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def head_revision() -> str:
    """The newest migration this version of Interlock ships."""
    head = _head_from_sources()
    if head is not None:
        return head
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return head


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; return (before, after)."""
    from alembic import command

    before = db.schema_revision()
    cfg = _alembic_config(db)
    lock = db._write_lock  # one writer on SQLite, as everywhere else
    if lock is not None:
        lock.acquire()
    try:
        with db.engine.begin() as conn:
            if db.dialect == "postgresql":
                # Two servers starting at once must not both create the schema.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727001)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        if lock is not None:
            lock.release()
    after = db.schema_revision()
    assert after is not None
    return before, after


def ensure_schema(db: Database, *, create_if_empty: bool = True) -> str:
    """Make sure the schema is current before serving.

    An empty database is initialised (the zero set-up pilot); a database on
    an older revision is refused with the command to run, because upgrading
    a shared production database is a decision, not a side effect.
    """
    current = db.schema_revision()
    head = head_revision()
    if current == head:
        return head
    if current is None and create_if_empty:
        upgrade(db)
        return head
    where = db.url if db.dialect == "sqlite" else "the database"
    if current is None:
        raise SchemaOutOfDate(f"{where} has no Interlock schema; run `interlock db upgrade` first")
    raise SchemaOutOfDate(
        f"the schema of {where} is at revision {current} but this Interlock needs {head}; "
        "run `interlock db upgrade` (with the same --database-url) and start again"
    )

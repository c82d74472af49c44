"""Schema migrations: check, create and upgrade (Alembic, one history for both backends)."""

from __future__ import annotations

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


def head_revision() -> str:
    """The newest migration this version of Interlock ships."""
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

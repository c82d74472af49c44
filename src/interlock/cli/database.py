"""``interlock db``: bring the schema up to date, or say where it is."""

from __future__ import annotations

import click

from interlock.cli.output import FORMAT_OPTION, emit_json
from interlock.cli.settings import DATABASE_OPTION, default_database_url, home


def _db(url: str | None):  # type: ignore[no-untyped-def]
    from interlock.storage.db import Database

    if url is None:
        home().mkdir(mode=0o700, parents=True, exist_ok=True)
    return Database(url or default_database_url())


@click.group()
def db() -> None:
    """Database schema: upgrade it, or show its revision."""


@db.command("upgrade")
@DATABASE_OPTION
def upgrade(database_url: str | None) -> None:
    """Apply every pending migration (safe to run again)."""
    from interlock.storage.db import redact_url
    from interlock.storage.migrate import upgrade as run_upgrade

    database = _db(database_url)
    before, after = run_upgrade(database)
    where = redact_url(database.url)
    if before == after:
        click.echo(f"{where} is up to date (revision {after})")
    else:
        click.echo(f"{where} upgraded from {before or 'empty'} to {after}")


@db.command("current")
@DATABASE_OPTION
@FORMAT_OPTION
def current(database_url: str | None, fmt: str) -> None:
    """The schema revision of the database and the one this Interlock needs."""
    from interlock.storage.migrate import head_revision

    database = _db(database_url)
    found, head = database.schema_revision(), head_revision()
    if fmt == "json":
        emit_json({"current": found, "head": head, "up_to_date": found == head})
        return
    click.echo(
        f"current: {found or 'no schema'}; needed: {head}"
        + ("" if found == head else " (run `interlock db upgrade`)")
    )


@db.command("rebuild-metrics")
@DATABASE_OPTION
def rebuild_metrics(database_url: str | None) -> None:
    """Derive the delivery facts the metrics read again, from the records.

    Interlock keeps them in step by itself; run this after writing records
    straight into the tables (an import, a repair by hand). It is one
    transaction: a few minutes per million deployments, during which an
    SQLite database takes no other writes, and a PostgreSQL one finishes no
    deployment (they wait for the rebuild; their steps go on).
    """
    from interlock.storage.db import redact_url

    database = _db(database_url)
    if database.schema_revision() is None:
        raise click.UsageError("the database has no schema yet: run `interlock db upgrade`")
    with database.transaction() as tx:
        counts = tx.rebuild_delivery()
    click.echo(
        f"{redact_url(database.url)}: "
        + ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in counts.items())
    )

"""Fresh PostgreSQL test databases, cleaned and handed out again instead of created and dropped.

A ``CREATE DATABASE … TEMPLATE`` cost the server 70-150 ms of CPU and the test 0.3-0.4 s
of wall, and the ``DROP DATABASE`` after it 50 ms of CPU plus a checkpoint (1-2 s of
disk flushing that slowed every other test's commits). Each test process now keeps its
databases: when a test ends, a thread of the process

1. ends the sessions still on the database (as ``DROP … WITH (FORCE)`` would) and
   renames it, so a client left over from that test finds no database, as after a drop;
2. checks that the schema is the template's, column for column, constraint for
   constraint, and that nothing analyzed or vacuumed it (:data:`FINGERPRINT`);
3. deletes every row (foreign keys and triggers off for that transaction), puts back
   the rows the migrations wrote, and sets every sequence back where the template has it.

A database that fails a check, that the test wrote many rows to, or whose cleaning
fails is dropped, and the next test gets a new clone: every test still starts on a
database equal to a clone of the migrated template. Test databases are created with
``synchronous_commit = off`` (no WAL flush wait at each commit): the server still
runs as in production; the tests kill application processes, never PostgreSQL.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from typing import Any

# Rows deleted from one database, over all the tests that used it, before it is dropped
# rather than cleaned again: autovacuum may be off, and dead rows would pile up.
DELETED_ROWS_LIMIT = 20_000

# What a test could change besides rows: relations, columns and their defaults,
# constraints, indexes, triggers, functions, schemas, types, sequences' parameters,
# the database's settings, and the planner's statistics (reltuples, relpages).
FINGERPRINT = """
SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
  SELECT 'rel ' || c.relnamespace::regnamespace::text || '.' || c.relname || ' '
         || c.relkind::text || ' ' || c.relpersistence::text || ' ' || c.reltuples::text
         || ' ' || c.relpages::text || ' ' || c.relrowsecurity::text
  FROM pg_class c
  WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
                               'pg_toast'::regnamespace)
  UNION ALL
  SELECT 'col ' || a.attrelid::regclass::text || ' ' || a.attnum || ' ' || a.attname || ' '
         || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text || ' '
         || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'con ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'idx ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
  WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'trg ' || t.tgenabled::text || ' ' || pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
  UNION ALL
  SELECT 'fun ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc) FROM pg_proc p
  WHERE p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  UNION ALL
  SELECT 'nsp ' || nspname FROM pg_namespace
  UNION ALL
  SELECT 'typ ' || t.typnamespace::regnamespace::text || '.' || t.typname FROM pg_type t
  WHERE t.typnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
                               'pg_toast'::regnamespace)
  UNION ALL
  SELECT 'enm ' || enumtypid::regtype::text || ' ' || enumlabel FROM pg_enum
  UNION ALL
  SELECT 'seq ' || seqrelid::regclass::text || ' ' || seqstart || ' ' || seqincrement || ' '
         || seqmax || ' ' || seqmin || ' ' || seqcache || ' ' || seqcycle::text FROM pg_sequence
  UNION ALL
  SELECT 'ext ' || extname || ' ' || extversion FROM pg_extension
  UNION ALL
  SELECT 'evt ' || evtname FROM pg_event_trigger
  UNION ALL
  SELECT 'pol ' || polname FROM pg_policy
  UNION ALL
  SELECT 'rul ' || rulename FROM pg_rules
  UNION ALL
  SELECT 'sta ' || starelid::regclass::text || ' ' || staattnum FROM pg_statistic s
  JOIN pg_class c ON c.oid = s.starelid WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'set ' || coalesce(array_to_string(setconfig, ','), '') FROM pg_db_role_setting
  WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
) AS parts(x)
"""

_TABLES = """
SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
"""
_SEQUENCES = """
SELECT format('%I.%I', schemaname, sequencename), start_value, last_value FROM pg_sequences
WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
"""
# Sessions on a database other than this one; ended before a rename.
_OTHERS = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
_END_OTHERS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = %s AND pid <> pg_backend_pid()"
)
# Settings of each test database (ALTER DATABASE … SET): part of its fingerprint.
SETTINGS = {"synchronous_commit": "off"}


class Discarded(Exception):
    """A database the pool will not hand out again (it is dropped instead)."""


class Template:
    """What a clean database holds: the template's schema, rows and sequence positions."""

    def __init__(self, url: str) -> None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            self.tables: list[str] = [str(r[0]) for r in conn.execute(_TABLES)]
            self.sequences: list[tuple[str, int, int | None]] = [
                (str(name), int(start), None if last is None else int(last))
                for name, start, last in conn.execute(_SEQUENCES)
            ]
            self.rows: dict[str, bytes] = {}
            for table in self.tables:
                data = bytearray()
                with conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:  # type: ignore[arg-type]
                    for chunk in copy:
                        data += chunk
                if data:
                    self.rows[table] = bytes(data)
        self.fingerprint: str | None = None  # of a clone with SETTINGS (set by the pool)
        # One statement each (one round trip): every table emptied, counting the rows;
        # every sequence back where the template has it.
        deletes = [f"d{n} AS (DELETE FROM {t} RETURNING 1)" for n, t in enumerate(self.tables)]
        counts = " + ".join(f"(SELECT count(*) FROM d{n})" for n in range(len(self.tables)))
        self.delete_all = f"WITH {', '.join(deletes)} SELECT {counts}" if deletes else "SELECT 0"
        self.restart_sequences = (
            "SELECT "
            + ", ".join(
                f"setval('{name}', {start if last is None else last}, {last is not None})"
                for name, start, last in self.sequences
            )
            if self.sequences
            else ""
        )


def fingerprint(conn: Any) -> str:
    """:data:`FINGERPRINT` of the database ``conn`` is on."""
    return str(conn.execute(FINGERPRINT).fetchone()[0])


class DatabasePool:
    """Databases cloned from ``template`` for one test process; cleaned for reuse in a thread."""

    def __init__(self, admin_url: str, template: str, url_of: Any) -> None:
        self.admin_url = admin_url
        self.template_name = template
        self.url_of = url_of  # database name -> URL
        self.template = Template(url_of(template))
        self.failed: list[str] = []  # databases that could not be dropped
        self.counts = {"created": 0, "reused": 0, "discarded": 0}
        self.discarded: list[str] = []  # why, for a look when reuse seems low
        self._ready: list[str] = []
        self._cleaning = 0
        self._changed = threading.Condition()
        self._work: queue.Queue[str | None] = queue.Queue()
        self._deleted: dict[str, int] = {}  # rows deleted so far, per database
        self._thread = threading.Thread(target=self._run, name="pg-pool", daemon=True)
        self._thread.start()

    # -- the test's side ------------------------------------------------------
    def take(self) -> str:
        """The name of a clean database (one being cleaned is waited for: it is sooner)."""
        with self._changed:
            self._changed.wait_for(lambda: self._ready or not self._cleaning, timeout=60)
            if self._ready:
                self.counts["reused"] += 1
                return self._ready.pop()
        return self._create()

    def give_back(self, name: str) -> None:
        """The test that had ``name`` is over: clean it for the next one."""
        with self._changed:
            self._cleaning += 1
        self._work.put(name)

    def close(self) -> None:
        """Drop every database of the pool (waiting for the ones being cleaned)."""
        self._work.put(None)
        self._thread.join(120)
        for name in self._ready:
            self._drop(name)
        self._ready.clear()

    # -- the thread's side ----------------------------------------------------
    def _admin(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            cursor = conn.execute(sql, params or None)  # type: ignore[arg-type]
            return list(cursor.fetchall()) if cursor.description else []

    def _create(self) -> str:
        name = f"interlock_t_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template_name}"')
        for key, value in SETTINGS.items():
            self._admin(f'ALTER DATABASE "{name}" SET {key} = {value}')
        self._deleted[name] = 0
        with self._changed:
            self.counts["created"] += 1
        if self.template.fingerprint is None:  # the first clone: settings as every clone's
            import psycopg

            with psycopg.connect(self.url_of(name), autocommit=True) as conn:
                self.template.fingerprint = fingerprint(conn)
        return name

    def _drop(self, name: str) -> None:
        try:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # reported when the session ends
            self.failed.append(f"{name}: {exc}")

    def _run(self) -> None:
        while (name := self._work.get()) is not None:
            clean: str | None = None
            try:
                clean = self._clean(name)
            except Exception as exc:  # Discarded, or cleaning failed: a new clone instead
                with self._changed:
                    self.counts["discarded"] += 1
                    self.discarded.append(f"{name}: {exc!r}"[:300])
            with self._changed:
                self._cleaning -= 1
                if clean is not None:
                    self._ready.append(clean)
                self._changed.notify_all()

    def _clean(self, name: str) -> str:
        deleted = self._deleted.pop(name, 0)
        renamed = self._rename(name)
        try:
            deleted += self._reset(renamed)
            if deleted > DELETED_ROWS_LIMIT:
                raise Discarded(f"{deleted} rows deleted since it was created")
        except BaseException:
            self._drop(renamed)
            raise
        self._deleted[renamed] = deleted
        return renamed

    def _rename(self, name: str) -> str:
        """End the sessions on ``name`` and give it a new name (or drop it and raise)."""
        import psycopg

        renamed = f"interlock_t_{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + 10
        while True:
            self._admin(_END_OTHERS, name)
            try:
                self._admin(f'ALTER DATABASE "{name}" RENAME TO "{renamed}"')
                return renamed
            except psycopg.errors.ObjectInUse:
                # A session was still ending (or a client came back): wait for it to go.
                if time.monotonic() > deadline:
                    self._drop(name)
                    raise
                self._wait_alone(name, deadline)
            except Exception:
                self._drop(name)
                raise

    def _wait_alone(self, name: str, deadline: float) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while conn.execute(_OTHERS, (name,)).fetchone() and time.monotonic() < deadline:
                conn.execute("SELECT pg_sleep(0.01)")

    def _reset(self, name: str) -> int:
        """Rows back to the template's; the number of rows deleted."""
        import psycopg

        template = self.template
        with psycopg.connect(self.url_of(name)) as conn:
            if fingerprint(conn) != template.fingerprint:
                raise Discarded("its schema, settings or statistics changed")
            conn.execute("SET LOCAL session_replication_role = replica")  # no FK checks, triggers
            deleted = int(conn.execute(template.delete_all).fetchone()[0])  # type: ignore[index]
            for table, data in template.rows.items():
                with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:  # type: ignore[arg-type]
                    copy.write(data)
            if template.restart_sequences:
                conn.execute(template.restart_sequences)
        return deleted

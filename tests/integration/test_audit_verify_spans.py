"""`audit verify` split over processes gives the answer of one pass, problem for problem.

A large log is verified in stretches, one `python -m interlock.storage.audit_spans`
process each, and joined. Tampering inside a stretch, across the edge of two, or
wiping a whole stretch out is reported exactly as one pass reports it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from sqlalchemy import text

from interlock.audit.chain import Checkpoint, Span, verify_span
from interlock.engine import views
from interlock.engine.core import Engine
from interlock.storage.audit import _STORED_ROWS_PG
from interlock.storage.audit_spans import split, stretch_rows, verify_in_processes
from interlock.storage.db import Database
from interlock.storage.migrate import upgrade
from tests.support.audit_chain import build

EVENTS = 60  # four stretches: 1..15, 16..30, 31..45, 46..60


def _sql(engine: Engine, *statements: str) -> None:
    with engine.db.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def _hash(engine: Engine, seq: int) -> str:
    with engine.db.engine.connect() as conn:
        return str(conn.execute(text(f"SELECT hash FROM audit_events WHERE seq = {seq}")).scalar())


def _swap(a: int, b: int) -> tuple[str, ...]:
    return (
        f"UPDATE audit_events SET seq = -1 WHERE seq = {a}",
        f"UPDATE audit_events SET seq = {a} WHERE seq = {b}",
        f"UPDATE audit_events SET seq = {b} WHERE seq = -1",
    )


def _copy(source: int, target: int) -> str:
    """Event ``target`` made a copy of event ``source`` (every column but its seq)."""
    columns = ("at", "actor", "action", "object_type", "object_id", "body", "prev_hash", "hash")
    copied = ", ".join(
        f"{c} = (SELECT {c} FROM audit_events WHERE seq = {source})" for c in columns
    )
    return f"UPDATE audit_events SET {copied} WHERE seq = {target}"


TAMPERING = {
    "intact": (),
    "edited body inside a stretch": (
        "UPDATE audit_events SET body = replace(body, 'attempt', 'attempts') WHERE seq = 20",
    ),
    "edited column": ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 46",),
    "first event of a stretch deleted": ("DELETE FROM audit_events WHERE seq = 16",),
    "last event of a stretch deleted": ("DELETE FROM audit_events WHERE seq = 30",),
    "swapped across the edge of two stretches": _swap(30, 31),
    "a whole stretch deleted": ("DELETE FROM audit_events WHERE seq > 30 AND seq <= 45",),
    "the first event deleted": ("DELETE FROM audit_events WHERE seq = 1",),
    "the tail cut off": ("DELETE FROM audit_events WHERE seq > 57",),
    "the head moved": ("UPDATE audit_head SET seq = 59",),
    "an event copied over the next one": (_copy(20, 21),),
    "an event copied onto the end": (
        "INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, body, "
        "prev_hash, hash) SELECT 61, at, actor, action, object_type, object_id, body, "
        "prev_hash, hash FROM audit_events WHERE seq = 20",
    ),
    "a time moved by a millisecond": ("UPDATE audit_events SET at = at + 0.001 WHERE seq = 33",),
    "a time moved within the tolerance": (
        "UPDATE audit_events SET at = at + 0.000001 WHERE seq = 33",
    ),
}

# What one pass reports for each (seq, kind), pinned: the stretches must say the same.
REPORTED = {
    "intact": [],
    "edited body inside a stretch": [(20, "hash")],
    "edited column": [(46, "column")],
    "first event of a stretch deleted": [(17, "missing"), (17, "link"), (16, "truncated")],
    "last event of a stretch deleted": [(31, "missing"), (31, "link")],
    "swapped across the edge of two stretches": [
        (30, "link"),
        (30, "column"),
        (31, "link"),
        (31, "column"),
        (32, "link"),
    ],
    "a whole stretch deleted": [(46, "missing"), (46, "link")],
    "the first event deleted": [(2, "missing"), (2, "link")],
    "the tail cut off": [(59, "truncated"), (58, "truncated")],
    "the head moved": [(60, "head")],
    "an event copied over the next one": [(21, "link"), (21, "column"), (22, "link")],
    "an event copied onto the end": [(61, "link"), (61, "column"), (61, "head")],
    "a time moved by a millisecond": [(33, "column")],
    "a time moved within the tolerance": [],
}


# Cases run in real processes; the others verify each stretch in this process, as
# `python -m interlock.storage.audit_spans` would (four interpreters a case otherwise).
IN_PROCESSES = ("intact", "swapped across the edge of two stretches", "a whole stretch deleted")


def stretches_here(
    url: str, top: int, spans: int, checkpoints: Sequence[Checkpoint]
) -> list[Span] | None:
    """``verify_in_processes`` without the processes: the same stretches, request and answer."""
    answers = []
    for lo, hi in split(top, spans):
        mine = [c for c in checkpoints if lo < c.seq <= hi]
        span = verify_span(stretch_rows(url, lo, hi), mine)
        answers.append(Span.from_json(json.loads(json.dumps(span.to_json()))))
    return answers


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_stretches_in_processes_report_what_one_pass_reports(
    engine: Engine, tampering: str, monkeypatch: pytest.MonkeyPatch
):
    if tampering not in IN_PROCESSES:
        monkeypatch.setattr(views, "verify_in_processes", stretches_here)
    build(engine.db.engine, EVENTS)
    checkpoints = [Checkpoint(59, _hash(engine, 59)), Checkpoint(16, _hash(engine, 16))]
    _sql(engine, *TAMPERING[tampering])

    one_pass = views.audit_verify(engine, checkpoints, processes=1)
    in_processes = views.audit_verify(engine, checkpoints, processes=4)

    assert in_processes == one_pass
    assert [(p["seq"], p["kind"]) for p in one_pass.problems] == REPORTED[tampering]
    assert one_pass.ok is not REPORTED[tampering]


# Stretches of 15 read 7 events a query: 1..7, 8..14, 15 | 16..22, 23..29, 30 | ...
AT_A_BATCH_EDGE = {
    "last event of a read batch edited": (
        ("UPDATE audit_events SET body = replace(body, 'attempt', 'attempts') WHERE seq = 14",),
        [(14, "hash")],
    ),
    "first event of a read batch deleted": (
        ("DELETE FROM audit_events WHERE seq = 8",),
        [(9, "missing"), (9, "link")],
    ),
    "last event of a read batch copied over the next": (
        (_copy(14, 15),),
        [(15, "link"), (15, "column"), (16, "link")],
    ),
    "a batch's worth deleted across a stretch's edge": (
        ("DELETE FROM audit_events WHERE seq >= 14 AND seq <= 23",),
        [(24, "missing"), (24, "link"), (16, "truncated")],
    ),
}


@pytest.mark.parametrize("tampering", list(AT_A_BATCH_EDGE))
def test_tampering_at_the_edge_of_a_read_batch_is_reported_as_one_pass_does(
    engine: Engine, tampering: str, monkeypatch: pytest.MonkeyPatch
):
    import interlock.storage.audit_spans as audit_spans

    monkeypatch.setattr(views, "verify_in_processes", stretches_here)
    monkeypatch.setattr(audit_spans, "SQLITE_BATCH", 7)
    monkeypatch.setattr(audit_spans, "BATCH", 7)
    build(engine.db.engine, EVENTS)
    checkpoints = [Checkpoint(59, _hash(engine, 59)), Checkpoint(16, _hash(engine, 16))]
    statements, reported = AT_A_BATCH_EDGE[tampering]
    _sql(engine, *statements)

    one_pass = views.audit_verify(engine, checkpoints, processes=1)
    in_stretches = views.audit_verify(engine, checkpoints, processes=4)

    assert in_stretches == one_pass
    assert [(p["seq"], p["kind"]) for p in one_pass.problems] == reported


def test_stretches_cover_the_log_once():
    assert split(10, 4) == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert split(3, 8) == [(0, 1), (1, 2), (2, 3)]
    assert split(0, 4) == [(0, 0)]


def test_a_stretch_that_fails_gives_no_answer_so_verify_makes_one_pass(tmp_path):
    assert verify_in_processes(f"sqlite:///{tmp_path / 'gone' / 'x.db'}", 10, 2, []) is None


def test_a_database_file_whose_name_needs_escaping_is_read(tmp_path):
    where = tmp_path / "a #1 ?50%" / "audit.db"
    where.parent.mkdir()
    database = Database(f"sqlite:///{where}")
    try:
        upgrade(database)
        build(database.engine, 5)
        engine = Engine(database)
        assert views.audit_verify(engine, processes=2) == views.audit_verify(engine, processes=1)
        assert views.audit_verify(engine, processes=2).count == 5
    finally:
        database.dispose()


def _rows_read(url: str, sql: str, params: tuple[int, ...]) -> int:
    """The most rows any scan of audit_events produced to answer ``sql`` (EXPLAIN ANALYZE)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchone()[0]  # type: ignore[index]

    def scans(node: dict) -> list[int]:  # type: ignore[type-arg]
        own = [node["Actual Rows"]] if node.get("Relation Name") == "audit_events" else []
        return own + [n for child in node.get("Plans", []) for n in scans(child)]

    return max(scans(plan[0]["Plan"]))


def test_a_stretch_on_postgresql_reads_a_batch_not_the_rest_of_its_stretch(
    database_url: str, backend: str
):
    """Statistics taken when the log was small (or a generic plan) made a batch of a
    stretch read every event up to the stretch's end and sort them: quadratic."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's planner")
    import interlock.storage.audit_spans as audit_spans

    database = Database(database_url)
    try:
        build(database.engine, 3000)
        with database.engine.begin() as conn:  # statistics of a log of 100 events...
            conn.execute(text("CREATE TABLE kept AS SELECT * FROM audit_events WHERE seq > 100"))
            conn.execute(text("DELETE FROM audit_events WHERE seq > 100"))
        with database.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("ANALYZE audit_events")
            )
        with database.engine.begin() as conn:  # ...that has grown to 3,000 since
            conn.execute(text("INSERT INTO audit_events SELECT * FROM kept"))
            conn.execute(text("DROP TABLE kept"))
        # A batch of 100 in the middle of the stretch 1000 < seq <= 3000, as _batches asks.
        assert _rows_read(database_url, audit_spans._PG, (1000, 1100)) <= 100
        # The one pass's batches likewise
        assert _rows_read(database_url, _STORED_ROWS_PG, (1000, 1100)) <= 100
        # (and the stretch still ends where it should: the events of 2990 < seq <= 2995)
        assert [r[0] for r in stretch_rows(database_url, 2990, 2995, 4)] == list(range(2991, 2996))
        assert views.audit_verify(Engine(database), processes=3) == views.audit_verify(
            Engine(database), processes=1
        )
    finally:
        database.dispose()

"""A commit that changed several releases moves each one's revision once.

On SQLite (one writer, no row locks to order) that is one statement, however
many releases the commit touched (a group commit of workers' steps touches
two per step); on PostgreSQL one per release, in id order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from interlock.storage.db import Database
from tests.contract.conftest import NOW, seed_release


@pytest.fixture
def sent(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", listen)
    yield statements
    event.remove(db.engine, "before_cursor_execute", listen)


@pytest.mark.parametrize("count", [1, 2, 7])
def test_each_touched_release_moves_once(db: Database, sent: list[str], count: int) -> None:
    with db.transaction() as tx:
        ids = [seed_release(tx) for _ in range(count + 1)]  # the last one is left alone
    touched, untouched = ids[:-1], ids[-1]
    with db.read() as tx:
        before = tx.release_revisions(ids)
    sent.clear()
    with db.transaction() as tx:
        for release_id in reversed(touched):
            tx.touch_release(release_id, NOW)
            tx.touch_release(release_id, NOW)  # twice in one commit: still one move
    with db.read() as tx:
        after = tx.release_revisions(ids)
        stored = {r.id: r.updated_at for r in tx.list_releases(limit=count + 1)}
    assert {i: after[i] - before[i] for i in touched} == dict.fromkeys(touched, 1)
    assert after[untouched] == before[untouched]
    assert all(stored[i] > NOW for i in touched) and stored[untouched] == NOW
    updates = [s for s in sent if s.startswith("UPDATE releases")]
    assert len(updates) == (1 if db.dialect == "sqlite" else count), updates

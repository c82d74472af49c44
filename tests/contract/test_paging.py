"""List queries page in a stable order: pages never repeat or skip a record."""

from __future__ import annotations

from interlock.storage.db import Database
from tests.contract.conftest import NOW, seed_release


def test_releases_page_newest_first_by_cursor(db: Database) -> None:
    with db.transaction() as tx:
        ids = [seed_release(tx, reason=f"CONTRACT-{n}: page") for n in range(23)]
    pages: list[list[int]] = []
    before: int | None = None
    with db.read() as tx:
        while True:
            page = [r.id for r in tx.list_releases(limit=5, before_id=before)]
            if not page:
                break
            pages.append(page)
            before = page[-1]
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [i for page in pages for i in page] == sorted(ids, reverse=True)


def test_audit_pages_by_sequence_both_ways(db: Database) -> None:
    for n in range(12):
        with db.transaction() as tx:
            tx.audit(at=NOW, actor="ann", action="contract.paged", object_type="c", object_id=n)
    with db.read() as tx:
        oldest_first = [e.seq for e in tx.list_audit(limit=5)]
        next_page = [e.seq for e in tx.list_audit(limit=5, after=oldest_first[-1])]
        newest_first = [e.seq for e in tx.list_audit(limit=5, newest_first=True)]
        older = [e.seq for e in tx.list_audit(limit=5, newest_first=True, before=newest_first[-1])]
    assert oldest_first + next_page == list(range(1, 11))
    assert newest_first + older == list(range(12, 2, -1))

"""Paging of every list endpoint: one convention, the audit API's.

A list answers ``{"items": [...], "next_cursor": N}``: ``next_cursor`` is null
at the end, otherwise the ``cursor`` to pass for the next page. Pages are
keyset pages (rows after the cursor's key in the list's order), so rows added
meanwhile neither shift nor repeat what a client already read. ``limit`` has a
default and a maximum per endpoint, both in the OpenAPI description.

A list that leaves out rows the caller may not read, or that do not match a
condition only Python can check, still fills its page: :func:`collect` reads
further batches until it has a page or the rows run out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query

from interlock.api.schemas import Page
from interlock.domain.bounds import MAX_ID

Row = TypeVar("Row")

BATCH_MAX = 2000  # rows read at once when many are left out of a page
Cursor = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_ID,
        description="The `next_cursor` of the page before; leave out for the first page.",
    ),
]


def limit_query(default: int, maximum: int) -> Any:
    """A ``limit`` query parameter: how many items a page holds, at most ``maximum``."""
    return Query(
        default=default,
        ge=1,
        le=maximum,
        description=f"Items per page (default {default}, at most {maximum}).",
    )


def collect(
    fetch: Callable[[int | None, int], Sequence[Row]],
    *,
    key: Callable[[Row], int],
    cursor: int | None,
    limit: int,
    keep: Callable[[Row], bool] = lambda _: True,
) -> tuple[list[Row], int | None]:
    """One page of the rows ``fetch`` lists from a cursor on, and the cursor after it.

    ``fetch(cursor, n)`` returns at most ``n`` rows past ``cursor`` (``None``:
    from the start) in the list's order; ``key`` gives a row's cursor. Rows
    ``keep`` refuses are passed over, reading on until the page is full (and
    one more kept row shows there is more).
    """
    page: list[Row] = []
    batch = limit + 1
    while True:
        found = fetch(cursor, batch)
        for row in found:
            if keep(row):
                if len(page) == limit:
                    return page, key(page[-1])  # a row beyond the page: there is more
                page.append(row)
            cursor = key(row)
        if len(found) < batch:
            return page, None
        batch = min(batch * 2, BATCH_MAX)  # many rows left out: read on in larger batches


def page_of(
    fetch: Callable[[int | None, int], Sequence[Row]],
    *,
    key: Callable[[Row], int],
    cursor: int | None,
    limit: int,
    out: Callable[[Row], Any],
    keep: Callable[[Row], bool] = lambda _: True,
) -> Page[Any]:
    """:func:`collect` as the answer of a list endpoint, each row shown by ``out``."""
    rows, next_cursor = collect(fetch, key=key, cursor=cursor, limit=limit, keep=keep)
    return Page(items=[out(r) for r in rows], next_cursor=next_cursor)

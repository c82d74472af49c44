"""One page of a list, past the rows the caller may not see, and whether there is more."""

from __future__ import annotations

from interlock.api.paging import collect

ROWS = list(range(1, 1001))


def fetch(calls: list[int]):
    def read(cursor: int | None, n: int) -> list[int]:
        calls.append(n)
        return [r for r in ROWS if cursor is None or r > cursor][:n]

    return read


def test_a_page_is_full_although_rows_are_left_out_and_says_when_there_is_more():
    calls: list[int] = []
    every_tenth = lambda r: r % 10 == 0  # noqa: E731
    page, cursor = collect(fetch(calls), key=lambda r: r, cursor=None, limit=3, keep=every_tenth)
    assert (page, cursor) == ([10, 20, 30], 30)
    page, cursor = collect(fetch(calls), key=lambda r: r, cursor=980, limit=5, keep=every_tenth)
    assert (page, cursor) == ([990, 1000], None)  # the end: no cursor


def test_the_last_full_page_has_no_cursor_when_nothing_follows():
    calls: list[int] = []
    assert collect(fetch(calls), key=lambda r: r, cursor=995, limit=5) == (
        [996, 997, 998, 999, 1000],
        None,
    )
    assert collect(fetch(calls), key=lambda r: r, cursor=None, limit=2) == ([1, 2], 2)


def test_rows_mostly_left_out_are_read_in_growing_batches():
    calls: list[int] = []
    page, cursor = collect(
        fetch(calls), key=lambda r: r, cursor=None, limit=1, keep=lambda r: False
    )
    assert (page, cursor) == ([], None)
    assert calls[:4] == [2, 4, 8, 16] and max(calls) <= 2000 and len(calls) < 15

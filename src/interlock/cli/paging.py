"""Lists that the API pages: one page, or every page with ``--all``; never a silent cut."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from interlock.cli.client import Client

F = TypeVar("F", bound=Callable[..., Any])


def page_options(command: F) -> F:
    """``--cursor N`` (the page after N), ``--all`` (every page) and ``--limit`` (per page)."""
    command = click.option(
        "--limit", type=click.IntRange(1), help="Items per page (default: the server's)."
    )(command)
    command = click.option("--all", "every", is_flag=True, help="Every page, not the first only.")(
        command
    )
    return click.option(
        "--cursor",
        type=click.IntRange(1),
        help="Show the page after this one (the cursor a list prints when there is more).",
    )(command)


def listed(client: Client, path: str, **options: Any) -> list[Any]:
    """The items of ``path`` from ``cursor`` on: one page, or (``every``) all of them.

    When one page is shown and there is more, says so on stderr with the
    cursor to go on from. ``options``: those of :func:`paged`.
    """
    return paged(client, path, **options)[0]


def paged(
    client: Client,
    path: str,
    *,
    cursor: int | None = None,
    every: bool = False,
    limit: int | None = None,
    **params: Any,
) -> tuple[list[Any], int | None]:
    """:func:`listed`, and the cursor of the page after the items (``None``: no more)."""
    items: list[Any] = []
    while True:
        page = client.get(path, cursor=cursor, limit=limit, **params)
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if cursor is None:
            return items, None
        if not every:
            click.echo(f"more: add --cursor {cursor} for the next page, or --all", err=True)
            return items, cursor

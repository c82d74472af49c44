"""Printing results and errors; the one place that turns errors into exit codes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from interlock.errors import EXIT_USAGE, InterlockError

FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


def run(command: click.Group, argv: list[str]) -> None:
    """Run the CLI; errors become a message on stderr and a documented exit code."""
    try:
        command.main(args=argv, prog_name="interlock", standalone_mode=False)
    except InterlockError as exc:
        problems = [
            p for p in exc.extra.get("errors") or () if isinstance(p, dict) and "message" in p
        ]
        if len(problems) < 2 or "\n" in exc.detail:  # the detail says it all
            error(exc.detail)
        else:  # one line each, not the detail that strings them together
            error(f"{len(problems)} problems:")
            for problem in problems:
                where = problem.get("field") or problem.get("loc") or ""
                error(f"  {where}: {problem['message']}" if where else f"  {problem['message']}")
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        error("aborted")
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug: say so in one line, the traceback only on request
        if os.environ.get("INTERLOCK_DEBUG"):
            raise
        error(
            f"interlock hit an unexpected error ({type(exc).__name__}: {exc}); this is a bug, "
            "please report it. Set INTERLOCK_DEBUG=1 to see where it happened."
        )
        sys.exit(1)
    sys.exit(0)


def error(message: str) -> None:
    click.echo(f"error: {message}" if not message.startswith("  ") else message, err=True)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def stamp(value: object) -> str:
    """A time from the API as tables show it: to the second, as the server gave it (UTC)."""
    return str(value)[:19].replace("T", " ") if value else ""


def table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    *,
    title: str | None = None,
    empty: str = "nothing to show",
    styles: dict[str, Callable[[Any], str]] | None = None,
) -> None:
    """Print ``rows`` as a table with Rich; ``columns`` are (key, header) pairs."""
    if not rows:
        click.echo(empty)
        return
    from rich.console import Console
    from rich.table import Table

    grid = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for _, header in columns:
        grid.add_column(header)
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            text = "" if value is None else str(value)
            if styles and key in styles:
                text = styles[key](value)
            cells.append(text)
        grid.add_row(*cells)
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console = Console(soft_wrap=True, width=max(console.width, 160))
    console.print(grid)


STATE_COLORS = {
    "succeeded": "green",
    "running": "cyan",
    "queued": "blue",
    "scheduled": "blue",
    "ready": "blue",
    "pending": "dim",
    "waiting": "yellow",
    "needs_attention": "bold yellow",
    "rolling_back": "magenta",
    "rolled_back": "magenta",
    "failed": "red",
    "cancelled": "dim",
    "skipped": "dim",
}


def state(value: Any) -> str:
    color = STATE_COLORS.get(str(value), "")
    return f"[{color}]{value}[/{color}]" if color else str(value)

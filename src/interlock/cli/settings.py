"""Where things are: INTERLOCK_HOME, the database URL, the server URL, the token."""

from __future__ import annotations

import os
from pathlib import Path

import click

DEFAULT_URL = "http://127.0.0.1:8520"
DEFAULT_PORT = 8520


def home() -> Path:
    """``INTERLOCK_HOME``, or ``.interlock`` in the current directory."""
    return Path(os.environ.get("INTERLOCK_HOME") or ".interlock")


def default_database_url() -> str:
    return f"sqlite:///{(home() / 'interlock.db').resolve()}"


DATABASE_OPTION = click.option(
    "--database-url",
    envvar="INTERLOCK_DATABASE_URL",
    default=None,
    metavar="URL",
    help="sqlite:///PATH or postgresql://USER@HOST/DB [env: INTERLOCK_DATABASE_URL; "
    "default: SQLite in INTERLOCK_HOME]",
)

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    envvar="INTERLOCK_CONFIG",
    default="interlock.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config file [env: INTERLOCK_CONFIG].",
)

"""The ``interlock`` command: a client of the REST API, plus offline commands."""

from __future__ import annotations

import sys

# `import httpx` also imports httpx's own command line (pygments, rich.syntax,
# rich.progress: a third of httpx's import time) when it can; ours never runs
# it, so it is not loaded: httpx then keeps a stub in its place. Every CLI call
# pays this import, so it counts (see tests/unit/test_cli_startup.py).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

"""The storage package's arrows go one way: ``db`` imports ``tx``, never back.

Every import counts, including those under ``TYPE_CHECKING`` and inside functions
(a cycle hidden there is still a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import interlock.storage

ROOT = Path(interlock.storage.__file__).parent


def _imports(module: str) -> set[str]:
    relative = module.removeprefix("interlock.storage").lstrip(".").replace(".", "/")
    path = ROOT / f"{relative}.py"
    if not path.exists():
        path = ROOT / relative / "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("interlock.storage.")}


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(_imports(module))
    return seen


def test_no_transaction_module_reaches_the_database_module() -> None:
    reached = _reachable("interlock.storage.tx")
    assert "interlock.storage.facts.delivery" in reached  # the walk follows the queries
    assert "interlock.storage.db" not in reached

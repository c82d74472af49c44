"""The import contracts of pyproject.toml hold: the package's and the engine's layers.

Runs the venv's `lint-imports`, as `make test` does, so an import that goes up a
layer (even one hidden inside a function) fails the tests, naming the chain.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_layers_of_the_package_and_of_the_engine_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Engine layers" in done.stdout and "Package layers" in done.stdout
    assert " 0 broken" in done.stdout

"""The import contracts of pyproject.toml hold: the package's and the engine's layers.

Runs the venv's `lint-imports`, as `make test` does, so an import that goes up a
layer (even one hidden inside a function) fails the tests, naming the chain.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
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


def test_no_arrow_goes_back_as_a_listed_exception() -> None:
    """The contracts list no ``ignore_imports``: every arrow goes one way, none excused."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    assert {c["id"] for c in contracts} >= {"package-layers", "engine-layers"}
    excused = {c["id"]: c["ignore_imports"] for c in contracts if c.get("ignore_imports")}
    assert excused == {}

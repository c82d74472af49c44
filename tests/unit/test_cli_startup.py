"""`interlock --help` stays fast: the heavy libraries load only in the commands that use them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("fastapi", "sqlalchemy", "httpx", "pydantic", "uvicorn", "rich", "yaml", "psycopg")


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from interlock.cli.main import cli; "
        "cli.main(['--help'], standalone_mode=False); "
        f"print('heavy:', ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "heavy:"
    assert "release" in out.stdout and "approve" in out.stdout

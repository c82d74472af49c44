"""`interlock server` options out of range are usage errors naming the option (exit 2)."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.server import INTERLOCK


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--port", "99999"], "--port"),
        (["--port", "0"], "--port"),
        (["--max-body", "2GiB"], "--max-body"),
        (["--max-hook-body", "lots"], "--max-hook-body"),
    ],
)
def test_an_option_out_of_range_is_a_usage_error_not_a_bug(args, named, tmp_path):
    done = subprocess.run(
        [INTERLOCK, "server", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "INTERLOCK_HOME": str(tmp_path / "home")},
    )
    assert done.returncode == 2, done.stderr
    assert f"Invalid value for '{named}'" in done.stderr
    assert "bug" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "home").exists()  # refused before anything was made

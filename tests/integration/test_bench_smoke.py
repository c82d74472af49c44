"""The benchmarks of docs/performance.md still run, at tiny sizes, and the page is written.

A bench that only runs once in a while rots quietly when the engine or the API
changes under it; this runs each one's real command against a real server
(DBOS's side of bench/peers needs its own environment and is left out; its
Interlock side runs here).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # three real server starts: about 40 s on a loaded 2-core machine
def test_the_benchmarks_run_at_tiny_sizes_and_write_the_page(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    done = subprocess.run(
        [sys.executable, "bench/report.py", "--only", "latency-sqlite,waiting,audit"]
        + ["--approvals", "2", "--waiting", "2", "--events", "300"]
        + ["--results", str(tmp_path / "results"), "--out", str(page)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = page.read_text()
    assert "failed" not in text, text
    assert "| SQLite | 2 |" in text  # two approvals, each with its wake-up
    assert "| 2 releases waiting |" in text
    assert "a valid chain of 300 events" in text
    assert "## Interlock and DBOS, side by side\n\nNot run yet." in text


def test_the_interlock_side_of_the_peers_bench_runs(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "bench/peers/run.py")
    assert spec is not None and spec.loader is not None
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)
    interlock = peers.Interlock(tmp_path, releases=3, pipeline_steps=4)
    try:
        assert interlock.info == {"journal_mode": "WAL", "synchronous": "FULL"}
        assert 0 < interlock.run("A") < 5  # seconds per step
        assert 0 < interlock.run("B") < 5
    finally:
        interlock.close()


def test_the_wake_up_breakdown_runs_and_counts_an_approvals_statements(tmp_path: Path) -> None:
    out = tmp_path / "parts.json"
    done = subprocess.run(
        [sys.executable, "bench/wake_parts.py", "--approvals", "3", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sqlite: 3 approvals, ms per part" in done.stdout, done.stdout
    # Each approval was handed to an idle worker in its own commit (the bench fails
    # otherwise), in the statements tests/integration/test_approval_wake.py pins.
    assert '"statements": 20' in out.read_text()

"""bench/config.py: a company's config (500 services x 3 environments in 50 files) validates
in under 1 s and reloads in under 2 s, as issue 18 asks; the bench prints both."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_company_config_validates_in_under_a_second_and_reloads_in_under_two(capsys):
    spec = importlib.util.spec_from_file_location("bench_config", ROOT / "bench/config.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec.loader.exec_module(bench)
        figures = bench.main(["--runs", "3"])
    finally:
        sys.path.remove(str(ROOT / "bench"))
    assert (figures["services"], figures["environments"], figures["files"]) == (500, 3, 50)
    # The targets (validate < 1 s, reload < 2 s) are the bench's figures, read on an
    # idle machine (docs/performance.md); here, on a machine as loaded as the suite
    # leaves it, only a tenfold regression fails.
    assert figures["validate_seconds"] < 10.0, figures
    assert figures["reload_seconds"] < 20.0, figures
    printed = capsys.readouterr().out
    assert "validate: " in printed and "reload: " in printed

"""bench/metrics.py builds its history in bulk; what it derives is what the product derives.

The bench writes records straight into the tables with the per-day counting
triggers dropped, then derives the delivery facts with ``rebuild_delivery(bulk=True)``
(indexes made after the rows) and counts every day once. At a small size, every
derived row (facts, gates, steps, day sums, slips, per-day and per-block counts) must equal
what the product's plain ``rebuild_delivery`` derives from the same records, the
triggers must be back as a migrated database has them, and they must count again.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import inspect, select, text

from interlock.engine.core import Engine
from interlock.engine.metrics import MetricsRequest, delivery_report
from interlock.storage.db import Database
from interlock.storage.metric_bounds import BOUNDS
from interlock.storage.schema import delivery_facts, metric_days

ROOT = Path(__file__).resolve().parents[2]
DERIVED = (
    "delivery_facts",
    "delivery_gates",
    "delivery_steps",
    "delivery_days",
    "delivery_people",
    "delivery_step_days",
    "delivery_slips",
    "metric_days",
    "metric_blocks",
)


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_metrics", ROOT / "bench/metrics.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def derived(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every derived row (``delivery_facts`` without its surrogate id), in a fixed order."""
    found = {}
    with db.engine.connect() as conn:
        for table in DERIVED:
            columns = [c["name"] for c in inspect(conn).get_columns(table) if c["name"] != "id"]
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = conn.execute(text(f"SELECT {quoted} FROM {table}")).all()
            found[table] = sorted((tuple(r) for r in rows), key=repr)
    return found


def triggers(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        return set(conn.execute(text(query)).scalars())


def report(db: Database) -> list[tuple[str, str]]:
    found = delivery_report(
        Engine(db),
        MetricsRequest(since="2024-01-01T00:00:00+00:00", until="2026-01-01T00:00:00+00:00"),
    )
    return [(m.key, m.display()) for m in found.metrics]


def test_the_bench_derives_in_bulk_what_the_product_derives(db, capsys):
    module = bench()
    migrated = triggers(db)
    with module.building(db):
        module.build(db, 2_000, 200, 3, 7)
    assert "delivery facts derived" in capsys.readouterr().out
    built = derived(db)
    # something of every kind (the past blocks of days moved into metric_blocks)
    assert all(built[t] for t in DERIVED if t != "metric_days"), built["metric_days"]
    assert triggers(db) == migrated
    measured = report(db)

    with db.transaction() as tx:  # the product's own derivation, from the same records
        tx.rebuild_delivery()
    assert derived(db) == built
    assert report(db) == measured
    with db.read() as tx:  # and the per-day counts sum what the rows do
        days = tx.metric_totals(None, None, BOUNDS)
        rows = tx.metric_totals(None, None, BOUNDS, rollups=False)
    assert days.deployments == rows.deployments and days.step_runs == rows.step_runs

    with db.transaction() as tx:  # the triggers count again
        count = select(metric_days.c.events).where(metric_days.c.family == "deployments")
        total = sum(tx.conn.execute(count).scalars())
        tx.conn.execute(
            delivery_facts.delete().where(
                delivery_facts.c.id == select(delivery_facts.c.id).limit(1).scalar_subquery()
            )
        )
        assert sum(tx.conn.execute(count).scalars()) == total - 1


def test_the_report_writes_the_metrics_figures_and_their_targets(tmp_path):
    page = tmp_path / "performance.md"
    done = subprocess.run(
        [sys.executable, "bench/report.py", "--only", "metrics", "--metrics-sizes", "300"]
        + ["--metrics-pg-sizes", "", "--results", str(tmp_path / "results"), "--out", str(page)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = page.read_text()
    assert "## Delivery metrics" in text and "failed" not in text, text
    assert "| all metrics, default definitions, whole history | " in text
    assert "| /metrics, first scrape ever (sums history) | " in text
    assert (
        "| first /metrics scrape < 1 s | " in text and "(300 deployments) | not measured |" in text
    )

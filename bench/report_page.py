"""docs/performance.md from the figures bench/report.py collected (no measuring here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

A_ROW = "1 release x 100 sequential steps [4 threads]"
B_ROW = "200 concurrent releases x 5 steps [4 threads]"
FLOOR_ROW = "storage floor (the SQL of a step alone) [-]"
B_ONE = "200 concurrent releases x 5 steps [1 process]"
B_FOUR = "200 concurrent releases x 5 steps [4 processes]"


def _verdict(ok: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[ok]


def _peak(found: dict[str, dict[str, Any]]) -> float:
    return max((max(p["load"]) for p in found.values() if p.get("load")), default=0.0)


def _load(part: dict[str, Any]) -> str:
    load = part.get("load")
    return f"{load[0]:.1f} → {load[1]:.1f}" if load else "-"


def render(meta: dict[str, Any], found: dict[str, dict[str, Any]]) -> str:
    m = meta["machine"]
    lines = [
        "# Performance",
        "",
        "The figures of issue 19, each beside its peer's or its baseline from the same run.",
        "Regenerate this page (it is written whole) with:",
        "",
        "    .venv/bin/python bench/report.py",
        "",
        "`bench/report.py --help` shows smaller sizes and `--only` to rerun some parts.",
        "Every figure comes from a benchmark under `bench/` that can be run on its own",
        "(its command is beside it); each one starts what it needs on 127.0.0.1, stops",
        "by itself, and works in a fresh temporary folder or PostgreSQL database.",
        "",
        f"## Machine (page written {meta['at']})",
        "",
        f"- {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB of memory",
        f"- Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgresql']}",
        "- The load average before → after each part is beside it (1.0 = one core busy;",
        f"  the highest in this run: {_peak(found):.1f}). Other work on the machine slows",
        "  Interlock and its peer alike; the peer table's runs alternate so that it falls on both.",
    ]
    if meta.get("note"):
        lines.append(f"- **{meta['note']}**")
    lines.append("")
    lines += _section("Interlock and DBOS, side by side", found.get("peers"), _peers)
    lines += _engine(found.get("engine-sqlite"), found.get("engine-pg"))
    lines += _latency(found.get("latency-sqlite"), found.get("latency-pg"))
    lines += _section("Releases waiting at approval gates", found.get("waiting"), _waiting)
    lines += _section("Audit verify", found.get("audit"), _audit)
    lines += _section("Delivery metrics", found.get("metrics"), _metrics)
    lines += _targets(found)
    return "\n".join(lines) + "\n"


def _section(
    title: str, part: dict[str, Any] | None, body: Callable[[dict[str, Any]], list[str]]
) -> list[str]:
    """A part's heading and its figures, or that it was not run or failed."""
    if part is None:
        return [f"## {title}", "", "Not run yet.", ""]
    if "error" in part:
        failed = f"`{part['command']}` failed:"
        return [f"## {title}", "", failed, "", "```", part["error"], "```", ""]
    return [f"## {title}", "", *body(part)]


def _peers(part: dict[str, Any]) -> list[str]:
    s = part["settings"]
    lines = [
        f"`{part['command']}` (load {_load(part)}): DBOS {part['dbos_version']} in its own",
        "virtual environment; a warm-up of each, then "
        f"{part['runs']} runs of each, Interlock and DBOS alternately; medians.",
        "",
        "| workload | Interlock ms/step | DBOS ms/step | Interlock / DBOS |",
        "|---|---:|---:|---:|",
    ]
    for w in part["workloads"].values():
        lines.append(
            f"| {w['title']} | {w['interlock_ms']:.2f} | {w['dbos_ms']:.2f} | {w['ratio']:.2f} |"
        )
    lines += [
        "",
        "Both on SQLite files with the same durability: Interlock "
        f"journal_mode={s['interlock']['journal_mode']}, synchronous="
        f"{s['interlock']['synchronous']}; DBOS journal_mode={s['dbos']['journal_mode']},",
        f"synchronous={s['dbos']['synchronous']} (DBOS's own default is a rollback journal; the",
        "bench switches its file to WAL and sets synchronous=FULL on each of its connections).",
        f"Concurrency is each one's default: Interlock {s['interlock']['workers']}, DBOS"
        f" {s['dbos']['workers']}.",
        "Per step = (last step finished − first step started) / steps, from each one's own",
        "timestamps (Interlock's attempts, DBOS's operation_outputs). Nothing counts",
        "statements in the timed runs of either.",
        "",
    ]
    return lines


def _engine(sqlite: dict[str, Any] | None, pg: dict[str, Any] | None) -> list[str]:
    lines = ["## The engine against its storage floor", ""]
    for name, part in (("SQLite", sqlite), ("PostgreSQL", pg)):
        if part is None or "error" in part:
            lines += [f"{name}: " + ("not run yet." if part is None else "failed."), ""]
            continue
        lines += [f"{name}: `{part['command']}` (load {_load(part)})", ""]
        lines += [
            "| scenario [workers], or the baseline | steps (commits) per second |",
            "|---|---:|",
        ]
        lines += [f"| {row} | {rate:,.0f} |" for row, rate in part["rows"].items()]
        lines.append("")
    lines += [
        "The storage floor is the SQL one step sends today, through `sqlite3` with no",
        "engine around it; the raw commits are one single-row INSERT per durable commit",
        "(see bench/engine.py). On PostgreSQL the workers are `interlock worker` processes.",
        "",
    ]
    return lines


def _latency(sqlite: dict[str, Any] | None, pg: dict[str, Any] | None) -> list[str]:
    lines = [
        "## Wake-up: approval recorded → next step started",
        "",
        "| database | approvals | p50 ms | p99 ms | mean ms | max ms | command (load) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, part in (("SQLite", sqlite), ("PostgreSQL", pg)):
        if part is None or "error" in part:
            lines.append(
                f"| {name} | - | - | - | - | - | {'not run' if part is None else 'failed'} |"
            )
            continue
        lines.append(
            f"| {name} | {part['approvals']} | {part['p50_ms']:.1f} | {part['p99_ms']:.1f} |"
            f" {part['mean_ms']:.1f} | {part['max_ms']:.1f} | `{part['command']}`"
            f" ({_load(part)}) |"
        )
    lines += [
        "",
        "A real `interlock server` (4 worker threads); approvals through its API, one at a",
        "time; the gate's finished_at to the step's started_at, both the server's.",
        "",
    ]
    return lines


def _waiting(part: dict[str, Any]) -> list[str]:
    return [
        f"`{part['command']}` ({part['database']}, load {_load(part)})",
        "",
        "| | server RSS | server threads |",
        "|---|---:|---:|",
        f"| idle: its config of {part['releases']:,} services, no release |"
        f" {part['idle_rss_mb']:.0f} MB | {part['idle_threads']} |",
        f"| {part['releases']:,} releases waiting | {part['waiting_rss_mb']:.0f} MB |"
        f" {part['waiting_threads']} |",
        f"| after all finished | {part['after_rss_mb']:.0f} MB | - |",
        "",
        f"Making the {part['releases']:,} releases through the API and bringing them to their"
        f" gates took {part['create_seconds']:.0f} s. Then {part['clients']} clients approved"
        f" them all at once: the approvals were answered in {part['approve_seconds']:.1f} s,"
        f" and every release had finished {part['all_finished_seconds']:.1f} s after the first"
        f" approval was sent (first gate passed → last release finished, server timestamps:"
        f" {part['engine_window_seconds']:.1f} s).",
        "",
    ]


def _audit(part: dict[str, Any]) -> list[str]:
    return [
        f"`{part['command']}` ({part['database']}, load {_load(part)}): a valid chain of"
        f" {part['events']:,} events written by direct inserts in {part['build_seconds']:.0f} s.",
        "",
        "| verify path | seconds | events/s |",
        "|---|---:|---:|",
        f"| the server's (views.audit_verify, in process) | {part['verify_seconds']:.1f} |"
        f" {part['events_per_second']:,.0f} |",
        f"| GET /api/v1/audit/verify of a real server | {part['http_seconds']:.1f} |"
        f" {part['http_events_per_second']:,.0f} |",
        "| `interlock audit verify` (the CLI, 30 s client timeout) |"
        + (
            f" {part['cli_seconds']:.1f} | {part['cli_events_per_second']:,.0f} |"
            if part["cli_error"] is None
            else f" failed after {part['cli_seconds']:.0f} s | `{part['cli_error']}` |"
        ),
        "",
    ]


ALL_METRICS = "all metrics, "  # the rows of bench/metrics.py that time every metric
FIRST_SCRAPE = "/metrics, first scrape ever (sums history)"


def _run_title(run: dict[str, Any]) -> str:
    name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(run.get("database", ""), "?")
    return f"{name}, {run.get('deployments', 0):,}"


def _metrics(part: dict[str, Any]) -> list[str]:
    order = {"sqlite": 0, "postgresql": 1}
    part["runs"].sort(key=lambda r: (order.get(r.get("database", ""), 2), r.get("deployments", 0)))
    runs = [r for r in part["runs"] if "error" not in r]
    lines = []
    for run in part["runs"]:
        if "error" in run:
            lines += [f"`{run['command']}` failed:", "", "```", run["error"], "```", ""]
        else:
            built = run.get("build_seconds")
            lines.append(
                f"- {_run_title(run)} deployments ({run['production']:,} in production,"
                f" {run['incidents']:,} incidents, {run['nodes']:,} steps and gates):"
                f" `{run['command']}` (load {_load(run)}"
                + (f"; built in {built:.0f} s" if built else "; a kept database")
                + ")"
            )
    if not runs:
        return lines
    lines += [
        "",
        "Seconds, wall / CPU of the process (SQLite's work included, PostgreSQL's server not),",
        "best of each run's repeats; production, the whole two years unless said.",
        "",
        "| what | " + " | ".join(_run_title(r) for r in runs) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    whats: list[str] = []
    for run in runs:
        whats += [f["what"] for f in run["figures"] if f["what"] not in whats]
    for what in whats:
        cells = []
        for run in runs:
            figure = next((f for f in run["figures"] if f["what"] == what), None)
            cells.append(f"{figure['wall']:.3f} / {figure['cpu']:.3f}" if figure else "-")
        lines.append(f"| {what.strip()} | " + " | ".join(cells) + " |")
    lines += ["", "What each run found (the same size, the same synthetic history):", ""]
    for run in runs:
        first = next((f for f in run["figures"] if f["note"]), None)
        if first:
            lines.append(f"- {_run_title(run)}: {first['note']}")
    lines.append("")
    return lines


def _metrics_targets(found: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """Every metric over 10,000,000 deployments < 1 s; the first scrape < 1 s (SQLite, the
    largest run measured: judged at 10,000,000 and 1,000,000 deployments or more)."""
    part = found.get("metrics")
    runs = [r for r in (part or {}).get("runs", []) if "error" not in r]
    runs = [r for r in runs if r.get("database") == "sqlite"]
    if not runs:
        return [
            ("delivery metrics over 10,000,000 deployments < 1 s", "-", None),
            ("first /metrics scrape < 1 s", "-", None),
        ]
    largest = max(runs, key=lambda r: r["deployments"])
    size = f"{largest['deployments']:,} deployments"
    every = [f for f in largest["figures"] if f["what"].startswith(ALL_METRICS)]
    slowest = max((f["wall"] for f in every), default=None)
    scrape = next((f for f in largest["figures"] if f["what"] == FIRST_SCRAPE), None)
    return [
        (
            "delivery metrics over 10,000,000 deployments < 1 s",
            f"{slowest:.2f} s, the slowest ({size})" if slowest is not None else "-",
            slowest < 1.0 if slowest is not None and largest["deployments"] >= 10_000_000 else None,
        ),
        (
            "first /metrics scrape < 1 s",
            f"{scrape['wall']:.2f} s, {scrape['cpu']:.2f} CPU-s ({size})" if scrape else "-",
            scrape["wall"] < 1.0 if scrape and largest["deployments"] >= 1_000_000 else None,
        ),
    ]


def _targets(found: dict[str, dict[str, Any]]) -> list[str]:
    def ok(part: str) -> dict[str, Any] | None:
        value = found.get(part)
        return value if value is not None and "error" not in value else None

    rows: list[tuple[str, str, bool | None]] = []
    peers = ok("peers")
    for w in ("A", "B"):
        if peers:
            ratio = peers["workloads"][w]["ratio"]
            rows.append((f"Interlock / DBOS per step ≤ 0.5 on {w}", f"{ratio:.2f}", ratio <= 0.5))
        else:
            rows.append((f"Interlock / DBOS per step ≤ 0.5 on {w}", "-", None))
    engine = ok("engine-sqlite")
    rates = engine["rows"] if engine else {}
    if FLOOR_ROW in rates:
        for label, row in (("sequential", A_ROW), ("concurrent", B_ROW)):
            if row in rates:
                share = rates[row] / rates[FLOOR_ROW]
                rows.append(
                    (
                        f"engine steps/s ≥ 0.5 × storage floor ({label})",
                        f"{share:.2f}",
                        share >= 0.5,
                    )
                )
    else:
        rows.append(("engine steps/s ≥ 0.5 × storage floor", "-", None))
    pg = ok("engine-pg")
    pg_rates = pg["rows"] if pg else {}
    if B_ONE in pg_rates and B_FOUR in pg_rates:
        gain = pg_rates[B_FOUR] / pg_rates[B_ONE]
        rows.append(("PostgreSQL 1 → 4 worker processes ≥ 1.6× on B", f"{gain:.2f}×", gain >= 1.6))
    else:
        rows.append(("PostgreSQL 1 → 4 worker processes ≥ 1.6× on B", "-", None))
    for name, label in (("latency-sqlite", "SQLite"), ("latency-pg", "PostgreSQL")):
        part = ok(name)
        rows.append(
            (
                f"wake-up p50 ≤ 2 ms, p99 ≤ 10 ms ({label})",
                f"{part['p50_ms']:.1f} / {part['p99_ms']:.1f} ms" if part else "-",
                (part["p50_ms"] <= 2 and part["p99_ms"] <= 10) if part else None,
            )
        )
    waiting = ok("waiting")
    if waiting:
        size = f"{waiting['releases']:,} waiting"
        rows.append(
            (
                "10,000 waiting releases in ≤ 200 MB RSS",
                f"{waiting['waiting_rss_mb']:.0f} MB ({size})",
                waiting["waiting_rss_mb"] <= 200 if waiting["releases"] >= 10_000 else None,
            )
        )
        grown = waiting["waiting_threads"] - waiting["idle_threads"]
        rows.append(("no thread per waiting release", f"+{grown} threads ({size})", grown < 10))
    else:
        rows.append(("10,000 waiting releases in ≤ 200 MB RSS", "-", None))
    audit = ok("audit")
    rows.append(
        (
            "audit verify ≥ 500,000 events/s",
            f"{audit['events_per_second']:,.0f}/s" if audit else "-",
            audit["events_per_second"] >= 500_000 if audit else None,
        )
    )
    rows += _metrics_targets(found)
    lines = ["## Issue 19's targets", "", "| target | this run | |", "|---|---|---|"]
    lines += [f"| {t} | {v} | {_verdict(o)} |" for t, v, o in rows]
    lines += [
        "",
        "A size below the target's (e.g. fewer waiting releases) shows its figure but is not",
        "judged.",
    ]
    return lines

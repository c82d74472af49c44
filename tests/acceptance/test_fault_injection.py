"""Fault injection: releases on PostgreSQL while worker processes are killed mid-step with kill -9.

One ``interlock server`` (API and scheduler, no embedded workers) and three
``interlock worker`` processes share a PostgreSQL database. Forty releases of
as many services (so they run side by side and one that needs attention blocks
no other) go through staging and production. Every step calls a target in this
test that counts executions per idempotency key and per (deployment, step);
some steps are idempotent, some are not, some are HTTP calls and some shell
commands. Meanwhile a worker that holds a running step is killed with SIGKILL
every second or so (the scheduler's leader among them when it is a worker) and
started again, six times in all; until then the target answers slowly, so
that steps are running to be killed however fast the machine.

At the end: every release is finished or needs attention; no non-idempotent
step executed twice; every execution the target saw belongs to an attempt the
database recorded; the audit sequence has no gap and replays every step's
transitions; ``interlock audit verify`` passes. Set INTERLOCK_FAULT_SEED to
replay a run's kill schedule.

The test has no fixed deadline (a loaded machine runs it several times slower
than an idle one): it fails when nothing moves, no step ending and no release
settling, for ``STALLED`` seconds.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import defaultdict
from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import write_config
from tests.support.execution_target import ExecutionTarget
from tests.support.postgres import leader_of, pg_query
from tests.support.server import Server
from tests.support.workers import WorkerProcess

# A stall is caught by STALLED; this only bounds a run that keeps moving, very slowly.
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

RELEASES = 40
WORKERS = 3
CONCURRENCY = 4  # steps per worker process
KILLS = 6  # each of a worker that holds a running step at that moment
LEASE_TTL = "3"  # seconds: a killed worker's steps are recovered this soon
# Seconds with no step ending and no release settling before the test gives up: a
# killed worker's steps come back after the lease TTL, and the two other workers
# go on meanwhile; at a load of 25 a restart alone takes 20 s.
STALLED = 90.0
SETTLED = ("succeeded", "failed", "cancelled", "needs_attention")
# What moves (releases settled, attempts ended) and which workers hold a running step.
PROGRESS = (
    "SELECT (SELECT count(*) FROM releases WHERE state = ANY(%s)), "
    "(SELECT count(*) FROM attempts WHERE outcome IS NOT NULL)"
)
RUNNING_OWNERS = "SELECT DISTINCT lease_owner FROM nodes WHERE state = 'running'"


def _config(target: str) -> str:
    run = f"{target}/run?d={{{{ deployment }}}}&s={{{{ step }}}}&k={{{{ idempotency_key }}}}"
    curl = (
        'curl -sf --max-time 30 -X POST "{url}/run?d=$INTERLOCK_DEPLOYMENT&s=$INTERLOCK_STEP'
        '&k=$INTERLOCK_IDEMPOTENCY_KEY&idem={idem}"'
    )
    steps = f"""\
      - name: prepare
        http: {{method: POST, url: "{run}&idem=1"}}
        idempotent: true
      - name: switch
        run: {curl.format(url=target, idem=0)}
      - name: smoke
        run: {curl.format(url=target, idem=1)}
        idempotent: true
        environments: [production]
      - name: announce
        http: {{method: POST, url: "{run}&idem=0"}}
        environments: [production]
"""
    lines = [
        "version: 1",
        "defaults: {timeout: 60s}",
        "environments: [{name: staging}, {name: production, production: true}]",
        "services:",
    ]
    for n in range(RELEASES):
        lines.append(f"  svc{n:03d}:\n    deploy:\n{steps}")
    return "\n".join(lines) + "\n"


# Seconds the target takes to answer while kills are to come, then after the last.
# Slow enough that the work outlasts the six kills on a loaded machine (with 0.3 to
# 0.9 s, every release settled after two kills at a load of 20).
SLOW, QUICK = (1.0, 2.5), (0.05, 0.25)


@pytest.fixture
def target():
    found = ExecutionTarget(delay=SLOW).start()
    yield found
    found.stop()


def _holding(probe: psycopg.Connection, workers: list[WorkerProcess]) -> dict[str, int]:
    """Running steps per live worker (by instance) that holds any: a lease names its process."""
    owners = [row[0] or "" for row in probe.execute(RUNNING_OWNERS).fetchall()]
    held = {
        w.instance: sum(o.startswith(f"{w.instance}:") for o in owners)
        for w in workers
        if w.alive()
    }
    return {instance: count for instance, count in held.items() if count}


def test_kill_9_workers_again_and_again_loses_nothing_and_repeats_nothing_unsafe(
    project, pg_database_url, target, capsys
):
    url = pg_database_url
    seed = int(os.environ.get("INTERLOCK_FAULT_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    write_config(project, _config(target.url))
    server = Server(project, url)
    workers = [
        WorkerProcess(
            project, url, "--concurrency", str(CONCURRENCY), "--lease-ttl", LEASE_TTL, name=f"w{i}"
        )
        for i in range(WORKERS)
    ]
    kills = leader_kills = killed_steps = 0
    started = time.monotonic()
    probe = psycopg.connect(url, autocommit=True)
    try:
        # The workers start first, so one of them runs the scheduler and killing it
        # makes another process (a worker or the server) take over.
        for worker in workers:
            worker.start(wait=False)
        for worker in workers:
            worker.wait_ready()
        server.start("--workers", "0", "--lease-ttl", LEASE_TTL)
        token = (project / ".interlock" / "admin.token").read_text().strip()
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as api:
            for n in range(RELEASES):
                created = api.post(
                    "/api/v1/releases",
                    json={"services": [f"svc{n:03d}@1.{n}"], "reason": f"FAULT-{n}"},
                )
                assert created.status_code == 201, created.text
        progress = None
        moved = time.monotonic()
        next_kill = time.monotonic() + rng.uniform(0.5, 2.0)
        while True:
            now = time.monotonic()
            seen = probe.execute(PROGRESS, (list(SETTLED),)).fetchone()
            if seen != progress:
                progress, moved = seen, now
            settled = int(seen[0]) if seen else 0
            if settled == RELEASES or now - moved > STALLED:
                break
            if kills < KILLS and now >= next_kill:
                holding = _holding(probe, workers)
                if holding:
                    leader = leader_of(url)
                    victims = [w for w in workers if w.instance in holding]
                    leading = [w for w in victims if w.instance == leader]
                    victim = leading[0] if leading and not leader_kills else rng.choice(victims)
                    killed_steps += holding[victim.instance]
                    victim.kill()
                    kills += 1
                    leader_kills += victim.instance == leader
                    if rng.random() < 0.25:  # sometimes it stays dead a moment
                        time.sleep(rng.uniform(0.2, 1.5))
                    victim.start(wait=False)
                    next_kill = time.monotonic() + rng.uniform(0.3, 1.5)
                    if kills == KILLS:
                        target.delay = QUICK
            time.sleep(0.25)
        duration = time.monotonic() - started
        time.sleep(0.5)  # a killed worker's orphaned curl may still be on its way
        for worker in workers:
            worker.stop()
        verify = server.cli("audit", "verify") if settled == RELEASES else None
    finally:
        probe.close()
        for worker in workers:
            worker.stop()
        server.stop()

    assert settled == RELEASES, (
        f"nothing moved for {STALLED:.0f}s: {settled} of {RELEASES} releases settled "
        f"after {duration:.0f}s (seed {seed})\n" + _states(url)
    )
    # Every kill hit a worker in the middle of a step (the steps it held come back
    # through lease expiry: re-run if idempotent, needing attention if not).
    assert kills == KILLS and killed_steps >= KILLS, (kills, killed_steps, seed)
    report = _check(url, target)
    assert verify is not None and verify.returncode == 0, verify and verify.stdout + verify.stderr
    states = dict(pg_query(url, "SELECT state, count(*) FROM releases GROUP BY state"))
    with capsys.disabled():
        print(
            f"\nfault injection (seed {seed}): {RELEASES} releases in {duration:.0f}s, "
            f"{WORKERS} workers x {CONCURRENCY}, lease TTL {LEASE_TTL}s\n"
            f"  releases by final state: {json.dumps(states, sort_keys=True)}\n"
            f"  kill -9 mid-step: {kills} (of the scheduler's leader: {leader_kills}), "
            f"holding {killed_steps} running steps; worker starts: "
            f"{sum(w.starts for w in workers)}\n"
            f"  steps executed: {report['executions']}; attempts lost with their worker: "
            f"{report['lost']}\n"
            f"  re-runs of idempotent steps: {report['reruns']}; steps needing attention: "
            f"{report['attention']}; non-idempotent steps run twice: 0\n"
            f"  audit events: {report['events']}, gap-free; `interlock audit verify`: ok"
        )


def _states(url: str) -> str:
    rows = pg_query(url, "SELECT state, count(*) FROM releases GROUP BY state")
    return json.dumps(dict(rows))


def _check(url: str, target: ExecutionTarget) -> dict[str, int]:
    """Every invariant of the run; returns the counts to print."""
    # 1. No non-idempotent step executed twice; no attempt executed twice.
    by_step = target.by_step()
    twice = {k: n for k, n in by_step.items() if not k[2] and n > 1}
    assert not twice, f"non-idempotent steps executed more than once: {twice}"
    by_key = target.by_key()
    assert all(n == 1 for n in by_key.values()), [k for k, n in by_key.items() if n > 1]

    nodes = {
        row[0]: row
        for row in pg_query(
            url,
            "SELECT id, deployment_id, key, kind, idempotent, state, attempt, max_attempts "
            "FROM nodes",
        )
    }
    attempts = pg_query(url, "SELECT node_id, attempt, outcome FROM attempts")
    # 2. Every execution belongs to an attempt the database recorded (it was claimed
    #    and audited before it ran), and no attempt is left open.
    recorded = {f"{nodes[n][1]}:{nodes[n][2]}:{a}" for n, a, _ in attempts}
    unknown = set(by_key) - recorded
    assert not unknown, f"executions with no recorded attempt: {sorted(unknown)[:5]}"
    open_ = [(n, a) for n, a, outcome in attempts if outcome is None]
    assert not open_, f"attempts never finished: {open_[:5]}"
    # The database agrees: no non-idempotent step was ever started twice.
    restarted = [r for r in nodes.values() if not r[4] and r[6] > 1]
    assert not restarted, restarted[:5]

    # 3. The audit sequence is gap-free and its head is its last event.
    count, first, last = pg_query(url, "SELECT count(*), min(seq), max(seq) FROM audit_events")[0]
    assert (first, last) == (1, count), (first, last, count)
    assert pg_query(url, "SELECT seq FROM audit_head")[0][0] == last

    # 4. Replaying each step's audit events gives its stored state and attempts.
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for (body,) in pg_query(
        url, "SELECT body FROM audit_events WHERE object_type = 'step' ORDER BY seq"
    ):
        event = json.loads(body)
        events[int(event["object"]["id"])].append(event)
    started = {(n, a) for n, a, _ in attempts}
    audited_starts = set()
    for node_id, row in nodes.items():
        state, attempt = "ready", 0
        for event in events.get(node_id, []):
            action, data = event["action"], event["data"]
            if action == "step.started":
                assert state == "ready" and data["attempt"] == attempt + 1, (row, event)
                state, attempt = "running", data["attempt"]
                audited_starts.add((node_id, attempt))
            else:
                assert event["before"]["state"] == state, (row, event)
                assert data["attempt"] == attempt, (row, event)
                state = event["after"]["state"]
        if row[3] == "step" and attempt:
            assert (state, attempt) == (row[5], row[6]), (row, events.get(node_id))
    assert audited_starts == {s for s in started if nodes[s[0]][3] == "step"}

    # 5. Each release, deployment and step ends with the audit event of its state.
    for table, kind in (("releases", "release"), ("deployments", "deployment")):
        missing = pg_query(
            url,
            f"SELECT t.id, t.state FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM audit_events e "
            f"WHERE e.object_type = %s::text AND e.object_id = t.id::text "
            f"AND e.action = %s::text || '.' || t.state)",
            kind,
            kind,
        )
        assert not missing, f"{kind}s without the event of their state: {missing[:5]}"

    reruns = sum(n - 1 for (_, _, idem), n in by_step.items() if idem and n > 1)
    lost = sum(1 for _, _, outcome in attempts if outcome == "lost")
    attention = sum(1 for r in nodes.values() if r[5] == "needs_attention")
    return {
        "executions": sum(by_key.values()),
        "reruns": reruns,
        "lost": lost,
        "attention": attention,
        "events": int(count),
    }

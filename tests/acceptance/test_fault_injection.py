"""Fault injection: 200 releases on PostgreSQL while worker processes are killed with kill -9.

One ``interlock server`` (API and scheduler, no embedded workers) and three
``interlock worker`` processes share a PostgreSQL database. Two hundred
releases of as many services (so they run side by side and one that needs
attention blocks no other) go through staging and production. Every step
calls a target in this test that counts executions per idempotency key and
per (deployment, step); some steps are idempotent, some are not, some are
HTTP calls and some shell commands. Meanwhile a random worker is killed with
SIGKILL every second or two and started again, for as long as anything runs.

At the end: every release is finished or needs attention; no non-idempotent
step executed twice; every execution the target saw belongs to an attempt the
database recorded; the audit sequence has no gap and replays every step's
transitions; ``interlock audit verify`` passes. Set INTERLOCK_FAULT_SEED to
replay a run's kill schedule.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import defaultdict
from typing import Any

import httpx
import pytest

from tests.helpers import write_config
from tests.support.execution_target import ExecutionTarget
from tests.support.postgres import leader_of, pg_query
from tests.support.server import Server
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RELEASES = 200
WORKERS = 3
CONCURRENCY = 4  # steps per worker process
LEASE_TTL = "3"  # seconds: a killed worker's steps are recovered this soon
BUDGET = 150.0  # seconds for the releases to settle before the test gives up
SETTLED = ("succeeded", "failed", "cancelled", "needs_attention")


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


def _settled(url: str) -> int:
    placeholders = ", ".join(["%s"] * len(SETTLED))
    rows = pg_query(url, f"SELECT count(*) FROM releases WHERE state IN ({placeholders})", *SETTLED)
    return int(rows[0][0])


@pytest.fixture
def target():
    found = ExecutionTarget().start()
    yield found
    found.stop()


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
    kills = leader_kills = 0
    started = time.monotonic()
    try:
        # The workers start first, so one of them runs the scheduler and killing it
        # makes another process (a worker or the server) take over.
        for worker in workers:
            worker.start()
        server.start("--workers", "0", "--lease-ttl", LEASE_TTL)
        token = (project / ".interlock" / "admin.token").read_text().strip()
        api = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        ids = []
        next_kill = time.monotonic() + rng.uniform(0.5, 2.0)
        deadline = time.monotonic() + BUDGET
        while time.monotonic() < deadline:
            # Create the releases a few at a time, killing on schedule meanwhile.
            for _ in range(10):
                if len(ids) < RELEASES:
                    n = len(ids)
                    created = api.post(
                        "/api/v1/releases",
                        json={"services": [f"svc{n:03d}@1.{n}"], "reason": f"FAULT-{n}"},
                    )
                    assert created.status_code == 201, created.text
                    ids.append(created.json()["id"])
            if len(ids) == RELEASES and _settled(url) == RELEASES:
                break
            if time.monotonic() >= next_kill:
                victim = rng.choice(workers)
                if victim.alive():
                    if leader_of(url) == victim.instance:
                        leader_kills += 1
                    victim.kill()
                    kills += 1
                    if rng.random() < 0.25:  # sometimes it stays dead a moment
                        time.sleep(rng.uniform(0.2, 1.5))
                    victim.start(wait=False)
                next_kill = time.monotonic() + rng.uniform(0.5, 2.5)
            if len(ids) == RELEASES:
                time.sleep(0.2)
        duration = time.monotonic() - started
        settled = _settled(url)
        time.sleep(0.5)  # a killed worker's orphaned curl may still be on its way
        for worker in workers:
            worker.stop()
        verify = server.cli("audit", "verify")
        api.close()
    finally:
        for worker in workers:
            worker.stop()
        server.stop()

    assert settled == RELEASES, (
        f"only {settled} of {RELEASES} releases settled in {BUDGET:.0f}s (seed {seed})\n"
        + _states(url)
    )
    report = _check(url, target)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    states = dict(pg_query(url, "SELECT state, count(*) FROM releases GROUP BY state"))
    with capsys.disabled():
        print(
            f"\nfault injection (seed {seed}): {RELEASES} releases in {duration:.0f}s, "
            f"{WORKERS} workers x {CONCURRENCY}, lease TTL {LEASE_TTL}s\n"
            f"  releases by final state: {json.dumps(states, sort_keys=True)}\n"
            f"  kill -9: {kills} (of the scheduler's leader: {leader_kills}); "
            f"worker starts: {sum(w.starts for w in workers)}\n"
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

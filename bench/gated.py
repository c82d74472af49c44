"""Releases waiting at an approval gate of a real `interlock server`: what latency.py
and waiting.py share.

Each release is of its own service (``svcN``: one approval gate before one
no-op step, in the one environment ``prod``), made by ``admin`` through the
API and approved by ``alice`` (role ``approvers``) through the API. The figures
come from the database the server writes, read by this process.
"""

from __future__ import annotations

import math
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import engine as engine_bench  # noqa: E402  (bench/engine.py)
from sqlalchemy import func, select  # noqa: E402
from tests.support.server import Server  # noqa: E402

from interlock.storage.db import Database  # noqa: E402
from interlock.storage.schema import deployments, nodes, releases  # noqa: E402


def config_text(services: int) -> str:
    lines = [
        "version: 1",
        "environments:",
        "  - name: prod",
        "    gates:",
        "      before:",
        "        - approval: {rules: [{role: approvers}]}",
        "roles: {approvers: [alice]}",
        "permissions: [{role: approvers, allow: [approve]}]",
        "services:",
    ]
    for n in range(services):
        lines.append(f"  svc{n}: {{deploy: [{{name: go, uses: noop, idempotent: true}}]}}")
    return "\n".join(lines) + "\n"


class GatedServer:
    """An `interlock server` on a config of ``services`` gated services, and its clients."""

    def __init__(
        self,
        services: int,
        database_url: str | None = None,
        workers: int = 4,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="interlock-gated-"))
        (self.workdir / "interlock.yaml").write_text(config_text(services))
        self.server = Server(self.workdir, database_url, **(env or {}))
        self.workers = workers
        url = database_url or f"sqlite:///{self.workdir / '.interlock' / 'interlock.db'}"
        self.db = Database(url, pool_size=2)
        self.clients: dict[str, list[httpx.Client]] = {}
        self._local = threading.local()

    def start(self) -> GatedServer:
        self.server.start("--workers", str(self.workers), "--log-level", "warning")
        admin = (self.workdir / ".interlock" / "admin.token").read_text().strip()
        added = self.server.cli("user", "add", "alice", INTERLOCK_TOKEN=admin)
        token = self.server.cli(
            "token", "create", "--user", "alice", "--name", "bench", INTERLOCK_TOKEN=admin
        )
        if added.returncode or token.returncode:
            raise SystemExit(f"could not make the approver: {added.stderr}{token.stderr}")
        self.secrets = {"admin": admin, "alice": token.stdout.strip()}
        return self

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid

    def client(self, user: str) -> httpx.Client:
        """This thread's client for ``user`` (httpx clients are not shared between threads)."""
        found: httpx.Client | None = getattr(self._local, user, None)
        if found is None:
            found = httpx.Client(
                base_url=f"{self.server.url}/api/v1",
                headers={"authorization": f"Bearer {self.secrets[user]}"},
                timeout=120,
            )
            setattr(self._local, user, found)
            self.clients.setdefault(user, []).append(found)
        return found

    def create(self, first: int, count: int, clients: int = 4) -> list[int]:
        """Releases of svc{first}..svc{first+count-1}, made by ``clients`` at once."""

        def one(n: int) -> int:
            answer = self.client("admin").post(
                "/releases", json={"services": [f"svc{n}@1.0"], "reason": "bench"}
            )
            if answer.status_code != 201:
                raise SystemExit(f"creating a release: {answer.status_code} {answer.text}")
            return int(answer.json()["id"])

        with ThreadPoolExecutor(clients) as pool:
            return list(pool.map(one, range(first, first + count)))

    def approve(self, release_id: int) -> None:
        answer = self.client("alice").post(
            f"/releases/{release_id}/approvals", json={"decision": "approve"}
        )
        if answer.status_code != 201:
            raise SystemExit(f"approving {release_id}: {answer.status_code} {answer.text}")

    def waiting(self, ids: list[int]) -> int:
        """How many of these releases wait at their approval gate now."""
        query = (
            select(func.count())
            .select_from(nodes.join(deployments, deployments.c.id == nodes.c.deployment_id))
            .where(
                deployments.c.release_id.in_(ids),
                nodes.c.executor == "approval",
                nodes.c.state == "waiting",
            )
        )
        with self.db.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def unfinished(self, ids: list[int]) -> int:
        """How many of these releases have not finished yet."""
        return engine_bench._pending(self.db, ids)

    def wait_until(self, what: str, done: Any, timeout: float, pause: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise SystemExit(f"gave up after {timeout:.0f} s waiting for {what}")
            time.sleep(pause)

    def wake_ups(self, ids: list[int]) -> list[float]:
        """Per release: its gate's finish (the approval) -> its step's start, in seconds."""
        gate = nodes.alias("gate")
        step = nodes.alias("step")
        query = (
            select(gate.c.finished_at, step.c.started_at)
            .select_from(
                deployments.join(gate, gate.c.deployment_id == deployments.c.id).join(
                    step, step.c.deployment_id == deployments.c.id
                )
            )
            .where(
                deployments.c.release_id.in_(ids),
                gate.c.executor == "approval",
                step.c.executor == "noop",
            )
        )
        with self.db.engine.connect() as conn:
            rows = conn.execute(query).all()
        if len(rows) != len(ids) or any(r[0] is None or r[1] is None for r in rows):
            raise SystemExit("a release has no finished gate or no started step")
        return [(started - finished).total_seconds() for finished, started in rows]

    def window(self, ids: list[int]) -> float:
        """First gate finished -> last release finished, in seconds."""
        query = (
            select(func.min(nodes.c.finished_at), func.max(releases.c.finished_at))
            .select_from(
                releases.join(deployments, deployments.c.release_id == releases.c.id).join(
                    nodes, nodes.c.deployment_id == deployments.c.id
                )
            )
            .where(releases.c.id.in_(ids), nodes.c.executor == "approval")
        )
        with self.db.engine.connect() as conn:
            first, last = conn.execute(query).one()
        return float((last - first).total_seconds())

    def stop(self) -> None:
        for clients in self.clients.values():
            for client in clients:
                client.close()
        self.server.stop()
        self.db.dispose()


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` 0.99 for p99)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered))))
    return ordered[rank - 1]

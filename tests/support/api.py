"""A real API server (uvicorn on 127.0.0.1) around a test engine, and clients per user."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from interlock.api.app import create_app
from interlock.engine.configs import Configs
from interlock.engine.identity import Identity
from interlock.engine.runtime import Runtime
from tests.helpers import wait_for
from tests.support.server import free_port


class Api:
    """``create_app`` served by uvicorn in a thread, with workers, and per-user clients."""

    def __init__(
        self,
        engine: Any,
        configs: Configs,
        config_path: Path | None = None,
        workers: int = 2,
        **app_options: Any,
    ) -> None:
        self.engine = engine
        self.configs = configs
        self.identity = Identity(engine)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(engine, configs, config_path, **app_options)
        self.app = app
        self.state = app.state.interlock
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.runtime = Runtime(engine, workers=workers) if workers else None
        self.clients: list[httpx.Client] = []
        self.secrets: dict[str, str] = {}

    def start(self) -> Api:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.runtime is not None:
            self.runtime.start()
        return self

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.runtime is not None:
            self.runtime.stop(drain=2)
        self.server.should_exit = True
        self.thread.join(10)
        if self.state.watch.detach is not None:  # its commit hook on the test's database
            self.state.watch.detach()

    def user(
        self,
        name: str,
        *,
        kind: str = "user",
        roles: Iterable[str] = (),
        teams: Iterable[str] = (),
        expires_in: float | None = None,
    ) -> httpx.Client:
        """A client authenticated as ``name`` (created on first use, with API memberships)."""
        with self.engine.db.read() as tx:
            exists = tx.get_user(name) is not None
        if not exists:
            self.identity.add_user(actor="test", name=name, kind=kind)
        for role in roles:
            self.identity.set_membership(
                actor="test", kind="role", group=role, user=name, member=True
            )
        for team in teams:
            self.identity.set_membership(
                actor="test", kind="team", group=team, user=name, member=True
            )
        _, secret = self.identity.create_token(
            actor="test", user=name, name="test", expires_in=expires_in
        )
        self.secrets[name] = secret
        return self.client(secret)

    def client(self, secret: str | None) -> httpx.Client:
        headers = {"authorization": f"Bearer {secret}"} if secret else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self.clients.append(client)
        return client

    def admin(self) -> httpx.Client:
        return self.user("root", roles=["admin"])


@contextmanager
def served(pilot: Any, config: str, *, workers: int = 0) -> Iterator[Api]:
    """An :class:`Api` on ``pilot``'s engine with ``config`` loaded, stopped afterwards."""
    api = Api(pilot.engine, pilot.configs, pilot.config(config), workers=workers).start()
    try:
        yield api
    finally:
        api.stop()


def waiting_at_gate(client: httpx.Client, ref: str, reason: str) -> int:
    """Release ``ref`` through ``client``; its id once an approval gate of it waits."""
    made = client.post("/api/v1/releases", json={"services": [ref], "reason": reason})
    assert made.status_code == 201, made.text
    release_id = int(made.json()["id"])

    def gate_waits() -> bool:
        found = client.get(f"/api/v1/releases/{release_id}").json()
        return any(g["state"] == "waiting" for g in found["waiting_on"])

    wait_for(gate_waits, message=f"release {release_id} to wait for approval")
    return release_id

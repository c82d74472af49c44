"""The API around a test engine, in process, and clients per user.

Requests go straight to the ASGI app (httpx's ``ASGITransport``, called on one
event loop for the whole :class:`Api`, as one server has): no port, no server
thread to start and stop. Where a socket is the point (the CLI or a subprocess
given ``api.url``, raw socket streams), reading :attr:`Api.url` or :attr:`Api.port`
starts uvicorn on 127.0.0.1 for the same app, as the test used to by default.

A *driven* :class:`Api` has no worker or scheduler threads: after each request that
may change something (any method but GET and HEAD) the engine runs to idle in the
calling thread (:class:`EngineDriver`), so what the request started is done when its
answer arrives (over :attr:`Api.url` too), and a test reads the outcome instead of
polling for it. Work started outside the API (a scheduled start, a clock moved on)
runs at :meth:`Api.settle`.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio.from_thread
import anyio.to_thread
import httpx
import uvicorn

from interlock.api.app import create_app
from interlock.engine.configs import Configs
from interlock.engine.identity import Identity
from interlock.engine.runtime import Runtime
from tests.helpers import wait_for
from tests.support.driver import EngineDriver

# Requests that change nothing: a driven Api runs no engine work after them.
READS = frozenset({"GET", "HEAD"})


class InProcess(httpx.BaseTransport):
    """A synchronous httpx transport that hands each request to ``app`` on ``portal``'s loop."""

    def __init__(
        self,
        app: Any,
        portal: anyio.from_thread.BlockingPortal,
        after: Callable[[], object] | None = None,
    ) -> None:
        # A 500 is an answer, as over a socket (the app logs the error it raised).
        self._asgi = httpx.ASGITransport(
            app=app, raise_app_exceptions=False, client=("127.0.0.1", 50000)
        )
        self._portal = portal
        self._after = after  # run after each answer to a request that may change things

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the whole body (also of a chunked upload), as a stream both ways

        async def answer() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, stream=httpx.ByteStream(body)
            )

        response = self._portal.call(answer)
        if self._after is not None and request.method not in READS:
            self._after()
        return response


class Settling:
    """The app behind a driven :class:`Api`'s socket: a change's answer goes out once the
    engine ran to idle, as :class:`InProcess` does for in-process requests."""

    def __init__(self, app: Any, settle: Callable[[], object]) -> None:
        self.app, self.settle = app, settle

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                await anyio.to_thread.run_sync(self.settle)
            await send(message)

        await self.app(scope, receive, sending)


class Api:
    """``create_app`` called in process, with workers, per-user clients; a socket on demand."""

    def __init__(
        self,
        engine: Any,
        configs: Configs,
        config_path: Path | None = None,
        workers: int = 2,
        *,
        driven: bool = False,
        **app_options: Any,
    ) -> None:
        self.engine = engine
        self.configs = configs
        self.identity = Identity(engine)
        app = create_app(engine, configs, config_path, **app_options)
        self.app = app
        self.state = app.state.interlock
        # Driven: the engine runs in the test thread after each change, no threads.
        self.driver = EngineDriver(engine) if driven else None
        self.runtime = Runtime(engine, workers=workers) if workers and not driven else None
        self.clients: list[httpx.Client] = []
        self.secrets: dict[str, str] = {}
        self._stack = ExitStack()
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def start(self) -> Api:
        # One event loop serves every in-process request (the long-poll's waiters share it).
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        if self.runtime is not None:
            self.runtime.start()
        return self

    def settle(self) -> int:
        """Run the engine to idle now (a driven Api); the number of nodes run."""
        assert self.driver is not None, "settle() needs Api(..., driven=True)"
        return self.driver.run_until_idle()

    @property
    def port(self) -> int:
        """The port of a real uvicorn server for this app (started on first use)."""
        if self._port is None:
            self._serve()
        assert self._port is not None
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))  # bound here: no other process takes the port
        app = Settling(self.app, self.settle) if self.driver else self.app
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        wait_for(lambda: server.started, 10, 0.01, message="the API server to start")
        self._server, self._thread = server, thread
        self._port = int(listener.getsockname()[1])

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.runtime is not None:
            self.runtime.stop(drain=2)
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._stack.close()
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
        """A client whose requests the app answers in process (as a server would)."""
        assert self._portal is not None, "start() the Api first"
        headers = {"authorization": f"Bearer {secret}"} if secret else {}
        client = httpx.Client(
            base_url="http://127.0.0.1",
            headers=headers,
            timeout=30,
            transport=InProcess(self.app, self._portal, self.settle if self.driver else None),
        )
        self.clients.append(client)
        return client

    def admin(self) -> httpx.Client:
        return self.user("root", roles=["admin"])


@contextmanager
def served(pilot: Any, config: str, *, workers: int = 0, driven: bool = False) -> Iterator[Api]:
    """An :class:`Api` on ``pilot``'s engine with ``config`` loaded, stopped afterwards."""
    api = Api(
        pilot.engine, pilot.configs, pilot.config(config), workers=workers, driven=driven
    ).start()
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

"""Cancelling: running steps stop (shell and http), every node's move is audited,
and a cancelled deployment never records its service as deployed."""

from __future__ import annotations

import json
import select
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from interlock.domain.states import DeploymentState, NodeState, ReleaseState
from interlock.engine import views
from interlock.engine.releases import cancel_release
from interlock.engine.steps import claim, complete, prepare
from interlock.executors.base import LogSink, StepContext, StepResult
from interlock.executors.http import HttpExecutor
from tests.helpers import running, serving, wait_for, wait_release_end


@dataclass
class SlowServer:
    """A real HTTP server that answers after ``?sleep=N`` seconds, or notes the client left."""

    url: str = ""
    arrived: threading.Event = field(default_factory=threading.Event)
    answered: list[str] = field(default_factory=list)
    hung_up: list[float] = field(default_factory=list)  # when a waiting client went away


@pytest.fixture
def slow_server() -> Iterator[SlowServer]:
    found = SlowServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            delay = float(query.get("sleep", ["0"])[0])
            trickle = float(query.get("trickle", ["0"])[0])
            found.arrived.set()
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                readable, _, _ = select.select([self.connection], [], [], 0.05)
                if readable and not self.connection.recv(1, 0):
                    found.hung_up.append(time.monotonic())
                    return
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("content-length", str(len(body) if not trickle else 1000))
            self.end_headers()
            if trickle:  # a byte at a time: each read is quick, the whole answer is not
                try:
                    for _ in range(1000):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(trickle)
                except OSError:
                    found.hung_up.append(time.monotonic())
                return
            self.wfile.write(body)
            found.answered.append(self.path)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as found.url:
        yield found


def _ctx(timeout: float = 60.0) -> StepContext:
    return StepContext(variables={}, environ={}, cwd=".", timeout=timeout, log=LogSink())


def test_the_http_executor_abandons_its_request_when_cancelled(slow_server):
    ctx = _ctx()
    threading.Timer(0.5, ctx.cancelled.set).start()
    begun = time.monotonic()
    result = HttpExecutor().run(
        {"http": {"method": "GET", "url": f"{slow_server.url}/x?sleep=30"}}, ctx
    )
    assert time.monotonic() - begun < 15  # not the server's 30 s (a loaded machine is slow)
    assert not result.ok and result.error is not None and "cancelled" in result.error
    # The connection is closed, so the server sees the client go.
    wait_for(lambda: slow_server.hung_up, 30, message="the server to see the client leave")
    assert slow_server.answered == []


def test_the_http_timeout_bounds_the_whole_request(slow_server):
    """A server that trickles its answer cannot stretch a step past its timeout."""
    begun = time.monotonic()
    result = HttpExecutor().run(
        {"http": {"method": "GET", "url": f"{slow_server.url}/x?trickle=0.1"}}, _ctx(timeout=1.0)
    )
    assert time.monotonic() - begun < 3
    assert not result.ok and result.error == "timed out after 1s"


def test_a_server_that_never_answers_times_out_with_a_mark_in_the_log(slow_server):
    ctx = _ctx(timeout=1.0)
    result = HttpExecutor().run(
        {"http": {"method": "GET", "url": f"{slow_server.url}/x?sleep=30"}}, ctx
    )
    assert not result.ok and result.error == "timed out after 1s"
    assert "[interlock: timed out after 1s" in ctx.log.text()


def _body(event: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(event.body)
    return found


def _inventory(pilot) -> dict[tuple[str, str], str]:
    with pilot.read() as tx:
        return {(e.service, e.environment): e.version for e in tx.all_inventory()}


def test_cancel_stops_a_slow_http_step_and_nothing_is_deployed(pilot, slow_server):
    pilot.config(f"""\
        version: 1
        environments: [{{name: dev}}]
        services:
          svc:
            deploy:
              - name: call
                http: {{method: GET, url: "{slow_server.url}/x?sleep=30"}}
                timeout: 60s
        """)
    with running(pilot.engine):
        release = pilot.release("svc@1.0.0")
        assert slow_server.arrived.wait(10)
        begun = time.monotonic()
        cancel_release(pilot.engine, release.id, actor="bob", reason="wrong version")
        done = wait_release_end(pilot.engine, release.id)
        view = wait_for(
            lambda: (
                (v := views.release_view(pilot.engine, release.id))
                and v.deployments[0].deployment.finished_at
                and v
            ),
            10,
            message="the deployment to end",
        )
        took = time.monotonic() - begun
    assert took < 5, f"the deployment took {took:.1f}s to end after the cancel"
    assert done.state is ReleaseState.CANCELLED
    assert view.deployments[0].deployment.state is DeploymentState.CANCELLED
    [step] = view.deployments[0].nodes
    assert step.state is NodeState.CANCELLED
    assert slow_server.answered == []
    actions = [e.action for e in views.audit_events(pilot.engine, limit=1000)]
    assert "service.deployed" not in actions and "step.succeeded" not in actions
    assert _inventory(pilot) == {}
    assert views.audit_verify(pilot.engine).ok


def test_a_step_that_succeeds_after_the_cancel_is_recorded_cancelled(pilot):
    """The executor reports success after the cancel: the attempt says so, the step and
    the deployment end cancelled, and the inventory keeps what ran before."""
    pilot.config("""\
        version: 1
        environments: [{name: dev}]
        services:
          svc:
            deploy:
              - {name: roll-out, run: "true"}
        """)
    engine = pilot.engine
    with running(engine):
        first = wait_release_end(engine, pilot.release("svc@1.0.0").id)
    assert first.state is ReleaseState.SUCCEEDED
    release = pilot.release("svc@2.0.0")
    claimed = engine.db.run(lambda tx: claim(tx, engine, "test-worker"))
    assert claimed is not None
    job = prepare(engine, *claimed)
    cancel_release(engine, release.id, actor="bob", reason="wrong version")
    engine.db.run(lambda tx: complete(tx, engine, job, StepResult(ok=True, exit_code=0)))

    view = views.release_view(engine, release.id)
    deployment = view.deployments[0]
    assert deployment.deployment.state is DeploymentState.CANCELLED
    [step] = deployment.nodes
    assert step.state is NodeState.CANCELLED
    _, attempts = views.step(engine, step.id)
    assert [a.outcome for a in attempts] == ["succeeded"]  # what really happened
    events = views.audit_events(engine, object_type="step", object_id=str(step.id))
    assert [e.action for e in events] == ["step.started", "step.cancelled"]
    assert _body(events[-1])["data"]["outcome"] == "succeeded"
    deployed = views.audit_events(engine, actions=["service.deployed"])
    assert [_body(e)["data"]["release"] for e in deployed] == [first.id]
    assert _inventory(pilot) == {("svc", "dev"): "1.0.0"}
    assert views.audit_verify(engine).ok


def test_cancel_audits_every_step_it_stops(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: dev, on_failure: pause}]
        services:
          svc:
            deploy:
              - {name: broken, run: "exit 3"}
              - {name: after, run: "true"}
              - {name: later, run: "true"}
        """)
    with running(pilot.engine):
        release = pilot.release("svc@1.0.0")
        wait_for(
            lambda: (
                views.release_view(pilot.engine, release.id).release.state
                is ReleaseState.NEEDS_ATTENTION
            ),
            message="the release to need attention",
        )
        cancel_release(pilot.engine, release.id, actor="bob", reason="give up")
        done = wait_release_end(pilot.engine, release.id)
    assert done.state is ReleaseState.CANCELLED
    nodes = {n.key: n for n in views.release_view(pilot.engine, release.id).deployments[0].nodes}
    assert {k: n.state for k, n in nodes.items()} == {
        "svc/broken": NodeState.CANCELLED,
        "svc/after": NodeState.CANCELLED,
        "svc/later": NodeState.CANCELLED,
    }
    for key, before in [
        ("svc/broken", "needs_attention"),
        ("svc/after", "pending"),
        ("svc/later", "pending"),
    ]:
        events = views.audit_events(pilot.engine, object_type="step", object_id=str(nodes[key].id))
        assert events, f"{key} has no audit event"
        last = events[-1]
        assert last.action == "step.cancelled", key
        assert last.actor == "bob"
        assert _body(last)["before"] == {"state": before}
        assert _body(last)["after"] == {"state": "cancelled"}
    assert views.audit_verify(pilot.engine).ok


def test_steps_skipped_after_a_failure_are_audited(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: dev}]
        services:
          svc:
            deploy:
              - {name: broken, run: "exit 3"}
              - {name: after, run: "true"}
        """)
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, pilot.release("svc@1.0.0").id)
    assert done.state is ReleaseState.FAILED
    nodes = {n.key: n for n in views.release_view(pilot.engine, done.id).deployments[0].nodes}
    assert nodes["svc/after"].state is NodeState.SKIPPED
    events = views.audit_events(
        pilot.engine, object_type="step", object_id=str(nodes["svc/after"].id)
    )
    assert [e.action for e in events] == ["step.skipped"]
    assert _body(events[0])["before"] == {"state": "pending"}
    assert "svc/broken" in (_body(events[0])["reason"] or "")
    assert views.audit_verify(pilot.engine).ok

"""Webhooks out: the audit log is the outbox; delivery is signed, in order, at least once."""

from __future__ import annotations

import time
from typing import Any

import pytest

from interlock.domain.records import Item
from interlock.engine import artifacts, views
from interlock.engine.core import Engine
from interlock.engine.events import dispatcher
from interlock.engine.releases import create_release
from interlock.storage.db import Database
from tests.conftest import FAST
from tests.helpers import running, wait_release_end
from tests.integration.events.conftest import SECRET
from tests.support.external import schema_errors

DIGEST = "sha256:" + "4d" * 32

BASE = """\
version: 1
environments: [{name: staging}, {name: production, production: true}]
services:
  api:
    deploy:
      - {name: migrate, run: "true"}
      - {name: roll-out, run: "true"}
notifications:
  public_url: https://interlock.example.com
  webhooks:
"""


def hook(name: str, url: str, **options: str) -> str:
    backoff = options.pop("backoff", "50ms")
    lines = [f"    - name: {name}", f"      url: {url}", f"      backoff: {backoff}"]
    lines.append("      secret: ${HOOK_SECRET}")
    lines += [f"      {key}: {value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


RELEASE_CDEVENTS = [
    "pipelinerun.queued",
    "pipelinerun.started",
    "taskrun.started",
    "taskrun.finished",
    "taskrun.started",
    "taskrun.finished",
]


def expected_types(first_in_env: bool = True) -> list[str]:
    deployed = "service.deployed" if first_in_env else "service.upgraded"
    one_env = RELEASE_CDEVENTS + [deployed, "pipelinerun.finished"]
    return [f"dev.cdevents.{t}.0.3.0" for t in one_env + one_env]


def short(deliveries: list[Any]) -> list[str]:
    return [d.headers["x-interlock-event"] for d in deliveries]


def release(pilot: Any, ref: str) -> Any:
    done = wait_release_end(pilot.engine, pilot.release(ref).id)
    assert done.state.value == "succeeded"
    return done


def test_a_release_arrives_signed_in_order_and_valid(pilot, receivers, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    bus, copy, services = receivers(), receivers(), receivers()
    pilot.config(
        BASE
        + hook("cd-bus", bus.url)
        + hook("audit-copy", copy.url, format="interlock")
        + hook("services", services.url, events='["service.*"]')
    )
    artifacts.register(pilot.engine, actor="ci", service="api", version="1.4.2", digest=DIGEST)
    with running(pilot.engine):
        release(pilot, "api@1.4.2")
        types = ["dev.cdevents.artifact.published.0.3.0"] + expected_types()
        got = bus.wait(lambda d: len(d) >= len(types), what="the release's CDEvents")
        with pilot.read() as tx:
            loaded = tx.config_loaded_seq()
            head = tx.audit_head().seq
        everything = copy.wait(lambda d: d and d[-1].seq >= head, what="every audit event")
        only = services.wait(lambda d: len(d) >= 2, what="the service events")
        time.sleep(0.3)  # nothing more may come
    assert short(bus.deliveries) == types  # in order, once each, nothing else
    for delivery in got:
        event = delivery.json
        assert delivery.signature_ok, delivery.headers
        assert schema_errors(event) == [], event
        assert delivery.headers["content-type"] == "application/cdevents+json"
        assert delivery.headers["ce-id"] == event["context"]["id"] == delivery.id
        assert delivery.headers["ce-type"] == event["context"]["type"]
        assert delivery.headers["ce-source"] == "https://interlock.example.com"
    assert [d.seq for d in got] == sorted({d.seq for d in got})
    published = got[0].json
    assert published["subject"]["id"] == f"pkg:generic/api@1.4.2?checksum={DIGEST}"
    deployed = [d.json for d in got if "service.deployed" in d.json["context"]["type"]]
    assert [e["subject"]["content"]["environment"]["id"] for e in deployed] == [
        "staging",
        "production",
    ]
    # The interlock format: every audit event after the config was loaded, without a gap.
    assert [d.seq for d in copy.deliveries] == list(range(loaded + 1, head + 1))
    assert all(d.signature_ok for d in everything)
    assert [d.json["action"] for d in everything][:2] == ["artifact.registered", "release.created"]
    assert everything[0].json["hash"] == everything[0].id
    assert short(only) == ["dev.cdevents.service.deployed.0.3.0"] * 2


def test_a_failing_receiver_gets_every_event_in_order_once_it_recovers(
    pilot, receivers, monkeypatch
):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    bus = receivers()
    pilot.config(BASE + hook("cd-bus", bus.url))
    artifacts.register(pilot.engine, actor="ci", service="api", version="1.4.2", digest=DIGEST)
    with running(pilot.engine):
        bus.wait(lambda d: len(d) == 1, what="artifact.published")
        bus.failing = True  # 500 for everything from now on
        release(pilot, "api@1.4.2")
        deadline = time.monotonic() + 10
        while len(bus.deliveries) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        status = dispatcher.webhook_status(
            pilot.engine, pilot.configs.active().config.notifications
        )
        bus.failing = False
        types = ["dev.cdevents.artifact.published.0.3.0"] + expected_types()
        got = bus.wait(lambda d: len(d) >= len(types), what="every event after recovery")
        time.sleep(0.3)
    failed = [d for d in bus.deliveries if d.status >= 300]
    assert len(failed) >= 3, "the receiver should have been retried"
    # Only the event at the head of the queue was tried while failing; it came again.
    assert {d.id for d in failed} == {got[1].id}
    assert short(got) == types  # every event, in order, no gap, each accepted once
    assert len({d.id for d in got}) == len(got)
    assert status[0]["failures"] >= 1 and "HTTP 500" in status[0]["last_error"]
    after = dispatcher.webhook_status(pilot.engine, pilot.configs.active().config.notifications)
    assert after[0]["failures"] == 0 and after[0]["pending"] == 0
    assert after[0]["last_success_at"] is not None


def test_the_cursor_survives_a_restart_and_a_crash_loses_nothing(
    pilot, receivers, monkeypatch, database_url
):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    bus = receivers()
    pilot.config(BASE + hook("cd-bus", bus.url))
    with running(pilot.engine):
        release(pilot, "api@1.0.0")
        first = bus.wait(lambda d: len(d) == len(expected_types()), what="release 1")
    # A crash after sending but before the cursor was stored: the events come again.
    engine = Engine(Database(database_url), settings=FAST)
    try:
        configs = engine.configs
        done = create_release(
            engine, configs, actor="alice", items=[Item("api", "2.0.0")], reason="T-2"
        )
        notifications = configs.active().config.notifications
        with running(engine, scheduler=False):
            wait_release_end(engine, done.id)
        with monkeypatch.context() as patch:

            def crash(*args: Any) -> None:
                raise RuntimeError("the process died here")

            patch.setattr(dispatcher, "_record", crash)
            with pytest.raises(RuntimeError):
                dispatcher.deliver_round(engine, notifications.webhooks[0], notifications)
        sent_twice = bus.accepted()[len(first) :]
        assert len(sent_twice) == len(expected_types())
        with engine.db.read() as tx:  # not moved past what was sent before the crash
            assert first[-1].seq <= tx.webhook_cursor("cd-bus").delivered_seq < sent_twice[0].seq
        # The restarted engine's scheduler picks up where the cursor says.
        with running(engine):
            again = bus.wait(lambda d: len(d) == len(first) + 2 * len(sent_twice), what="resend")
            time.sleep(0.3)
        dispatcher.drain(engine)
    finally:
        engine.db.dispose()
    assert [d.id for d in again[len(first) + len(sent_twice) :]] == [d.id for d in sent_twice]
    assert len(bus.accepted()) == len(again)  # release 1 was never sent again
    assert short(sent_twice) == expected_types(first_in_env=False)
    with pilot.read() as tx:
        assert tx.webhook_cursor("cd-bus").delivered_seq >= again[-1].seq


def test_a_hanging_receiver_delays_neither_the_tick_nor_other_webhooks(
    pilot, receivers, monkeypatch
):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    slow, bus = receivers(delay=1.5), receivers()
    pilot.config(BASE + hook("slow", slow.url, timeout="200ms") + hook("cd-bus", bus.url))
    release_id = pilot.release("api@1.0.0").id
    with running(pilot.engine, scheduler=False):
        wait_release_end(pilot.engine, release_id)
    started = time.monotonic()
    dispatcher.deliver_webhooks(pilot.engine)  # the scheduler task: starts rounds, returns
    assert time.monotonic() - started < 0.5
    with running(pilot.engine):
        bus.wait(lambda d: len(d) == len(expected_types()), timeout=5, what="the fast webhook")
    dispatcher.drain(pilot.engine)
    status = {
        s["name"]: s
        for s in dispatcher.webhook_status(
            pilot.engine, pilot.configs.active().config.notifications
        )
    }
    assert status["cd-bus"]["pending"] == 0
    assert "Timeout" in (status["slow"]["last_error"] or "")
    assert status["slow"]["pending"] > 0


def test_a_missing_secret_sends_nothing_and_says_which_variable(pilot, receivers, monkeypatch):
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    bus = receivers()
    pilot.config(BASE + hook("cd-bus", bus.url))
    release_id = pilot.release("api@1.0.0").id
    with running(pilot.engine):
        wait_release_end(pilot.engine, release_id)
        notifications = pilot.configs.active().config.notifications
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            status = dispatcher.webhook_status(pilot.engine, notifications)[0]
            if status["last_error"]:
                break
            time.sleep(0.05)
    assert bus.deliveries == []
    assert "HOOK_SECRET is not set" in status["last_error"]
    assert status["signed"] is True and status["secret_set"] is False
    assert status["pending"] == status["head"] - status["cursor"] > 0
    assert views.audit_verify(pilot.engine).ok  # deliveries write no audit events


def test_delivery_status_over_the_api_and_the_cli(pilot, receivers, monkeypatch):
    import json

    from click.testing import CliRunner

    from interlock.cli.main import cli
    from tests.support.api import Api

    monkeypatch.setenv("HOOK_SECRET", SECRET)
    bus = receivers()
    permissions = "permissions:\n  - {user: aud, allow: [audit.read]}\n"
    path = pilot.config(
        BASE.replace("notifications:", permissions + "notifications:")
        + hook("cd-bus", bus.url)
        + hook("down", "http://127.0.0.1:9/nothing-listens")
    )
    api = Api(pilot.engine, pilot.configs, path, workers=1).start()
    try:
        auditor, nobody = api.user("aud"), api.user("nobody")
        artifacts.register(pilot.engine, actor="ci", service="api", version="1.0.0", digest=DIGEST)
        bus.wait(lambda d: len(d) == 1, what="artifact.published")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = {w["name"]: w for w in auditor.get("/api/v1/webhooks").json()}
            if found["down"]["last_error"] and found["cd-bus"]["pending"] == 0:
                break
            time.sleep(0.05)
        assert found["cd-bus"]["cursor"] == found["cd-bus"]["head"]
        assert found["cd-bus"]["last_success_at"] and not found["cd-bus"]["last_error"]
        assert found["down"]["pending"] > 0 and found["down"]["failures"] >= 1
        assert "ConnectError" in found["down"]["last_error"]
        assert found["down"]["url"] == "http://127.0.0.1:9/nothing-listens"
        assert nobody.get("/api/v1/webhooks").status_code == 403
        env = {"INTERLOCK_URL": api.url, "INTERLOCK_TOKEN": api.secrets["aud"]}
        listed = CliRunner().invoke(cli, ["webhook", "list", "--format", "json"], env=env)
        assert listed.exit_code == 0, listed.output
        assert [w["name"] for w in json.loads(listed.output)] == ["cd-bus", "down"]
        shown = CliRunner().invoke(cli, ["webhook", "list"], env=env)
        assert shown.exit_code == 0 and "ConnectError" in shown.output, shown.output
    finally:
        api.stop()
        dispatcher.drain(pilot.engine)


OPERATOR = "permissions:\n  - {user: ops, allow: [webhooks.manage, audit.read]}\n"


def test_an_event_refused_for_good_is_skipped_by_an_operator_and_the_rest_follows(
    pilot, receivers, monkeypatch
):
    import json

    from click.testing import CliRunner

    from interlock.cli.main import cli
    from tests.support.api import Api

    monkeypatch.setenv("HOOK_SECRET", SECRET)
    published = "dev.cdevents.artifact.published.0.3.0"
    bus = receivers(refuse_event=published)
    path = pilot.config(
        BASE.replace("notifications:", OPERATOR + "notifications:") + hook("cd-bus", bus.url)
    )
    api = Api(pilot.engine, pilot.configs, path, workers=1).start()
    try:
        ops, nobody = api.user("ops"), api.user("nobody")
        artifacts.register(pilot.engine, actor="ci", service="api", version="1.4.2", digest=DIGEST)
        release(pilot, "api@1.4.2")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = ops.get("/api/v1/webhooks").json()[0]
            if status["failures"] >= 3:
                break
            time.sleep(0.05)
        stuck = bus.deliveries[0].seq
        # The stream is stuck at the refused event: nothing after it was sent.
        assert {d.seq for d in bus.deliveries} == {stuck}
        assert f"event {stuck}: HTTP 400" in status["last_error"]
        assert status["pending"] > len(expected_types())

        # Only an operator may skip, only forward, only to an event that exists.
        body = {"through": stuck, "reason": "OPS-7: the bus rejects artifact events"}
        assert nobody.post("/api/v1/webhooks/cd-bus/skip", json=body).status_code == 403
        unknown = ops.post("/api/v1/webhooks/nope/skip", json=body)
        assert unknown.status_code == 404 and "cd-bus" in unknown.json()["detail"]
        behind = ops.post("/api/v1/webhooks/cd-bus/skip", json={**body, "through": stuck - 1})
        assert behind.status_code == 409
        assert behind.headers["content-type"].startswith("application/problem+json")
        ahead = ops.post("/api/v1/webhooks/cd-bus/skip", json={**body, "through": 10**9})
        assert ahead.status_code == 422 and "newest" in ahead.json()["detail"]
        blank = ops.post("/api/v1/webhooks/cd-bus/skip", json={**body, "reason": "  "})
        assert blank.status_code == 422

        env = {"INTERLOCK_URL": api.url, "INTERLOCK_TOKEN": api.secrets["ops"]}
        skipped = CliRunner().invoke(
            cli,
            ["webhook", "skip", "cd-bus", "--through", str(stuck), "--reason", body["reason"]],
            env=env,
        )
        assert skipped.exit_code == 0, skipped.output
        assert f"skipped the events up to {stuck}" in skipped.output
        got = bus.wait(lambda d: len(d) >= len(expected_types()), what="the rest after the skip")
        time.sleep(0.3)
    finally:
        api.stop()
        dispatcher.drain(pilot.engine)
    # Every later event arrived, in order; the refused one was never accepted.
    assert short(got) == expected_types()
    assert all(d.seq > stuck for d in got)
    (event,) = views.audit_events(pilot.engine, actions=["webhook.skipped"])
    assert event.actor == "ops" and event.object_id == "cd-bus"
    recorded = json.loads(event.body)
    assert recorded["reason"] == body["reason"]
    assert recorded["after"] == {"cursor": stuck} and recorded["before"]["cursor"] < stuck
    assert "HTTP 400" in recorded["data"]["last_error"]
    assert recorded["data"]["events"] == stuck - recorded["before"]["cursor"]
    assert views.audit_verify(pilot.engine).ok


def test_retry_now_skips_the_backoff_once_the_receiver_is_fixed(pilot, receivers, monkeypatch):
    import json

    from click.testing import CliRunner

    from interlock.cli.main import cli
    from tests.support.api import Api

    monkeypatch.setenv("HOOK_SECRET", SECRET)
    bus = receivers()
    bus.failing = True
    path = pilot.config(
        BASE.replace("notifications:", OPERATOR + "notifications:")
        + hook("cd-bus", bus.url, backoff="1h", max_backoff="1h")
    )
    api = Api(pilot.engine, pilot.configs, path, workers=1).start()
    try:
        ops = api.user("ops")
        artifacts.register(pilot.engine, actor="ci", service="api", version="1.0.0", digest=DIGEST)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = ops.get("/api/v1/webhooks").json()[0]
            if status["next_attempt_at"]:
                break
            time.sleep(0.05)
        assert status["failures"] == 1 and status["next_attempt_at"]
        bus.failing = False
        time.sleep(0.5)
        assert bus.accepted() == []  # an hour of backoff ahead
        env = {"INTERLOCK_URL": api.url, "INTERLOCK_TOKEN": api.secrets["ops"]}
        retried = CliRunner().invoke(cli, ["webhook", "retry", "cd-bus"], env=env)
        assert retried.exit_code == 0, retried.output
        got = bus.wait(lambda d: len(d) >= 1, timeout=10, what="the event after retry")
    finally:
        api.stop()
        dispatcher.drain(pilot.engine)
    assert short(got)[0] == "dev.cdevents.artifact.published.0.3.0"
    retries = views.audit_events(pilot.engine, actions=["webhook.retried"])
    assert [(e.actor, json.loads(e.body)["before"]["failures"]) for e in retries] == [("ops", 1)]


def test_a_round_that_ends_after_a_skip_leaves_no_stale_backoff(pilot):
    from datetime import timedelta

    now = pilot.engine.clock.now()
    pilot.engine.db.run(lambda tx: tx.ensure_webhook_cursor("cd-bus", 5, now))
    # An operator skips to 10 while a round that started at 5 is still failing there.
    assert pilot.engine.db.run(
        lambda tx: tx.skip_webhook_events("cd-bus", expected=5, through=10, at=now)
    )
    pilot.engine.db.run(
        lambda tx: tx.record_webhook_round(
            "cd-bus",
            delivered_seq=5,
            at=now,
            succeeded=False,
            error="event 6: HTTP 400",
            failures=4,
            next_attempt_at=now + timedelta(hours=1),
        )
    )
    with pilot.read() as tx:
        cursor = tx.webhook_cursor("cd-bus")
    assert (cursor.delivered_seq, cursor.failures, cursor.next_attempt_at) == (10, 0, None)
    # A second skip from a cursor that moved meanwhile is refused, not applied twice.
    assert not pilot.engine.db.run(
        lambda tx: tx.skip_webhook_events("cd-bus", expected=5, through=12, at=now)
    )


def test_a_round_started_from_a_stale_read_keeps_the_backoff(pilot, receivers, monkeypatch):
    # A tick may read the cursor just before a failing round stores its backoff, and start
    # the next round at once: that round must see the backoff and send nothing.
    from datetime import timedelta

    monkeypatch.setenv("HOOK_SECRET", SECRET)
    bus = receivers()
    pilot.config(BASE + hook("cd-bus", bus.url))
    notifications = pilot.configs.active().config.notifications
    artifacts.register(pilot.engine, actor="ci", service="api", version="1.0.0", digest=DIGEST)
    now = pilot.engine.clock.now()
    start = pilot.engine.db.run(
        lambda tx: tx.ensure_webhook_cursor("cd-bus", tx.config_loaded_seq(), now)
    ).delivered_seq
    pilot.engine.db.run(
        lambda tx: tx.record_webhook_round(
            "cd-bus",
            delivered_seq=start,
            at=now,
            succeeded=False,
            error="event: HTTP 500",
            failures=1,
            next_attempt_at=now + timedelta(hours=1),
        )
    )
    held = dispatcher.deliver_round(pilot.engine, notifications.webhooks[0], notifications)
    assert (held.delivered, held.position) == (0, start) and bus.deliveries == []
    pilot.engine.db.run(lambda tx: tx.retry_webhook_now("cd-bus", now))
    sent = dispatcher.deliver_round(pilot.engine, notifications.webhooks[0], notifications)
    assert sent.delivered == 1 and short(bus.accepted()) == [
        "dev.cdevents.artifact.published.0.3.0"
    ]


def test_a_receiver_quoting_the_hooks_secret_where_the_error_is_cut_shows_no_part_of_it(
    pilot, http_target, monkeypatch
):
    # The error kept of a refusal quotes the receiver's answer up to a length: a cut
    # there must not show the beginning of a secret the receiver echoed.
    key = "hk-0123456789abcdefghij"
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    monkeypatch.setenv("HOOK_KEY", key)
    http_target.status = 401
    http_target.body = "refused:" + " " * 3 + "x" * 180 + key + " and more"
    pilot.config(BASE + hook("cd-bus", f'"{http_target.url}/hook?key=${{HOOK_KEY}}"'))
    notifications = pilot.configs.active().config.notifications
    artifacts.register(pilot.engine, actor="ci", service="api", version="1.0.0", digest=DIGEST)
    failed = dispatcher.deliver_round(pilot.engine, notifications.webhooks[0], notifications)
    assert failed.error is not None and "HTTP 401: refused: x" in failed.error
    assert key[:6] not in failed.error


def test_a_refusal_holding_a_nul_is_recorded_with_its_backoff(pilot, http_target, monkeypatch):
    # PostgreSQL stores no NUL in text: the round's failure could not be recorded, so no
    # backoff was either, and every tick sent to the receiver again.
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    http_target.status = 400
    http_target.body = "bad\x00request"
    pilot.config(BASE + hook("cd-bus", f"{http_target.url}/hook"))
    notifications = pilot.configs.active().config.notifications
    artifacts.register(pilot.engine, actor="ci", service="api", version="1.0.0", digest=DIGEST)
    failed = dispatcher.deliver_round(pilot.engine, notifications.webhooks[0], notifications)
    assert failed.error is not None and "HTTP 400: bad\ufffdrequest" in failed.error
    with pilot.read() as tx:
        cursor = tx.webhook_cursor("cd-bus")
    assert cursor.failures == 1 and cursor.next_attempt_at is not None

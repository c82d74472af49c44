"""Checkpoints published outside the database catch what the chain alone cannot.

An attacker with write access to the database cuts the tail and fixes the
head record, or re-hashes the whole chain: the chain verifies, but not
against the checkpoint file; and the publisher refuses to bless the forgery.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import text

from interlock.audit.chain import canonical, link
from interlock.audit.published import FILE_NAME, CheckpointFileUnwritable, read_latest
from interlock.engine import views
from interlock.engine.checkpoints import ChainBroken, latest_published, publish, publish_when_due
from interlock.engine.clock import ManualClock
from interlock.errors import InvalidInput
from tests.helpers import running, wait_release_end
from tests.integration.test_audit_tamper import CONFIG


def _release(pilot, version: str) -> None:
    with running(pilot.engine, scheduler=False):
        wait_release_end(pilot.engine, pilot.release(f"api@{version}").id)


def _sql(pilot, statement: str, **params) -> None:
    with pilot.engine.db.engine.begin() as conn:
        conn.execute(text(statement), params)


@pytest.fixture
def published(pilot, tmp_path):
    """A history of one release, its head published to a checkpoint directory."""
    pilot.engine.settings.audit_checkpoints = tmp_path / "checkpoints"
    pilot.config(CONFIG)
    _release(pilot, "1.0.0")
    return publish(pilot.engine)


def _verify(pilot):
    latest = latest_published(pilot.engine)
    return views.audit_verify(pilot.engine, [latest.checkpoint] if latest else [])


def test_a_growing_chain_verifies_against_its_checkpoints(pilot, published):
    assert published.line == 1 and published.path.name == FILE_NAME
    _release(pilot, "1.0.1")
    assert _verify(pilot).ok
    second = publish(pilot.engine)
    assert second.line == 2 and second.seq > published.seq
    _release(pilot, "1.0.2")
    result = _verify(pilot)
    assert result.ok and result.head.seq > second.seq
    lines = [json.loads(line) for line in second.path.read_text().splitlines()]
    assert [r["seq"] for r in lines] == [published.seq, second.seq]
    assert {r["instance"] for r in lines} == {pilot.engine.instance}


def test_a_cut_tail_with_a_fixed_head_fails_against_the_published_checkpoint(pilot, published):
    cut = published.seq - 3
    _sql(pilot, "DELETE FROM audit_events WHERE seq > :cut", cut=cut)
    last = views.audit_events(pilot.engine, newest_first=True, limit=1)[0]
    _sql(pilot, "UPDATE audit_head SET seq = :seq, hash = :hash", seq=last.seq, hash=last.hash)
    assert views.audit_verify(pilot.engine).ok  # the chain alone cannot tell
    result = _verify(pilot)
    assert not result.ok
    assert result.problems[0]["kind"] == "truncated"
    assert f"checkpoint {published.checkpoint}" in result.problems[0]["message"]
    with pytest.raises(ChainBroken, match=f"no longer holds event {published.seq}"):
        publish(pilot.engine)
    # New events on the cut chain: the scheduled publisher still writes nothing.
    _release(pilot, "1.0.1")
    pilot.engine.clock = ManualClock(published.at + timedelta(days=1))
    assert publish_when_due(pilot.engine) is None
    assert read_latest(published.path) == published


def test_a_consistently_rehashed_chain_fails_against_the_published_checkpoint(pilot, published):
    events = views.audit_events(pilot.engine, limit=10_000)
    prev = "0" * 64
    for event in events:
        body = event.body
        if event.seq == 2:
            body = canonical({**json.loads(body), "actor": "mallory"})
        digest = link(prev, body)
        _sql(
            pilot,
            "UPDATE audit_events SET actor = :actor, body = :body, prev_hash = :prev, "
            "hash = :hash WHERE seq = :seq",
            actor="mallory" if event.seq == 2 else event.actor,
            body=body,
            prev=prev,
            hash=digest,
            seq=event.seq,
        )
        prev = digest
    _sql(pilot, "UPDATE audit_head SET hash = :hash", hash=prev)
    assert views.audit_verify(pilot.engine).ok  # re-hashed consistently: the chain passes
    result = _verify(pilot)
    assert not result.ok
    assert result.problems[0]["kind"] == "checkpoint"
    assert result.problems[0]["seq"] == published.seq
    with pytest.raises(ChainBroken):
        publish(pilot.engine)


def test_the_scheduler_publishes_when_due_and_the_timer_survives_a_restart(pilot, tmp_path):
    pilot.engine.settings.audit_checkpoints = tmp_path / "checkpoints"
    pilot.engine.settings.audit_checkpoint_every = 3600
    pilot.config(CONFIG)
    clock = pilot.engine.clock = ManualClock()
    first = publish_when_due(pilot.engine)  # nothing published yet: due at once
    assert first is not None and first.at == clock.now()
    _release(pilot, "1.0.0")
    clock.advance(3599)
    assert publish_when_due(pilot.engine) is None  # not due yet
    # A restarted server (a new engine on the same database and directory) keeps the timer.
    from interlock.engine.core import Engine

    again = Engine(pilot.engine.db, clock=clock, settings=pilot.engine.settings)
    assert publish_when_due(again) is None
    clock.advance(1)
    second = publish_when_due(again)
    assert second is not None and second.line == 2 and second.seq > first.seq
    clock.advance(7200)
    assert publish_when_due(again) is None  # nothing happened since: no new line


def test_an_edited_checkpoint_file_is_named_by_line(pilot, published):
    publish(pilot.engine)
    publish(pilot.engine)
    lines = published.path.read_text().splitlines()
    record = json.loads(lines[1])
    record["hash"] = "f" * 64
    lines[1] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    published.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match=rf"{FILE_NAME}:3: .*does not link"):
        read_latest(published.path)


def test_each_checkpoint_goes_to_a_signed_webhook(pilot, tmp_path, monkeypatch):
    """The scheduler publishes (due at once) and a webhook taking the action receives it."""
    from contextlib import contextmanager

    from tests.support.webhook_receiver import Receiver, serve

    monkeypatch.setenv("CHECKPOINT_HOOK_SECRET", "s3cret")
    pilot.engine.settings.audit_checkpoints = tmp_path / "checkpoints"
    with contextmanager(serve)(Receiver(secret=b"s3cret")) as receiver:
        pilot.config(
            CONFIG
            + f"""\
notifications:
  webhooks:
    - name: checkpoints
      url: {receiver.url}
      format: interlock
      secret: ${{CHECKPOINT_HOOK_SECRET}}
      events: [audit.checkpoint_published]
"""
        )
        with running(pilot.engine):
            [delivery] = receiver.wait(lambda found: len(found) == 1, what="the checkpoint")
        latest = read_latest(tmp_path / "checkpoints" / FILE_NAME)
    assert delivery.signature_ok is True
    assert delivery.headers["x-interlock-event"] == "audit.checkpoint_published"
    sent = delivery.json["data"]
    assert sent["checkpoint"] == str(latest.checkpoint) and sent["line"] == 1
    assert sent["instance"] == pilot.engine.instance


def test_a_directory_that_cannot_be_written_is_a_clear_error(pilot, tmp_path, caplog):
    (tmp_path / "a-file").write_text("not a directory")
    pilot.engine.settings.audit_checkpoints = tmp_path / "a-file" / "checkpoints"
    pilot.config(CONFIG)
    with pytest.raises(CheckpointFileUnwritable, match="cannot write the audit checkpoint file"):
        publish(pilot.engine)
    assert publish_when_due(pilot.engine) is None  # the scheduler logs it, once an interval
    assert "cannot write the audit checkpoint file" in caplog.text


def test_the_api_publishes_on_demand_and_verify_names_the_checkpoint(pilot, tmp_path):
    from tests.support.api import Api

    path = pilot.config(CONFIG)
    api = Api(pilot.engine, pilot.configs, path, workers=0).start()
    try:
        admin = api.admin()
        off = admin.post("/api/v1/audit/checkpoint")
        assert off.status_code == 409 and off.headers["content-type"] == "application/problem+json"
        assert "--audit-checkpoints" in off.json()["detail"]
        assert admin.get("/api/v1/audit/verify").json()["published"] is None
        pilot.engine.settings.audit_checkpoints = tmp_path / "checkpoints"
        made = admin.post("/api/v1/audit/checkpoint")
        assert made.status_code == 201, made.text
        assert made.json()["file"] == str(tmp_path / "checkpoints" / FILE_NAME)
        verified = admin.get("/api/v1/audit/verify").json()
        assert verified["ok"] and verified["published"] == made.json()
        alone = admin.get("/api/v1/audit/verify", params={"published": "false"}).json()
        assert alone["ok"] and alone["published"] is None
        event = admin.get("/api/v1/audit", params={"action": "audit.checkpoint_published"}).json()[
            "items"
        ]
        assert [(e["actor"], e["data"]["checkpoint"]) for e in event] == [
            ("root", made.json()["checkpoint"])
        ]
    finally:
        api.stop()


@pytest.mark.postgres
def test_only_the_scheduler_leader_publishes(pg_database_url, tmp_path):
    from interlock.engine.core import Engine, Settings
    from interlock.engine.scheduler import TASKS, Scheduler
    from interlock.storage.db import Database
    from interlock.storage.leader import Leadership

    [task] = [t for t in TASKS if t.__name__ == "_audit_checkpoints"]
    dbs = [Database(pg_database_url) for _ in range(2)]
    schedulers = [
        Scheduler(
            Engine(db, settings=Settings(audit_checkpoints=tmp_path / f"host-{n}")),
            tasks=[task],
            leadership=Leadership(db, name=f"host:{n}"),
        )
        for n, db in enumerate(dbs)
    ]
    try:
        with dbs[0].transaction() as tx:  # something to publish
            tx.audit(
                at=schedulers[0].engine.clock.now(),
                actor="t",
                action="t.one",
                object_type="t",
                object_id=1,
            )
        for scheduler in schedulers:
            if scheduler.leads():
                scheduler.run_once()
        written = [(tmp_path / f"host-{n}" / FILE_NAME).exists() for n in range(2)]
        assert written == [True, False]
    finally:
        for scheduler, db in zip(schedulers, dbs, strict=True):
            scheduler.stop()
            db.dispose()

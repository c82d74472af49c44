"""Messages to people through real parts: HTTP receivers, an SMTP server, the API server.

The engine runs on a manual clock; the notifier is driven in the test thread
(``Notifier.run_once``), so retries and reminders are moved by the clock, not by sleeps.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from interlock.notifications import install
from interlock.notifications.delivery import Notifier
from interlock.notifications.slack import signature
from interlock.notifications.timers import _fire
from interlock.storage.db import Database
from interlock.storage.tx import Tx
from tests.conftest import FAST
from tests.helpers import wait_for
from tests.integration.conftest import Pilot
from tests.support.api import Api, waiting_at_gate
from tests.support.mail import Mailbox, smtp_server
from tests.support.webhook_receiver import Receiver, serve

CONFIG = """\
version: 1
teams: {{payments: [dave]}}
roles:
  release-managers: [alice, bob]
  sre: [carol]
  admin: [root]
permissions:
  - {{team: payments, allow: [release.create, release.cancel], services: owned}}
  - {{role: release-managers, allow: [approve]}}
environments:
  - name: staging
  - name: production
    gates:
      before:
        - approval:
            rules: [{{role: release-managers}}]
            expires: 1h
services:
  api: {{owner: payments, deploy: [{{name: roll-out, run: "true"}}]}}
notifications:
  public_url: {public}
  channels:
    - {{name: chat, kind: slack, url: "${{SLACK_HOOK_URL}}", signing_secret: "${{SLACK_SECRET}}",
        backoff: 10s}}
    - {{name: room, kind: teams, url: "{teams}"}}
    - {{name: hook, kind: webhook, url: "{hook}", secret: "${{NOTIFY_SECRET}}"}}
    - {{name: mail, kind: email, host: 127.0.0.1, port: {smtp}, security: none,
        from: interlock@example.com}}
  routes:
    - {{channels: [chat, room, hook], events: ["release.*", "gate.*"]}}
    - {{channels: [mail], events: ["gate.waiting"], environments: [production]}}
    - {{channels: [mail, chat], events: [digest]}}
    - {{channels: [hook], events: ["lock.*", "incident.*", needs_attention]}}
  people:
    alice: {{email: alice@example.com, slack: UALICE1}}
    bob: {{email: bob@example.com}}
    carol: {{email: carol@example.com}}
  gates:
    remind: 30m
    escalate: {{after: 2h, to: {{role: sre}}}}
    digest: {{at: "10:30", timezone: Europe/Berlin}}
"""


class World:
    def __init__(
        self,
        api: Api,
        clock: ManualClock,
        engine: Engine,
        receivers: dict[str, Receiver],
        mail: Mailbox,
    ) -> None:
        self.api, self.clock, self.engine = api, clock, engine
        self.chat, self.room, self.hook = receivers["chat"], receivers["room"], receivers["hook"]
        self.mail = mail
        self.notifier = Notifier(engine)
        self.web = httpx.Client(timeout=30)  # a person's browser: no token

    def waiting(
        self, version: str, reason: str, people: Iterable[str] = ("alice", "bob", "carol")
    ) -> tuple[httpx.Client, int]:
        """dave's release of api@``version``, waiting at production's approval gate, once
        ``people`` have accounts: dave's client and the release's id."""
        dave = self.api.user("dave")
        for name in people:
            self.api.user(name)
        return dave, waiting_at_gate(dave, f"api@{version}", reason)

    def audit(
        self, tx: Tx, action: str, object_type: str, object_id: str | int, reason: str | None = None
    ) -> None:
        """Record ``action`` in ``tx`` as something of the engine's would."""
        tx.audit(
            at=self.clock.now(),
            actor="tester",
            action=action,
            object_type=object_type,
            object_id=object_id,
            reason=reason,
        )

    def payloads(self, receiver: Receiver) -> list[Any]:
        return [d.json for d in receiver.accepted()]

    def log(self, channel: str | None = None) -> list[dict[str, Any]]:
        admin = self.api.admin()
        params = {"limit": 1000, **({"channel": channel} if channel else {})}
        found = admin.get("/api/v1/notifications/log", params=params)
        assert found.status_code == 200, found.text
        return list(found.json())


@pytest.fixture
def world(request, db, tmp_path, monkeypatch) -> Iterator[World]:
    config = getattr(request, "param", CONFIG)  # a test may give its own config
    clock = ManualClock()
    engine = Engine(db, clock=clock, settings=type(FAST)(**FAST.__dict__))
    install(engine)
    pilot = Pilot(engine, tmp_path)
    with contextlib.ExitStack() as stack:
        receivers = {
            n: stack.enter_context(contextlib.contextmanager(serve)(Receiver()))
            for n in ("chat", "room", "hook")
        }
        receivers["hook"].secret = b"hook-secret"
        mail = stack.enter_context(smtp_server())
        monkeypatch.setenv("SLACK_HOOK_URL", receivers["chat"].url)
        monkeypatch.setenv("SLACK_SECRET", "slack-signing-secret")
        monkeypatch.setenv("NOTIFY_SECRET", "hook-secret")
        api = Api(engine, pilot.configs, None, driven=True)
        pilot.config(
            config.format(
                public=api.url,
                teams=receivers["room"].url,
                hook=receivers["hook"].url,
                smtp=mail.port,
            )
        )
        api.start()
        stack.callback(api.stop)
        found = World(api, clock, engine, receivers, mail)
        stack.callback(found.web.close)
        yield found


def test_a_waiting_gate_is_told_on_every_channel_with_what_people_need(world):
    dave, release_id = world.waiting("1.4.2", "PAY-7: rounding fix")
    world.notifier.run_once()

    slack = [p for p in world.payloads(world.chat) if "waits for approval" in p["text"]]
    [message] = slack
    assert message["text"] == f"Release #{release_id} waits for approval in production"
    facts = message["blocks"][1]["text"]["text"]
    assert "Services: api@1.4.2" in facts and "Environment: production" in facts
    assert "can approve: alice, bob" in facts and "Approved by: nobody yet" in facts
    # The same account of the wait as the API's `waits` (engine/waits.py).
    waits = dave.get(f"/api/v1/releases/{release_id}").json()["waits"]
    [wait] = [w for w in waits if w["kind"] == "approval"]
    assert f"Waits on: {wait['summary']}" in facts
    buttons = {e["action_id"]: e for e in message["blocks"][2]["elements"]}
    assert buttons["approve"]["value"] == f"{release_id}:production:approval"
    assert buttons["open"]["url"] == f"{world.api.url}/ui/releases/{release_id}"
    # earlier events came first, in order: created, started in staging, ...
    texts = [p["text"] for p in world.payloads(world.chat)]
    assert texts[0] == f"Release #{release_id} created"
    assert texts.index(f"Release #{release_id} started in staging") < texts.index(message["text"])

    [card] = [
        p["attachments"][0]["content"]
        for p in world.payloads(world.room)
        if "waits for approval" in p["attachments"][0]["content"]["body"][0]["text"]
    ]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Services"] == "api@1.4.2" and facts["Environment"] == "production"
    assert card["actions"][0]["url"].endswith(f"/ui/releases/{release_id}")

    hooked = [d for d in world.hook.accepted() if d.json["event"] == "gate.waiting"]
    assert hooked and all(d.signature_ok for d in world.hook.accepted())
    assert "links" not in hooked[0].json  # personal links go by mail only

    # each approver gets a mail of their own with their own links; others get none
    alice = world.mail.wait(lambda box: box.to("alice@example.com"))
    bob = world.mail.to("bob@example.com")
    assert world.mail.to("carol@example.com") == [] and world.mail.to("dave@example.com") == []
    text = alice[0].get_body(("plain",)).get_content()
    html = alice[0].get_body(("html",)).get_content()
    assert "Services: api@1.4.2" in text and "Approve: " in text and "Approve</a>" in html
    link = re.search(r"Approve: (\S+)", text).group(1)
    assert link.startswith(f"{world.api.url}/approve/")
    assert link not in bob[0].get_body(("plain",)).get_content()

    log = world.log("mail")
    assert {e["recipient"] for e in log} == {"alice@example.com", "bob@example.com"}
    assert all(e["state"] == "delivered" and e["attempts"] == 1 for e in log)
    assert "approve/" not in json.dumps(world.log())  # the log never shows the links
    with world.engine.db.read() as tx:  # nor are they kept once the mail went out
        assert all(not e.payload.get("links") for e in tx.outbox_log(limit=1000))


def _links(mail: Mailbox, address: str) -> dict[str, str]:
    text = mail.wait(lambda box: box.to(address))[-1].get_body(("plain",)).get_content()
    return {
        "approve": re.search(r"Approve: (\S+)", text).group(1),
        "reject": re.search(r"Reject: (\S+)", text).group(1),
    }


def _gate(client: httpx.Client, release_id: int) -> dict[str, Any]:
    found = client.get(f"/api/v1/releases/{release_id}").json()
    return next(g for g in found["waiting_on"] if g["environment"] == "production")


def test_a_link_shows_a_page_and_its_confirmation_applies_the_api_rules(world):
    dave, release_id = world.waiting("2.0.0", "PAY-8", ("alice", "bob"))
    world.notifier.run_once()
    alice, bob = _links(world.mail, "alice@example.com"), _links(world.mail, "bob@example.com")
    web = world.web

    page = web.get(alice["approve"])  # a mail scanner opening it changes nothing
    assert page.status_code == 200 and f"Approve release #{release_id}?" in page.text
    assert _gate(dave, release_id)["rules"][0]["given_by"] == []

    no_comment = web.post(bob["reject"], data={"decision": "reject", "comment": " "})
    assert no_comment.status_code == 422 and "needs a comment" in no_comment.text
    tampered = alice["approve"].replace("/approve/", "/approve/0")
    assert web.post(tampered, data={"decision": "approve"}).status_code == 404

    done = web.post(alice["approve"], data={"decision": "approve", "comment": "read it"})
    assert done.status_code == 200, done.text
    assert "Approved production/approval" in done.text and "succeeded" in done.text
    again = web.post(alice["approve"], data={"decision": "approve"})
    assert again.status_code == 409 and "used already" in again.text
    # bob's link is still his own, but the gate is decided now
    late = web.post(bob["approve"], data={"decision": "approve"})
    assert late.status_code == 409

    audit = world.api.admin().get("/api/v1/audit", params={"limit": 1000}).json()["items"]
    [given] = [e for e in audit if e["action"] == "approval.given"]
    assert given["actor"] == "alice" and given["data"]["via"] == "link"
    assert given["reason"] == "read it"


def test_a_link_is_bound_to_the_release_content_and_expires(world):
    dave, release_id = world.waiting("2.1.0", "PAY-9", ("alice",))
    world.notifier.run_once()
    link = _links(world.mail, "alice@example.com")["approve"]
    web = world.web
    world.clock.advance(3601)  # the gate's approvals last 1h: so does the link
    page = web.get(link)
    assert "expired" in page.text and "<form" not in page.text
    assert web.post(link, data={"decision": "approve"}).status_code == 409
    assert _gate(dave, release_id)["state"] == "waiting"


def _slack_post(
    world: World, body: bytes, *, secret: bytes = b"slack-signing-secret", at: int | None = None
):
    timestamp = str(at if at is not None else int(world.clock.now().timestamp()))
    return httpx.post(
        f"{world.api.url}/api/v1/hooks/slack",
        content=body,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": signature(secret, timestamp, body),
        },
        timeout=30,
    )


def _button(user: str, release_id: int, action: str = "approve") -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "actions": [{"action_id": action, "value": f"{release_id}:production:approval"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_slack_buttons_verify_the_signature_and_act_as_the_mapped_user(world):
    dave, release_id = world.waiting("3.0.0", "PAY-10", ("alice",))

    forged = _slack_post(world, _button("UALICE1", release_id), secret=b"guess")
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"
    stale = _slack_post(
        world, _button("UALICE1", release_id), at=int(world.clock.now().timestamp()) - 301
    )
    assert stale.status_code == 401 and "5 minutes" in stale.json()["detail"]
    audit = world.api.admin().get("/api/v1/audit", params={"limit": 1000}).json()["items"]
    refused = [e for e in audit if e["action"] == "auth.failed"]
    assert refused and refused[0]["object_id"] == "/api/v1/hooks/slack"

    stranger = _slack_post(world, _button("UNKNOWN9", release_id))
    assert stranger.status_code == 200
    assert "not linked to an Interlock user" in stranger.json()["text"]
    assert _gate(dave, release_id)["state"] == "waiting"

    body = _button("UALICE1", release_id)
    at = int(world.clock.now().timestamp())
    approved = _slack_post(world, body, at=at)
    assert approved.status_code == 200
    assert "Approved release" in approved.json()["text"] and "succeeded" in approved.json()["text"]
    replay = _slack_post(world, body, at=at)
    assert replay.status_code == 409 and "replay" in replay.json()["detail"]
    audit = world.api.admin().get("/api/v1/audit", params={"limit": 1000}).json()["items"]
    [given] = [e for e in audit if e["action"] == "approval.given"]
    assert given["actor"] == "alice" and given["data"]["via"] == "slack"


def test_a_channel_that_is_down_loses_nothing_and_resumes_in_order(world):
    dave = world.api.user("dave")
    alice = world.api.user("alice")
    world.chat.failing = True
    release_id = waiting_at_gate(dave, "api@4.0.0", "PAY-11")
    started = time.monotonic()
    world.notifier.run_once()
    assert time.monotonic() - started < 10  # one failed try per channel, no waiting
    [head] = [e for e in world.log("chat") if e["attempts"]]
    assert head["state"] == "pending" and head["last_error"].startswith("HTTP 500")
    # the other channels were not held up by the one that is down
    assert any(d.json["event"] == "gate.waiting" for d in world.hook.accepted())

    # the release goes on; its events queue up behind the failed one
    response = alice.post(f"/api/v1/releases/{release_id}/approvals", json={"decision": "approve"})
    assert response.json()["gate_state"] == "succeeded"
    wait_for(
        lambda: dave.get(f"/api/v1/releases/{release_id}").json()["state"] == "succeeded",
        message="the release to succeed while chat is down",
    )
    world.notifier.run_once()  # still backing off: not even tried
    assert len(world.chat.deliveries) == 1

    world.chat.failing = False
    world.clock.advance(10)  # the channel's backoff
    world.notifier.run_once()
    log = sorted(world.log("chat"), key=lambda e: e["id"])
    assert all(e["state"] == "delivered" for e in log)
    texts = [p["text"] for p in world.payloads(world.chat)]
    assert texts == [e["title"] for e in log]  # each once, in the order they happened
    assert texts == [
        f"Release #{release_id} created",
        f"Release #{release_id} started in staging",
        f"Release #{release_id} started in production",
        f"Release #{release_id} waits for approval in production",
        f"Release #{release_id} was approved for production",
        f"Release #{release_id} succeeded",
    ]
    assert log[0]["attempts"] == 2 and log[0]["last_error"].startswith("HTTP 500")
    # Every try of a message carries its idempotency key, the same on each try (a
    # receiver drops a repeat: delivery is at least once), another for each message.
    keys = [d.headers["idempotency-key"] for d in world.chat.deliveries]
    assert keys[0] == keys[1]  # the failed try and the one that went through
    assert len(set(keys)) == len(log) == len(keys) - 1
    assert all(
        d.headers["x-interlock-delivery"] == d.headers["idempotency-key"]
        for d in world.chat.deliveries
    )


def test_the_outbox_is_written_in_the_events_transaction(world):
    def locks(fail: bool) -> None:
        def work(tx):
            world.audit(tx, "release.failed", "release", 999)
            if fail:
                raise RuntimeError("rolled back")

        world.engine.db.run(work)

    with pytest.raises(RuntimeError):
        locks(fail=True)
    assert world.log() == []
    locks(fail=False)
    assert {e["channel"] for e in world.log()} == {"chat", "room", "hook"}


def test_reminders_then_escalation_while_the_gate_waits(world):
    _, release_id = world.waiting("5.0.0", "PAY-12")
    world.notifier.run_once()

    def titles() -> list[str]:
        return [p["text"] for p in world.payloads(world.chat)]

    reminder = f"Reminder: release #{release_id} still waits for approval in production"
    world.clock.advance(29 * 60)
    world.notifier.run_once()
    assert reminder not in titles()
    world.clock.advance(60)
    world.notifier.run_once()
    assert titles().count(reminder) == 1
    world.notifier.run_once()
    assert titles().count(reminder) == 1  # fired once, moved on to the next half hour

    world.clock.advance(90 * 60)  # 2h: reminders go on, and the escalation comes
    world.notifier.run_once()
    assert titles().count(reminder) == 2
    escalated = f"Escalated: release #{release_id} waits for approval in production"
    assert titles().count(escalated) == 1
    carol = world.mail.wait(lambda box: box.to("carol@example.com"))
    text = carol[0].get_body(("plain",)).get_content()
    assert "Escalated" in text and "Approve:" not in text  # told, but not among the approvers

    alice = world.api.user("alice")
    alice.post(f"/api/v1/releases/{release_id}/approvals", json={"decision": "approve"})
    world.clock.advance(3 * 3600)
    world.notifier.run_once()
    assert titles().count(reminder) == 2  # the gate was decided: no more reminders


SRE_MAY_APPROVE = CONFIG.replace(
    "  - {{role: release-managers, allow: [approve]}}\n",
    "  - {{role: release-managers, allow: [approve]}}\n  - {{role: sre, allow: [approve]}}\n",
)


def can_clear(client: Any, release_id: int) -> set[str]:
    """Who the release's waits say can clear its approval gate."""
    found = client.get(f"/api/v1/releases/{release_id}")
    assert found.status_code == 200, found.text
    waits = [w for w in found.json()["waits"] if w.get("rules")]
    assert waits, found.json()["waits"]
    return {n for w in waits for r in w["rules"] for n in r["can_clear"]}


@pytest.mark.parametrize("world", [SRE_MAY_APPROVE], indirect=True)
def test_escalation_adds_the_role_as_approvers_of_the_waiting_gate(world):
    dave = world.api.user("dave")
    for name in ("alice", "bob"):
        world.api.user(name)
    carol = world.api.user("carol")  # sre: holds approve, but the gate wants a release manager
    release_id = waiting_at_gate(dave, "api@5.1.0", "PAY-13")
    world.notifier.run_once()
    approve = f"/api/v1/releases/{release_id}/approvals"

    refused = carol.post(approve, json={"decision": "approve"})
    assert refused.status_code == 403, refused.text
    assert "not among those who can sign off" in refused.json()["detail"]
    assert "carol" not in can_clear(carol, release_id)

    world.clock.advance(2 * 3600)
    world.notifier.run_once()
    told = world.mail.wait(lambda box: box.to("carol@example.com"))
    text = told[0].get_body(("plain",)).get_content()
    assert "Escalated" in text and "Approve:" in text  # told, with links of her own
    audit = world.api.admin().get("/api/v1/audit", params={"action": "gate.escalated"})
    assert audit.status_code == 200, audit.text
    events = audit.json()["items"]
    assert len(events) == 1 and events[0]["data"]["to"] == {"role": "sre"}
    assert events[0]["data"]["added"] == ["carol"]
    assert "carol" in can_clear(carol, release_id)  # the wait lists her now

    world.clock.advance(60)
    world.notifier.run_once()  # the timer fired once: no second escalation
    assert len(world.mail.wait(lambda box: box.to("carol@example.com"))) == 1

    given = carol.post(approve, json={"decision": "approve"})
    assert given.status_code in (200, 201), given.text
    assert given.json()["gate_state"] == "succeeded"


def test_notify_test_sends_now_and_says_what_went_wrong(world):
    admin = world.api.admin()
    sent = admin.post("/api/v1/notifications/channels/chat/test")
    assert sent.status_code == 200 and sent.json()["delivered"] is True
    assert world.payloads(world.chat)[-1]["text"] == "Test message from Interlock"
    mailed = admin.post(
        "/api/v1/notifications/channels/mail/test", params={"to": "ops@example.com"}
    )
    assert mailed.json()["delivered"] is True
    assert world.mail.wait(lambda box: box.to("ops@example.com"))
    world.chat.failing = True
    failed = admin.post("/api/v1/notifications/channels/chat/test").json()
    assert failed["delivered"] is False and failed["error"].startswith("HTTP 500")
    unknown = admin.post("/api/v1/notifications/channels/pager/test")
    assert unknown.status_code == 404 and "chat, room, hook, mail" in unknown.json()["detail"]
    dave = world.api.user("dave")
    assert dave.post("/api/v1/notifications/channels/chat/test").status_code == 403
    assert dave.get("/api/v1/notifications/log").status_code == 403


def test_a_message_that_cannot_be_written_never_stops_a_release(world, monkeypatch, caplog):
    from interlock.notifications import outbox

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a message")

    monkeypatch.setattr(outbox, "outbox_rows", broken)
    dave = world.api.user("dave")
    release_id = waiting_at_gate(dave, "api@6.0.0", "PAY-13")  # the release goes on
    assert world.log() == []
    assert "could not be written (the change is kept)" in caplog.text
    audit = world.api.admin().get("/api/v1/audit", params={"limit": 1000}).json()["items"]
    assert any(e["action"] == "gate.waiting" for e in audit)
    assert dave.get(f"/api/v1/releases/{release_id}").json()["state"] == "running"


def test_a_daily_digest_tells_each_approver_what_waits_on_them(world):
    _, release_id = world.waiting("7.0.0", "PAY-14")
    world.notifier.run_once()  # the clock says 09:00 UTC; the digest is at 10:30 in Berlin

    def digests(address: str) -> list[str]:
        return [
            m.get_body(("plain",)).get_content()
            for m in world.mail.to(address)
            if m["Subject"] == "[Interlock] What waits on you in Interlock"
        ]

    world.clock.advance(29 * 60)
    world.notifier.run_once()
    assert digests("alice@example.com") == []
    world.clock.advance(60)
    world.notifier.run_once()
    [text] = digests("alice@example.com")
    assert f"Waits on you: release #{release_id} (api@7.0.0) in production" in text
    assert len(digests("bob@example.com")) == 1 and digests("carol@example.com") == []
    assert not any("What waits on you" in p["text"] for p in world.payloads(world.chat))
    world.notifier.run_once()
    assert len(digests("alice@example.com")) == 1  # once a day
    world.clock.advance(24 * 3600)
    world.notifier.run_once()
    assert len(digests("alice@example.com")) == 2


FREEZES = """\
version: 1
environments:
  - name: staging
  - name: production
    gates:
      before:
        - window:
            timezone: UTC
            freeze: [{{from: "2026-01-05T12:00", to: "2026-01-05T14:00", reason: db upgrade}}]
services:
  api: {{deploy: [{{name: roll-out, run: "true"}}]}}
notifications:
  channels: [{{name: hook, kind: webhook, url: "{hook}"}}]
  routes: [{{channels: [hook], events: ["freeze.*"], environments: [production]}}]
"""


def test_a_freeze_starting_and_ending_is_told_once_each(db, tmp_path):
    clock = ManualClock()  # 2026-01-05 09:00 UTC
    engine = Engine(db, clock=clock, settings=type(FAST)(**FAST.__dict__))
    install(engine)
    pilot = Pilot(engine, tmp_path)
    with contextlib.contextmanager(serve)(Receiver()) as hook:
        pilot.config(FREEZES.format(hook=hook.url))
        notifier = Notifier(engine)

        def told() -> list[tuple[str, str]]:
            return [(d.json["event"], d.json["reason"]) for d in hook.accepted()]

        notifier.run_once()
        assert told() == []
        clock.advance(3 * 3600 + 30)  # 12:00:30
        notifier.run_once()
        notifier.run_once()
        assert told() == [
            ("freeze.started", "db upgrade until 2026-01-05T14:00:00+00:00 (interlock.yaml)")
        ]
        clock.advance(3 * 3600)  # 15:00:30: the end passed while nothing ran
        notifier.run_once()
        assert [e for e, _ in told()] == ["freeze.started", "freeze.ended"]
        assert hook.accepted()[-1].json["title"] == "A freeze ended in production"


def test_locks_incidents_and_a_cancel_are_told_with_their_reasons(world):
    admin, dave = world.api.admin(), world.api.user("dave")
    locked = admin.post(
        "/api/v1/environments/production/lock", json={"reason": "CHG-5: network work"}
    )
    assert locked.status_code == 200, locked.text
    assert admin.delete("/api/v1/environments/production/lock").status_code == 200
    opened = admin.post(
        "/api/v1/incidents",
        json={"environment": "production", "service": "api", "summary": "5xx on checkout"},
    )
    assert opened.status_code == 201, opened.text
    incident = opened.json()["id"]
    resolved = admin.post(f"/api/v1/incidents/{incident}/resolve", json={"note": "fixed"})
    assert resolved.status_code == 200, resolved.text
    release_id = waiting_at_gate(dave, "api@8.0.0", "PAY-15")
    cancelled = dave.post(f"/api/v1/releases/{release_id}/cancel", json={"reason": "wrong build"})
    assert cancelled.status_code == 200, cancelled.text
    wait_for(
        lambda: dave.get(f"/api/v1/releases/{release_id}").json()["state"] == "cancelled",
        message="the release to be cancelled",
    )
    world.notifier.run_once()
    told = [(d.json["title"], d.json["reason"], d.json["actor"]) for d in world.hook.accepted()]
    assert ("production was locked", "CHG-5: network work", "root") in told
    assert ("production was unlocked", None, "root") in told
    assert (f"Incident #{incident} opened in production", "5xx on checkout", "root") in told
    assert any(t[0] == f"Incident #{incident} resolved in production" for t in told)
    [cancel] = [t for t in told if t[0] == f"Release #{release_id} was cancelled"]
    assert cancel[1:] == ("wrong build", "dave")


ROLLBACK = """\
version: 1
environments:
  - {{name: staging, on_failure: rollback}}
services:
  api: {{deploy: [{{name: roll-out, run: 'test "{{{{ version }}}}" != 2.0.0'}}]}}
notifications:
  channels: [{{name: hook, kind: webhook, url: "{hook}"}}]
  routes: [{{channels: [hook], events: ["release.*"]}}]
"""


def test_a_failed_release_and_its_rollback_are_told(db, tmp_path):
    from tests.support.driver import EngineDriver

    engine = Engine(db, clock=ManualClock(), settings=type(FAST)(**FAST.__dict__))
    install(engine)
    pilot = Pilot(engine, tmp_path)
    driver = EngineDriver(engine)
    with contextlib.contextmanager(serve)(Receiver()) as hook:
        pilot.config(ROLLBACK.format(hook=hook.url))
        first = pilot.release("api@1.0.0")
        driver.run_until_idle()
        second = pilot.release("api@2.0.0")
        driver.run_until_idle()
        Notifier(engine).run_once()
        titles = [d.json["title"] for d in hook.accepted()]
    assert titles == [
        f"Release #{first.id} created",
        f"Release #{first.id} started in staging",
        f"Release #{first.id} succeeded",
        f"Release #{second.id} created",
        f"Release #{second.id} started in staging",
        f"Release #{second.id} was rolled back in staging",
        f"Release #{second.id} failed",
    ]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_notifiers_on_one_database_deliver_each_message_once_in_order(world):
    """As `interlock server` and `interlock worker` processes do on one PostgreSQL database."""
    other = Engine(
        Database(world.engine.db.url), clock=world.clock, settings=type(FAST)(**FAST.__dict__)
    )
    count = 25

    for n in range(count):
        _lock_event(world, f"message {n}")
    first, second = Notifier(world.engine, interval=0.01), Notifier(other, interval=0.01)
    try:
        first.start(), second.start()
        wait_for(
            lambda: (
                all(e["state"] == "delivered" for e in world.log("hook"))
                and len(world.hook.accepted()) >= count
            ),
            message="every message delivered",
        )
    finally:
        first.stop(), second.stop()
        other.db.dispose()
    log = sorted(world.log("hook"), key=lambda e: e["id"])
    assert len(log) == count and all(e["attempts"] == 1 for e in log)
    sent = [p.get("reason") for p in world.payloads(world.hook)]
    assert len(world.hook.deliveries) == count  # each once: nothing sent twice
    assert sent == [f"message {n}" for n in range(count)], "in the order they happened"


def test_a_due_timer_fires_once_however_many_processes_see_it(world):
    _, release_id = world.waiting("5.2.0", "PAY-14")
    world.notifier.run_once()
    world.clock.advance(30 * 60)
    with world.engine.db.read() as tx:
        [due] = [t for t in tx.due_notify_timers(world.clock.now()) if t.kind == "remind"]
    # Two processes read the same due timer; each fires it in its own transaction.
    assert world.engine.db.run(lambda tx: _fire(tx, world.engine, due)) is True
    assert world.engine.db.run(lambda tx: _fire(tx, world.engine, due)) is False
    world.notifier.run_once()
    reminder = f"Reminder: release #{release_id} still waits for approval in production"
    assert [p["text"] for p in world.payloads(world.chat)].count(reminder) == 1


def _lock_event(world: World, reason: str) -> None:
    world.engine.db.run(
        lambda tx: world.audit(tx, "environment.locked", "environment", "production", reason)
    )


def test_the_notifier_loop_delivers_on_its_own_and_stops_promptly(world):
    notifier = Notifier(world.engine, interval=0.05).start()
    try:
        _lock_event(world, "first")
        wait_for(lambda: world.hook.accepted(), message="a delivery by the loop alone")
        _lock_event(world, "second")
        wait_for(lambda: len(world.hook.accepted()) == 2, message="the next tick's delivery")
    finally:
        began = time.monotonic()
        notifier.stop()
        took = time.monotonic() - began
    assert [p["reason"] for p in world.payloads(world.hook)] == ["first", "second"]
    assert took < 1.0 and notifier._loop is not None and not notifier._loop.is_alive()

    idle = Notifier(world.engine, interval=3600).start()  # ticks once, then waits an hour
    _lock_event(world, "third")
    began = time.monotonic()
    idle.stop()
    assert time.monotonic() - began < 1.0  # stop() does not wait out the interval
    assert idle._loop is not None and not idle._loop.is_alive()


OVERRIDES_REVIEWED = (
    CONFIG.replace(
        "  - {{role: release-managers, allow: [approve]}}\n",
        "  - {{role: release-managers, allow: [approve, freeze.override]}}\n"
        "  - {{role: sre, allow: [audit.read]}}\n",
    )
    .replace(
        "    - {{channels: [mail, chat], events: [digest]}}\n",
        "    - {{channels: [mail, chat], events: [digest, override.used]}}\n",
    )
    .replace(
        "carol: {{email: carol@example.com}}", "carol: {{email: carol@example.com, slack: UCAROL1}}"
    )
)


@pytest.mark.parametrize("world", [OVERRIDES_REVIEWED], indirect=True)
def test_an_override_is_told_to_each_of_its_reviewers_in_person(world):
    dave = world.api.user("dave")
    for name in ("bob", "carol"):
        world.api.user(name)
    alice = world.api.user("alice")
    release_id = waiting_at_gate(dave, "api@5.3.0", "PAY-15")
    used = alice.post(
        f"/api/v1/releases/{release_id}/overrides",
        json={"environment": "production", "reason": "hotfix for INC-4"},
    )
    assert used.status_code == 201, used.text
    world.notifier.run_once()
    title = f"A window was overridden for release #{release_id} in production"
    [mail] = world.mail.wait(
        lambda box: box.to("carol@example.com") and box.to("carol@example.com")
    )
    assert mail["Subject"] == f"[Interlock] {title}"
    text = mail.get_body(("plain",)).get_content()
    assert "hotfix for INC-4" in text and "To review: carol" in text
    mailed = {e["recipient"] for e in world.log("mail") if e["event"] == "override.used"}
    assert mailed == {"carol@example.com"}  # not alice who used it, nor bob who may not review
    [chat] = [p for p in world.payloads(world.chat) if p["text"] == title]
    assert "Please review: <@UCAROL1>" in json.dumps(chat["blocks"])


TWO_APPROVALS = CONFIG.replace(
    "rules: [{{role: release-managers}}]", "rules: [{{role: release-managers, count: 2}}]"
)


@pytest.mark.parametrize("world", [TWO_APPROVALS], indirect=True)
def test_an_expired_approval_of_a_waiting_gate_is_told_once(world):
    _, release_id = world.waiting("6.0.0", "PAY-16")
    alice = world.api.user("alice")
    given = alice.post(f"/api/v1/releases/{release_id}/approvals", json={"decision": "approve"})
    assert given.status_code < 300, given.text
    world.notifier.run_once()
    title = f"Approval expired for release #{release_id} in production"

    def expired() -> list[dict[str, Any]]:
        return [p for p in world.payloads(world.chat) if p["text"] == title]

    world.clock.advance(3599)  # the approval lasts 1h
    world.notifier.run_once()
    assert expired() == []
    world.clock.advance(2)
    with world.engine.db.read() as tx:
        [due] = [t for t in tx.due_notify_timers(world.clock.now()) if t.kind == "expire"]
    # Two processes read the same due timer; only one of them tells of it.
    assert world.engine.db.run(lambda tx: _fire(tx, world.engine, due)) is True
    assert world.engine.db.run(lambda tx: _fire(tx, world.engine, due)) is False
    world.notifier.run_once()
    [message] = expired()
    facts = message["blocks"][1]["text"]["text"]
    assert "Approval expired: alice" in facts and "the approval of alice expired" in facts
    assert "can approve: alice, bob" in facts and "Approved by: nobody yet" in facts
    assert {e["action_id"] for e in message["blocks"][2]["elements"]} >= {"approve", "reject"}
    [hooked] = [d.json for d in world.hook.accepted() if d.json["event"] == "gate.expired"]
    assert hooked["gate"]["expired"] == ["alice"] and hooked["gate"]["approvers"] == [
        "alice",
        "bob",
    ]
    # the approvers get fresh links of their own by mail (routed like gate.waiting)
    bob_mail = world.mail.wait(
        lambda box: [m for m in box.to("bob@example.com") if "expired" in str(m["Subject"])]
    )
    assert "Approve: " in bob_mail[-1].get_body(("plain",)).get_content()

    world.clock.advance(3600)
    world.notifier.run_once()
    assert len(expired()) == 1  # told once
    with world.engine.db.read() as tx:
        audited = tx.list_audit(actions=["gate.approval_expired"], limit=1000)
    assert len(audited) == 1 and json.loads(audited[0].body)["data"]["expired"] == ["alice"]


@pytest.mark.parametrize("world", [TWO_APPROVALS], indirect=True)
def test_approvals_that_cleared_the_gate_never_expire_aloud(world):
    _, release_id = world.waiting("6.0.1", "PAY-17")
    for name in ("alice", "bob"):
        client = world.api.user(name)
        given = client.post(
            f"/api/v1/releases/{release_id}/approvals", json={"decision": "approve"}
        )
        assert given.status_code < 300, given.text
    world.notifier.run_once()
    assert any(
        p["text"].endswith("was approved for production") for p in world.payloads(world.chat)
    )
    world.clock.advance(2 * 3600)
    world.notifier.run_once()
    assert not [d for d in world.hook.accepted() if d.json["event"] == "gate.expired"]
    with world.engine.db.read() as tx:
        assert not [t for t in tx.due_notify_timers(world.clock.now()) if t.kind == "expire"]

"""Messages to people with every part real: the server process, SMTP, Chromium, kill -9."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.acceptance.axe import violations
from tests.acceptance.test_web_ui import expect
from tests.helpers import wait_for, write_config
from tests.support.mail import Mailbox, smtp_server
from tests.support.webhook_receiver import Receiver, serve
from tests.support.workers import WorkerProcess

CONFIG = """\
version: 1
teams: {{payments: [carol]}}
roles:
  release-managers: [alice, bob]
  admin: [root]
permissions:
  - {{team: payments, allow: [release.create], services: owned}}
  - {{role: release-managers, allow: [approve]}}
environments:
  - name: production
    gates:
      before:
        - approval: {{rules: [{{role: release-managers}}], expires: 1d}}
services:
  api: {{owner: payments, deploy: [{{name: roll-out, run: "true"}}]}}
notifications:
  public_url: {public}
  channels:
    - {{name: mail, kind: email, host: 127.0.0.1, port: {smtp}, security: none,
        from: interlock@example.com}}
    - {{name: chat, kind: slack, url: "{chat}"}}
  routes:
    - {{channels: [mail], events: [gate.waiting]}}
    - {{channels: [chat], events: ["gate.*"]}}
  people:
    alice: {{email: alice@example.com}}
    bob: {{email: bob@example.com}}
  gates: {{remind: {remind}}}
"""


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def chat() -> Iterator[Receiver]:
    with contextlib.contextmanager(serve)(Receiver()) as receiver:
        yield receiver


def _token(server: Any, user: str) -> str:
    assert server.cli("user", "add", user).returncode == 0
    created = server.cli("token", "create", "--user", user, "--name", "e2e")
    assert created.returncode == 0, created.stderr
    return str(created.stdout.strip())


def _start(project, server, mailbox, chat, remind: str) -> dict[str, str]:
    write_config(
        project,
        CONFIG.format(public=server.url, smtp=mailbox.port, chat=chat.url, remind=remind),
    )
    server.start()
    return {name: _token(server, name) for name in ("carol", "alice", "bob", "root")}


def _release(server: Any, carol: str) -> str:
    made = server.cli(
        "release", "create", "api@1.4.2", "--reason", "PAY-9: fee rules", INTERLOCK_TOKEN=carol
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.mark.browser
def test_the_approval_mail_arrives_and_its_link_approves_in_chromium(
    project,
    server,
    mailbox,
    chat,
    browser,
):
    tokens = _start(project, server, mailbox, chat, remind="1h")
    release_id = _release(server, tokens["carol"])
    [mail] = mailbox.wait(lambda box: box.to("alice@example.com"))
    assert mail["Subject"] == f"[Interlock] Release #{release_id} waits for approval in production"
    html = mail.get_body(("html",)).get_content()
    link = re.search(r'href="([^"]+decision=approve)"', html).group(1).replace("&amp;", "&")
    assert link.startswith(f"{server.url}/approve/")

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(link)
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Approve release #{release_id}?")
        # opening the link changed nothing: the gate still waits
        shown = server.json("release", "show", release_id, INTERLOCK_TOKEN=tokens["carol"])
        assert shown["state"] == "running"
        assert violations(page) == [], "axe-core on the approve link's confirmation page"
        page.get_by_label("Comment").fill("checked the fee tables")
        page.get_by_role("button", name=f"Approve release #{release_id}").click()
        expect(page.locator("#outcome")).to_contain_text("succeeded")
        assert violations(page) == [], "axe-core on the approve link's result page"
        page.goto(link)  # used once: the page says so, accessibly too
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert violations(page) == [], "axe-core on a used approve link"
    finally:
        context.close()
    done = wait_for(
        lambda: (
            (r := server.json("release", "show", release_id, INTERLOCK_TOKEN=tokens["carol"]))[
                "state"
            ]
            == "succeeded"
            and r
        ),
        message="the release to succeed",
    )
    assert done["state"] == "succeeded"
    log = server.json("notify", "log", "--channel", "mail", INTERLOCK_TOKEN=tokens["root"])
    assert {e["recipient"] for e in log} == {"alice@example.com", "bob@example.com"}


def _reminders(chat: Receiver) -> list[int]:
    """The reminders' numbers, each message once: a message that a killed sender had
    sent but not marked delivered is sent again with its idempotency key (at least
    once), which a receiver drops; a second reminder for one period would have its own."""
    numbers: dict[str, int] = {}
    for delivery in chat.accepted():
        found = re.search(r"reminder (\d+):", delivery.json["blocks"][1]["text"]["text"])
        if found and delivery.json["text"].startswith("Reminder"):
            numbers.setdefault(delivery.headers["idempotency-key"], int(found.group(1)))
    return list(numbers.values())


def test_reminders_survive_kill_9_and_none_is_sent_twice(project, server, mailbox, chat):
    tokens = _start(project, server, mailbox, chat, remind="2s")
    _release(server, tokens["carol"])

    def first_delivered() -> bool:
        log = server.json("notify", "log", "--channel", "chat", INTERLOCK_TOKEN=tokens["root"])
        return any(e["title"].startswith("Reminder") and e["state"] == "delivered" for e in log)

    wait_for(first_delivered, timeout=30, message="the first reminder to be delivered")
    server.kill()  # kill -9: the reminder timer of the gate is in the database
    before = _reminders(chat)
    server.start()
    wait_for(
        lambda: len(_reminders(chat)) >= len(before) + 2,
        timeout=30,
        message="reminders after the restart",
    )
    numbers = _reminders(chat)
    assert numbers == list(range(1, len(numbers) + 1)), numbers  # each once, none skipped
    shown = server.cli("notify", "channels", INTERLOCK_TOKEN=tokens["root"])
    assert shown.returncode == 0 and "chat" in shown.stdout
    tested = server.cli("notify", "test", "chat", INTERLOCK_TOKEN=tokens["root"])
    assert tested.returncode == 0 and "test message delivered" in tested.stdout
    # (a reminder every 2 s may arrive after it)
    assert "Test message from Interlock" in [d.json["text"] for d in chat.accepted()]
    refused = server.cli("notify", "test", "pager", INTERLOCK_TOKEN=tokens["root"])
    assert refused.returncode != 0 and "no channel named 'pager'" in refused.stderr


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_an_interlock_worker_delivers_what_a_stopped_server_left(
    project, server, mailbox, chat, database_url
):
    """Scale-out: `interlock worker` processes send the outbox too, not only the server."""
    tokens = _start(project, server, mailbox, chat, remind="1h")
    chat.failing = True  # the chat is down while the server runs: its message stays
    release_id = _release(server, tokens["carol"])
    title = f"Release #{release_id} waits for approval in production"

    def tried() -> bool:
        log = server.json("notify", "log", "--channel", "chat", INTERLOCK_TOKEN=tokens["root"])
        return any(e["title"] == title and e["attempts"] >= 1 for e in log)

    wait_for(tried, timeout=30, message="a failed try of the chat message")
    began = time.monotonic()
    server.stop()  # its notifier loop stops with it, promptly
    assert server.process is not None and server.process.returncode == 0, server.log()
    assert time.monotonic() - began < 10
    chat.failing = False
    worker = WorkerProcess(project, database_url).start()
    try:
        wait_for(
            lambda: [d for d in chat.accepted() if d.json["text"] == title],
            timeout=60,
            message="the worker to deliver the message",
        )
    finally:
        worker.stop()
    assert worker.process is not None and worker.process.returncode == 0, worker.log()
    assert [d.json["text"] for d in chat.accepted()].count(title) == 1

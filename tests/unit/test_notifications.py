"""Messages to people, the pure parts: Slack's signature, the config, what a message shows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from interlock.errors import ConfigError, Unauthenticated
from interlock.notifications import render
from interlock.notifications.content import Notice
from interlock.notifications.slack import signature, verify
from interlock.spec.loader import load_config
from tests.helpers import write_config

# The example of Slack's "Verifying requests from Slack" documentation.
SLACK_SECRET = b"8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = "1531420618"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
    b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_slacks_documented_example_verifies():
    assert signature(SLACK_SECRET, SLACK_TIMESTAMP, SLACK_BODY) == SLACK_SIGNATURE
    at = int(SLACK_TIMESTAMP)
    verify([b"another-secret", SLACK_SECRET], SLACK_TIMESTAMP, SLACK_BODY, SLACK_SIGNATURE, at + 60)


@pytest.mark.parametrize(
    ("timestamp", "body", "given", "now", "why"),
    [
        (SLACK_TIMESTAMP, SLACK_BODY, SLACK_SIGNATURE, 1531420618 + 301, "more than 5 minutes"),
        (SLACK_TIMESTAMP, SLACK_BODY, SLACK_SIGNATURE, 1531420618 - 301, "more than 5 minutes"),
        (SLACK_TIMESTAMP, SLACK_BODY + b"x", SLACK_SIGNATURE, 1531420618, "does not match"),
        ("1531420619", SLACK_BODY, SLACK_SIGNATURE, 1531420618, "does not match"),
        (SLACK_TIMESTAMP, SLACK_BODY, None, 1531420618, "needs X-Slack"),
        ("soon", SLACK_BODY, SLACK_SIGNATURE, 1531420618, "not a Unix time"),
    ],
)
def test_slack_requests_out_of_window_or_altered_are_refused(timestamp, body, given, now, why):
    with pytest.raises(Unauthenticated, match=why):
        verify([SLACK_SECRET], timestamp, body, given, now)


HEAD = """\
version: 1
environments: [{name: staging}, {name: production}]
services:
  api: {deploy: [{name: roll-out, run: "true"}]}
"""


def test_channels_routes_and_reminders_load(tmp_path):
    text = (
        HEAD
        + """\
notifications:
  channels:
    - {name: chat, kind: slack, url: "${SLACK_URL}", signing_secret: "${SLACK_SECRET}"}
    - {name: room, kind: teams, url: "https://example.webhook.office.com/x"}
    - name: mail
      kind: email
      host: smtp.example.com
      port: 465
      security: tls
      username: "${SMTP_USER}"
      password: "${SMTP_PASSWORD}"
      from: interlock@example.com
  routes:
    - {channels: [chat, mail], events: ["gate.*"], environments: [production]}
  people: {alice: {email: alice@example.com, slack: U012ABC}}
  gates: {remind: 30m, escalate: {after: 2h, to: {role: sre}}}
"""
    )
    loaded = load_config(write_config(tmp_path, text)).config.notifications
    assert [c.kind for c in loaded.channels] == ["slack", "teams", "email"]
    assert loaded.routes[0].environments == ["production"]
    assert loaded.gates.remind == 1800 and loaded.gates.escalate.after == 7200
    assert loaded.channel("mail").security == "tls"


@pytest.mark.parametrize(
    ("snippet", "line", "message"),
    [
        (
            "  channels: [{name: chat, kind: slack, url: 'https://x'}]\n"
            "  routes: [{channels: [chta]}]\n",
            "notifications",
            "chta",
        ),
        (
            "  channels: [{name: chat, kind: slack, url: 'https://x'}]\n"
            "  routes: [{channels: [chat], events: [gate.wating]}]\n",
            "routes",
            "matches no event",
        ),
        (
            "  channels:\n    - {name: m, kind: email, host: h, from: a@b, password: hunter2}\n",
            "password",
            "${VAR}",
        ),
        ("  channels: [{name: c, kind: pager, url: 'https://x'}]\n", "channels", "kind"),
    ],
)
def test_config_errors_name_their_place(tmp_path, snippet, line, message):
    path = write_config(tmp_path, HEAD + "notifications:\n" + snippet)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    text = str(raised.value.detail)
    assert message in text
    assert f"{path.name}:" in text  # file:line:column


def waiting() -> Notice:
    return Notice(
        event="gate.waiting",
        at=datetime(2026, 1, 5, 9, tzinfo=UTC),
        actor="system",
        environment="production",
        release={
            "id": 7,
            "reason": "PAY-1: fix <rounding>",
            "created_by": "dave",
            "state": "running",
            "items": [{"service": "api", "version": "1.4.2"}],
            "url": "https://interlock.example.com/ui/releases/7",
        },
        gate={
            "name": "approval",
            "node": 3,
            "rules": [
                {
                    "rule": "1 from role release-managers",
                    "missing": 1,
                    "eligible": ["alice", "bob"],
                    "given_by": [],
                }
            ],
            "approved_by": [],
            "approvers": ["alice", "bob"],
            "escalated_to": [],
            "expires_at": "2026-01-05T10:00:00+00:00",
            "action": "7:production:approval",
        },
        base_url="https://interlock.example.com",
    )


def test_block_kit_shows_the_facts_and_buttons_only_with_a_signing_secret():
    blocks = render.slack(waiting(), buttons=True)["blocks"]
    assert blocks[0]["text"]["text"] == "Release #7 waits for approval in production"
    facts = blocks[1]["text"]["text"]
    assert "Services: api@1.4.2" in facts and "can approve: alice, bob" in facts
    assert "&lt;rounding&gt;" in facts  # Slack's mrkdwn escaping
    elements = {e["action_id"]: e for e in blocks[2]["elements"]}
    assert elements["approve"]["value"] == "7:production:approval"
    assert elements["open"]["url"] == "https://interlock.example.com/ui/releases/7"
    plain = render.slack(waiting(), buttons=False)["blocks"][2]["elements"]
    assert [e["action_id"] for e in plain] == ["open"]


def test_the_teams_card_and_the_mail_parts():
    card = render.teams(waiting())["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    facts = {f["title"]: f["value"] for f in card["content"]["body"][1]["facts"]}
    assert facts["Services"] == "api@1.4.2" and facts["Environment"] == "production"
    mail = render.email(
        Notice(
            **{**waiting().__dict__, "links": {"approve": "https://a/1", "reject": "https://a/2"}}
        ),
        "interlock@example.com",
        "alice@example.com",
    )
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Approve: https://a/1" in text and 'href="https://a/2"' in html
    assert "PAY-1: fix &lt;rounding&gt;" in html


def test_the_documented_configuration_loads(tmp_path):
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "notifications.md").read_text()
    [example] = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S)]
    loaded = load_config(write_config(tmp_path, HEAD + example)).config.notifications
    assert [c.name for c in loaded.channels] == ["releases", "ops-room", "pager", "mail"]
    assert loaded.people["alice"].slack == "U012AB3CD"
    assert loaded.gates.escalate.to == {"role": "sre"}


def test_the_readme_reference_loads(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    [block] = [
        b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if b.startswith("notifications:")
    ]
    loaded = load_config(write_config(tmp_path, HEAD + block)).config.notifications
    assert [r.teams for r in loaded.routes][-1] == ["payments"]
    assert loaded.gates.digest is not None and loaded.gates.digest.at == "09:00"

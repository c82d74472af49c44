"""A notice as each channel shows it: Slack Block Kit, a Teams Adaptive Card, a mail, JSON."""

from __future__ import annotations

import html
import json
from email.message import EmailMessage
from typing import Any

from interlock.notifications.content import Notice

WAITING = ("gate.waiting", "gate.reminder", "gate.escalated", "gate.expired")


def slack(notice: Notice, buttons: bool) -> dict[str, Any]:
    """Block Kit: a header, the facts, and Approve/Reject buttons on a waiting gate."""
    text = notice.title()
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150]}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "\n".join(_slack_escape(x) for x in notice.lines())},
        },
    ]
    mentions = [f"<@{r['slack']}>" for r in notice.reviewers or [] if r.get("slack")]
    if mentions:  # the reviewers of an override, told in person
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "Please review: " + " ".join(mentions)},
            }
        )
    actions: list[dict[str, Any]] = []
    if notice.release_url():
        actions.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open in Interlock"},
                "url": notice.release_url(),
                "action_id": "open",
            }
        )
    if buttons and notice.gate and notice.event in WAITING:
        value = notice.gate["action"]
        actions += [
            {
                "type": "button",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Approve"},
                "action_id": "approve",
                "value": value,
            },
            {
                "type": "button",
                "style": "danger",
                "text": {"type": "plain_text", "text": "Reject"},
                "action_id": "reject",
                "value": value,
            },
        ]
    if actions:
        blocks.append({"type": "actions", "elements": actions})
    return {"text": text, "blocks": blocks}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams(notice: Notice) -> dict[str, Any]:
    """An Adaptive Card (1.4) in the message envelope both incoming webhooks and Workflows take."""
    facts = []
    for line in notice.lines():
        title, _, value = line.partition(": ")
        facts.append({"title": title, "value": value})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "size": "Large",
                "weight": "Bolder",
                "text": notice.title(),
                "wrap": True,
            },
            {"type": "FactSet", "facts": facts},
        ],
    }
    if notice.release_url():
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open in Interlock", "url": notice.release_url()}
        ]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def webhook(notice: Notice) -> dict[str, Any]:
    """The notice as JSON (without personal links: those go by mail only)."""
    body = notice.as_payload()
    body.pop("links", None)
    body["title"] = notice.title()
    return body


def email(notice: Notice, sender: str, to: str) -> EmailMessage:
    """A mail with a text and an HTML part; a personal mail holds the approver's links."""
    message = EmailMessage()
    message["Subject"] = f"[Interlock] {notice.title()}"
    message["From"] = sender
    message["To"] = to
    lines = notice.lines()
    links = notice.links or {}
    text = [notice.title(), "", *lines]
    if notice.release_url():
        text += ["", f"Open: {notice.release_url()}"]
    if links:
        text += [
            "",
            "Your personal links (single use; they ask you to confirm):",
            f"Approve: {links['approve']}",
            f"Reject: {links['reject']}",
        ]
    message.set_content("\n".join(text) + "\n")
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    parts = [f"<h2>{html.escape(notice.title())}</h2>", f"<ul>{items}</ul>"]
    if notice.release_url():
        parts.append(
            f'<p><a href="{html.escape(notice.release_url() or "")}">Open in Interlock</a></p>'
        )
    if links:
        parts.append(
            f'<p><a href="{html.escape(links["approve"])}">Approve</a> · '
            f'<a href="{html.escape(links["reject"])}">Reject</a> '
            "(your personal links: single use, they ask you to confirm)</p>"
        )
    message.add_alternative("<html><body>" + "".join(parts) + "</body></html>", subtype="html")
    return message


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

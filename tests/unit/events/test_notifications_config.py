"""``notifications:`` in interlock.yaml, and the examples of docs/events-and-webhooks.md."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import pytest

from interlock.errors import ConfigError
from interlock.spec.loader import load_config
from tests.helpers import write_config

DOC = Path(__file__).parents[3] / "docs" / "events-and-webhooks.md"
HEAD = """\
version: 1
environments: [{name: staging}, {name: production}]
services:
  api: {deploy: [{name: roll-out, run: "true"}]}
"""


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def test_the_documented_configuration_loads(tmp_path):
    [example] = [b for b in blocks("yaml") if b.startswith("notifications:")]
    loaded = load_config(write_config(tmp_path, HEAD + example)).config.notifications
    assert [w.name for w in loaded.webhooks] == ["cd-bus", "siem"]
    assert loaded.webhooks[0].events == ["service.*", "pipelinerun.*", "incident.*"]
    assert loaded.webhooks[0].timeout == 10 and loaded.webhooks[0].max_backoff == 600
    assert loaded.webhooks[1].format == "interlock" and loaded.webhooks[1].events == ["*"]
    assert [(s.name, s.kind, s.as_) for s in loaded.inbound] == [
        ("ci", "cdevents", "ci-bot"),
        ("github", "github", "github-bot"),
    ]
    assert loaded.services["pkg:golang/mygit.com/myorg/myapp"] == "api"
    assert loaded.event_source() == "https://interlock.example.com"


def test_the_documented_signature_check_works():
    [snippet] = blocks("python")
    scope: dict[str, object] = {}
    exec(snippet, scope)  # noqa: S102 - the documentation's own example
    body, secret = b'{"context": {}}', b"s3cret"
    header = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    verified = scope["verified"]
    assert verified(secret, body, header)  # type: ignore[operator]
    assert not verified(secret, body + b" ", header)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("notifications", "message", "line"),
    [
        (
            "  webhooks: [{name: a, url: 'https://x.example', secret: hunter2}]\n",
            "${VAR} reference",
            6,
        ),
        ("  webhooks: [{name: a, url: 'ftp://x.example'}]\n", "http:// or https://", 6),
        (
            "  webhooks: [{name: a, url: 'http://x'}, {name: a, url: 'http://y'}]\n",
            "webhook names must be unique",
            6,
        ),
        ("  inbound: [{name: ci, secret: '${S}'}]\n", "as", 6),
        ("  webhooks: [{name: a, url: 'http://x', timeout: 5m}]\n", "at most 60s", 6),
        ("  webhooks: [{name: a, url: 'http://x', format: xml}]\n", "format", 6),
    ],
)
def test_mistakes_are_named_with_their_place(tmp_path, notifications, message, line):
    path = write_config(tmp_path, HEAD + "notifications:\n" + notifications)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert message in text, text
    assert f"interlock.yaml:{line}:" in text, text


def test_without_notifications_nothing_changes(tmp_path):
    loaded = load_config(write_config(tmp_path, HEAD)).config.notifications
    assert loaded.webhooks == [] and loaded.inbound == [] and loaded.event_source() == "/interlock"

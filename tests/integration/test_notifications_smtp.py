"""E-mail over a real SMTP server: STARTTLS or TLS, a login from ${VARS}, the password masked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from interlock.notifications.content import Notice
from interlock.notifications.send import send
from interlock.spec.notifications import EmailChannel
from tests.support.mail import self_signed, smtp_server

NOTICE = Notice(
    event="lock.taken",
    at=datetime(2026, 1, 5, 9, tzinfo=UTC),
    actor="root",
    environment="production",
    reason="CHG-5: network work",
)
ENVIRON = {"SMTP_USER": "interlock", "SMTP_PASSWORD": "s3cret-pass-word"}


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts it as its CA
    return cert, key


def channel(port: int, security: str, password: str = "${SMTP_PASSWORD}") -> EmailChannel:
    return EmailChannel.model_validate(
        {
            "name": "mail",
            "kind": "email",
            "host": "127.0.0.1",
            "port": port,
            "security": security,
            "username": "${SMTP_USER}",
            "password": password,
            "from": "interlock@example.com",
        }
    )


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_goes_over_tls_with_the_login_from_the_environment(certificate, security):
    login = ("interlock", "s3cret-pass-word")
    with smtp_server(security=security, certificate=certificate, login=login) as box:
        error = send(
            channel(box.port, security), NOTICE, "ops@example.com", ENVIRON, key="interlock-7-x"
        )
        assert error is None
        [mail] = box.to("ops@example.com")
    assert mail["Subject"] == "[Interlock] production was locked"
    assert mail["Message-ID"] == "<interlock-7-x@example.com>"  # the same on every try
    assert "What happened: CHG-5: network work" in mail.get_body(("plain",)).get_content()
    assert "<h2>production was locked</h2>" in mail.get_body(("html",)).get_content()


def test_a_refused_login_is_reported_without_the_password(certificate):
    with smtp_server(
        security="starttls", certificate=certificate, login=("interlock", "other")
    ) as box:
        error = send(channel(box.port, "starttls"), NOTICE, "ops@example.com", ENVIRON)
        assert box.messages == []
    assert error is not None and "SMTPAuthenticationError" in error
    assert "s3cret-pass-word" not in error


def test_a_server_that_offers_no_starttls_is_not_sent_the_password(tmp_path):
    with smtp_server() as box:  # plain text only
        error = send(channel(box.port, "starttls"), NOTICE, "ops@example.com", ENVIRON)
        assert box.messages == []
    assert error is not None and "STARTTLS" in error


def test_a_missing_variable_is_named(certificate):
    with smtp_server(security="starttls", certificate=certificate) as box:
        error = send(channel(box.port, "starttls"), NOTICE, "ops@example.com", {})
    assert error == "the environment variable SMTP_USER is not set on the server"

"""Sending one outbox message on its channel: an HTTP POST, or a mail over SMTP."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.utils import getaddresses, parseaddr

import httpx

from interlock.domain.masking import mask, variants
from interlock.domain.templating import resolve_env
from interlock.events.signing import SIGNATURE_HEADER, MissingSecret, secret_value, sign
from interlock.notifications import render
from interlock.notifications.content import Notice
from interlock.spec.notifications import EmailChannel, SlackChannel, TeamsChannel, WebhookChannel
from interlock.tls import client_tls

AnyChannel = SlackChannel | TeamsChannel | WebhookChannel | EmailChannel


def send(
    channel: AnyChannel,
    notice: Notice,
    recipient: str | None,
    environ: Mapping[str, str],
    hidden: frozenset[str] = frozenset(),
    key: str | None = None,
) -> str | None:
    """Send ``notice``: ``None`` when the channel took it, else what went wrong (masked).

    ``key``: the message's idempotency key, the same on every try of it (delivery is at
    least once: a sender killed after the channel took a message and before it was
    marked delivered sends it again). It goes out as the ``Idempotency-Key`` and
    ``X-Interlock-Delivery`` headers of an HTTP channel and in the ``Message-ID`` of a
    mail, so a receiver can drop a repeat.
    """
    used: list[str] = []
    try:
        if isinstance(channel, EmailChannel):
            return _mail(channel, notice, recipient, environ, used, key)
        url, used = resolve_env(channel.url, environ)
        headers = {"content-type": "application/json"}
        if key is not None:  # the header of the IETF draft, and Interlock's own event hooks'
            headers["idempotency-key"] = headers["x-interlock-delivery"] = key
        if isinstance(channel, SlackChannel):
            body = render.dumps(render.slack(notice, buttons=channel.signing_secret is not None))
        elif isinstance(channel, TeamsChannel):
            body = render.dumps(render.teams(notice))
        else:
            body = render.dumps(render.webhook(notice))
            headers["x-interlock-event"] = notice.event
            if channel.secret:
                headers[SIGNATURE_HEADER] = sign(secret_value(channel.secret, environ), body)
        with httpx.Client(
            timeout=channel.timeout, follow_redirects=False, verify=client_tls()
        ) as client:
            response = client.post(url, content=body, headers=headers)
        if 200 <= response.status_code < 300:
            return None
        text = " ".join(response.text.replace("\x00", "\ufffd").split())[:200]
        error = f"HTTP {response.status_code}" + (f": {text}" if text else "")
    except MissingSecret as exc:
        error = f"the environment variable {exc.variable} is not set on the server"
    except KeyError as exc:
        error = f"the environment variable {exc.args[0]} is not set on the server"
    except (httpx.HTTPError, OSError, smtplib.SMTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return mask(error, variants([*used, *hidden]))


def _mail(
    channel: EmailChannel,
    notice: Notice,
    recipient: str | None,
    environ: Mapping[str, str],
    used: list[str],
    key: str | None,
) -> str | None:
    if not recipient:
        return None  # nobody to tell (a route without `to`, no approver address)
    message = render.email(notice, channel.sender, recipient)
    if key is not None:
        domain = parseaddr(channel.sender)[1].rpartition("@")[2] or "interlock.invalid"
        message["Message-ID"] = f"<{key}@{domain}>"
    addresses = [a for _, a in getaddresses([recipient]) if a]
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if channel.security == "tls":
        smtp = smtplib.SMTP_SSL(
            channel.host, channel.port, timeout=channel.timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout)
    with smtp:
        if channel.security == "starttls":
            smtp.starttls(context=context)
        if channel.username and channel.password:
            user, used_user = resolve_env(channel.username, environ)
            password = secret_value(channel.password, environ).decode()
            used += [*used_user, password]
            smtp.login(user, password)
        refused = smtp.send_message(message, to_addrs=addresses)
    if refused:
        return "refused recipients: " + ", ".join(sorted(refused))
    return None

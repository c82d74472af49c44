"""The log of the long-running processes: its format, and no secret in any line of it."""

from __future__ import annotations

import logging
import sys
from typing import Any
from urllib.parse import unquote_plus


def configure(level: str) -> None:
    """Log to stderr at ``level``; the HTTP client's request lines are left out."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request's URL at INFO, with the ${VARS} of an http step or a
    # webhook filled in (`?key=…`); its errors still show.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if level != "debug":
        # Alembic announces its plug-ins at INFO on every schema check; a refusal
        # to start on an old schema should be the one line that matters.
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class SecretMask(logging.Filter):
    """Masks every secret value the process knows of in a record: its message (with its
    arguments filled in), its traceback and its stack. A defence in depth: no line
    that names a secret should be logged in the first place."""

    def __init__(self, secrets: Any) -> None:
        super().__init__()
        self.secrets = secrets  # a KnownSecrets: it learns each config's values when parsed

    def _mask(self, text: str) -> str:
        """``text`` masked; a text that hides a secret only in a percent-encoding of its
        own choosing (``%61`` for ``a``, lower-case hex, ``+`` for a blank: any client may
        send a URL so) is masked in its decoded form."""
        masked: str = self.secrets.mask(text)
        if masked == text and ("%" in text or "+" in text):
            decoded = unquote_plus(text)
            hidden: str = self.secrets.mask(decoded)
            if hidden != decoded:
                return hidden
        return masked

    def _masked_args(self, record: logging.LogRecord) -> tuple[Any, tuple[Any, ...]] | None:
        """The record's message and arguments, each argument masked, if that is enough:
        formatters that read the arguments (uvicorn's access lines) still find them."""
        if not isinstance(record.args, tuple) or not record.args:
            return None
        args = tuple(self._mask(a) if isinstance(a, str) else a for a in record.args)
        try:
            message = str(record.msg) % args
        except (TypeError, ValueError):
            return None
        return (record.msg, args) if self._mask(message) == message else None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._mask(message)
        if masked != message:
            record.msg, record.args = self._masked_args(record) or (masked, ())
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.secrets.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.secrets.mask(record.stack_info)
        return True


def mask_secrets(secrets: Any) -> None:
    """Put a :class:`SecretMask` on every handler there is (the root's, uvicorn's): a
    handler's filters see the records of every logger that reaches it."""
    named = logging.Logger.manager.loggerDict.values()
    loggers = [logging.getLogger(), *(f for f in named if isinstance(f, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, SecretMask) for f in handler.filters):
                handler.addFilter(SecretMask(secrets))

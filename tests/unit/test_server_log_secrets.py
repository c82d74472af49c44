"""No line the server logs holds a secret: httpx's request lines are off, and every
record passes a filter that masks the secret values the process knows of."""

from __future__ import annotations

import io
import logging

from interlock.cli.logs import SecretMask, configure, mask_secrets
from interlock.engine.environ import KnownSecrets

SECRET = "hook-Secret-51c0ffee"


def test_records_are_masked_in_their_arguments_traceback_and_stack():
    secrets = KnownSecrets()
    secrets.learn([SECRET])
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(SecretMask(secrets))
    logger = logging.getLogger("test.secret.mask")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("POST %s failed", f"http://hooks/x?k={SECRET}")
        try:
            raise RuntimeError(f"token {SECRET} refused")
        except RuntimeError:
            logger.exception("delivery failed")
        logger.warning("where", stack_info=True, extra={"s": SECRET})
        logger.warning("plain %d%%", 5)  # a message without secrets keeps its formatting
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert SECRET not in text
    assert "POST http://hooks/x?k=*** failed" in text and "token *** refused" in text
    assert "plain 5%" in text


def test_the_http_clients_request_lines_are_off_and_every_handler_masks():
    root = logging.getLogger()
    before = list(root.handlers)
    levels = {n: logging.getLogger(n).level for n in ("httpx", "httpcore")}
    try:
        root.handlers.clear()
        configure("info")
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("httpcore").getEffectiveLevel() == logging.WARNING
        secrets = KnownSecrets()
        mask_secrets(secrets)
        mask_secrets(secrets)  # once per handler, however often it is called
        [handler] = root.handlers
        assert [type(f) for f in handler.filters] == [SecretMask]
    finally:
        root.handlers[:] = before
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

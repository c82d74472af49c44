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


def test_a_record_keeps_its_arguments_masked_for_formatters_that_read_them():
    secrets = KnownSecrets()
    secrets.learn([SECRET])
    mask = SecretMask(secrets)
    # uvicorn's access formatter unpacks (client, method, path, version, status).
    access = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', None, None
    )
    access.args = ("127.0.0.1:5", "GET", f"/readyz?k={SECRET}", "1.1", 200)
    assert mask.filter(access)
    assert access.args == ("127.0.0.1:5", "GET", "/readyz?k=***", "1.1", 200)
    # A secret split between the message and an argument is masked in the whole line.
    split = logging.LogRecord(
        "x", logging.INFO, __file__, 1, SECRET[:6] + "%s", (SECRET[6:],), None
    )
    assert mask.filter(split)
    assert split.getMessage() == "***"


def test_a_secret_percent_encoded_in_a_form_of_the_clients_choosing_is_masked():
    # Any client may encode any character of a URL: `%68` for `h`, lower-case hex,
    # `+` for a blank. The access line logs the path as the client sent it.
    secrets = KnownSecrets()
    secrets.learn([SECRET, "two words"])
    mask = SecretMask(secrets)
    odd = "".join(f"%{ord(c):02x}" for c in SECRET)
    access = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', None, None
    )
    access.args = ("127.0.0.1:5", "GET", f"/readyz?k={odd}&w=two+words", "1.1", 200)
    assert mask.filter(access)
    line = access.getMessage()
    assert odd not in line and "two+words" not in line and SECRET not in line
    assert "/readyz?k=***" in line
    # A message with no secret keeps its encoding untouched.
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "GET /a%20b?q=1+2", None, None)
    assert mask.filter(plain)
    assert plain.getMessage() == "GET /a%20b?q=1+2"


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

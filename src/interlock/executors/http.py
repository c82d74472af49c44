"""Call an HTTP endpoint; success is the expected status (and body, if asked)."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import quote

from interlock.domain.templating import render_with_env
from interlock.executors.base import StepContext, StepResult

BODY_LOG_LIMIT = 16 * 1024


def _text(
    value: str, ctx: StepContext, secrets: list[str], url: bool = False, header: bool = False
) -> str:
    """Fill placeholders and ``${VARS}`` in one pass: values are never expanded again."""
    quote_with = (lambda v: quote(v, safe="")) if url else None
    filled, used = render_with_env(value, ctx.variables, ctx.environ, quote_with)
    if (url or header) and any("\r" in v or "\n" in v for v in used):
        raise ValueError(
            "a ${VAR} used in a URL or a header holds a line break; "
            "strip it where the secret is stored"
        )
    secrets.extend(used)
    return filled


def _walk(value: Any, ctx: StepContext, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return _text(value, ctx, secrets)
    if isinstance(value, dict):
        return {k: _walk(v, ctx, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, ctx, secrets) for v in value]
    return value


def prepare_request(call: dict[str, Any], ctx: StepContext) -> tuple[dict[str, Any], list[str]]:
    """The request to send (placeholders and ``${VARS}`` filled) and the secrets it used."""
    secrets: list[str] = []
    url = _text(call["url"], ctx, secrets, url=True)
    headers = {k: _text(v, ctx, secrets, header=True) for k, v in call.get("headers", {}).items()}
    body = call.get("body")
    request: dict[str, Any] = {"method": call.get("method", "POST"), "url": url, "headers": headers}
    if isinstance(body, str):
        request["content"] = _text(body, ctx, secrets)
    elif body is not None:
        request["content"] = json.dumps(_walk(body, ctx, secrets))
        request["headers"] = {"content-type": "application/json", **headers}
    return request, secrets


def check_response(call: dict[str, Any], status: int, text: str) -> str | None:
    """Why the response does not count as success, or ``None`` when it does."""
    expected = call.get("expect_status", 200)
    allowed = expected if isinstance(expected, list) else [expected]
    if status not in allowed:
        return f"expected status {' or '.join(map(str, allowed))}, got {status}"
    pattern = call.get("expect_body")
    if pattern and not re.search(pattern, text):
        return f"response body does not match {pattern!r}"
    return None


class HttpExecutor:
    def run(self, spec: dict[str, Any], ctx: StepContext) -> StepResult:
        import httpx

        call = spec["http"]
        try:
            request, secrets = prepare_request(call, ctx)
        except ValueError as exc:
            return StepResult(ok=False, error=str(exc))
        except KeyError as exc:
            name = exc.args[0]
            return StepResult(
                ok=False,
                error=f"no value for {name!r}: set the environment variable on the worker "
                "or fix the placeholder",
            )
        ctx.log.add_secrets(secrets)
        ctx.log.write(f"{request['method']} {request['url']}\n")
        started = time.monotonic()
        try:
            with httpx.Client(timeout=ctx.timeout, follow_redirects=False) as client:
                response = client.request(**request)
        except httpx.TimeoutException:
            return StepResult(ok=False, error=f"timed out after {ctx.timeout:g}s")
        except httpx.HTTPError as exc:
            return StepResult(ok=False, error=f"request failed: {exc}")
        took = (time.monotonic() - started) * 1000
        text = response.text
        ctx.log.write(f"-> {response.status_code} ({took:.0f} ms)\n")
        if text:
            shown = text[:BODY_LOG_LIMIT]
            ctx.log.write(shown + ("\n" if not shown.endswith("\n") else ""))
            if len(text) > BODY_LOG_LIMIT:
                ctx.log.write(f"[interlock: response body cut at {BODY_LOG_LIMIT} bytes]\n")
        problem = check_response(call, response.status_code, text)
        details = {"status": response.status_code}
        if problem:
            return StepResult(ok=False, error=problem, details=details)
        return StepResult(ok=True, details=details)

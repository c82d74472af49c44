"""Call an HTTP endpoint; success is the expected status (and body, if asked)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from interlock.domain.templating import render_with_env
from interlock.executors.base import StepContext, StepResult, fill_templates
from interlock.tls import client_tls

if TYPE_CHECKING:
    import httpx

BODY_LOG_LIMIT = 16 * 1024
CANCEL_POLL = 0.05  # seconds between looks at the step's cancellation


def _text(
    value: str, ctx: StepContext, secrets: list[str], url: bool = False, header: bool = False
) -> str:
    """Fill placeholders and ``${VARS}`` in one pass: values are never expanded again."""
    quote_with = (lambda v: quote(v, safe="")) if url else None
    filled, used = render_with_env(value, ctx.variables, ctx.env_for_references(), quote_with)
    if (url or header) and any("\r" in v or "\n" in v for v in used):
        raise ValueError(
            "a ${VAR} used in a URL or a header holds a line break; "
            "strip it where the secret is stored"
        )
    secrets.extend(used)
    return filled


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
        request["content"] = json.dumps(fill_templates(body, ctx, secrets))
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
        return f"response body does not match the pattern {pattern}"
    return None


class _Stopped(Exception):
    """The request was abandoned: the step was cancelled, or ran out of time."""


async def _send(request: dict[str, Any], ctx: StepContext) -> httpx.Response:
    """Send ``request``; abandon it (closing its connection) on cancel or at the timeout.

    Run on an event loop of its own, so a cancellation, which the worker
    signals through a thread event, can interrupt a request waiting on a slow
    server, as the shell executor kills a process; and ``timeout`` bounds the
    whole exchange, not each read of a server that answers a byte at a time.
    """
    import httpx

    deadline = time.monotonic() + ctx.timeout
    async with httpx.AsyncClient(
        timeout=ctx.timeout, follow_redirects=False, verify=client_tls()
    ) as client:
        call = asyncio.ensure_future(client.request(**request))
        while True:
            done, _ = await asyncio.wait({call}, timeout=CANCEL_POLL)
            if done:
                response: httpx.Response = call.result()
                return response
            if ctx.cancelled.is_set():
                reason = "cancelled before a response came"
            elif time.monotonic() >= deadline:
                reason = f"timed out after {ctx.timeout:g}s"
            else:
                continue
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)  # its connection is closed
            raise _Stopped(reason)


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
        if ctx.cancelled.is_set():
            return StepResult(ok=False, error="cancelled before the request was sent")
        ctx.log.add_secrets(secrets)
        ctx.log.write(f"{request['method']} {request['url']}\n")
        started = time.monotonic()
        try:
            response = asyncio.run(_send(request, ctx))
        except _Stopped as stopped:
            ctx.log.write(
                f"\n[interlock: {stopped}; the request is abandoned, "
                "though the server may have received it]\n"
            )
            return StepResult(ok=False, error=str(stopped))
        except httpx.TimeoutException:
            reason = f"timed out after {ctx.timeout:g}s"
            ctx.log.write(f"\n[interlock: {reason}]\n")
            return StepResult(ok=False, error=reason)
        except httpx.HTTPError as exc:
            return StepResult(ok=False, error=f"request failed: {exc}")
        took = (time.monotonic() - started) * 1000
        text = response.text
        ctx.log.write(f"-> {response.status_code} ({took:.0f} ms)\n")
        if text:
            # Masked before the cut: a cut through a secret would show its beginning.
            masked = ctx.log.mask(text)
            shown = masked[:BODY_LOG_LIMIT]
            ctx.log.write(shown + ("\n" if not shown.endswith("\n") else ""))
            if len(masked) > BODY_LOG_LIMIT:
                ctx.log.write(f"[interlock: response body cut at {BODY_LOG_LIMIT} bytes]\n")
        problem = check_response(call, response.status_code, text)
        details = {"status": response.status_code}
        if problem:
            return StepResult(ok=False, error=problem, details=details)
        return StepResult(ok=True, details=details)

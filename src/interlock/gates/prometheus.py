"""The metric gate: one PromQL instant query, one number, one comparison.

:func:`query_prometheus` asks a Prometheus-compatible API
(``GET {base}/api/v1/query?query=...``) and turns every way that can go wrong
into a :class:`MetricQueryFailed` whose message says what happened.
:func:`evaluate_metric` is pure given its fetcher: it reduces the result to
one value and compares it with the threshold. The engine polls it every
``interval`` until it passes or ``timeout`` fails the gate.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from interlock.domain.durations import format_duration
from interlock.domain.masking import mask, variants
from interlock.domain.templating import resolve_env
from interlock.errors import InterlockError
from interlock.spec.metric_gate import MetricGateSpec
from interlock.tls import client_tls

# Errors of these types come from the query itself: polling again cannot help.
_PERMANENT_ERRORS = frozenset({"bad_data"})
_SHOWN_SERIES = 10
_SHOWN_BODY = 300


class MetricQueryFailed(InterlockError):
    """The metrics backend could not answer the gate's query."""

    http_status = 502
    kind = "metric-query-failed"
    title = "Metric query failed"

    def __init__(self, detail: str, retry: bool = True) -> None:
        super().__init__(detail)
        self.retry = retry


@dataclass(frozen=True)
class Series:
    """One sample of an instant vector (or a scalar, which has no labels)."""

    labels: Mapping[str, str]
    value: float

    def describe(self) -> str:
        """``http_errors{job="api"}``, the way Prometheus shows a series."""
        name = self.labels.get("__name__", "")
        pairs = ", ".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()) if k != "__name__")
        return f"{name}{{{pairs}}}" if pairs or not name else name


@dataclass(frozen=True)
class QueryResult:
    """The answer to an instant query: the series (one for a scalar) and any warnings."""

    result_type: str
    series: tuple[Series, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricOutcome:
    """One evaluation of the metric gate.

    ``retry`` is False when polling again cannot change the outcome (a PromQL
    syntax error, a missing environment variable), so the gate may fail at once.
    """

    passed: bool
    value: float | None
    message: str
    retry: bool = field(default=True)


Fetch = Callable[[MetricGateSpec], QueryResult]


def _number(value: float) -> str:
    return f"{value:.6g}"


def _snippet(text: str, hide: frozenset[str] = frozenset()) -> str:
    """``text`` on one line, cut short; ``hide`` masked first (a cut through a secret
    would show its beginning)."""
    flat = " ".join(mask(text, hide).split())
    return flat if len(flat) <= _SHOWN_BODY else flat[:_SHOWN_BODY] + "..."


def parse_response(
    base: str, status: int, body: str, hide: frozenset[str] = frozenset()
) -> QueryResult:
    """The result of an ``/api/v1/query`` response, or :class:`MetricQueryFailed` saying why not
    (quoting the body with ``hide`` masked)."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("status") == "error":
        error_type = str(document.get("errorType") or "error")
        error = str(document.get("error") or "no reason given")
        raise MetricQueryFailed(
            f"Prometheus at {base} rejected the query ({error_type}): {error}",
            retry=error_type not in _PERMANENT_ERRORS,
        )
    if status != 200:
        hint = ""
        if status in (401, 403):
            hint = ": check the credentials in the gate's headers"
        elif status == 404:
            hint = f": is {base} the base URL of a Prometheus-compatible API?"
        shown = f" ({_snippet(body, hide)})" if body.strip() else ""
        raise MetricQueryFailed(f"Prometheus at {base} answered HTTP {status}{hint}{shown}")
    data = document.get("data") if isinstance(document, dict) else None
    if (
        not isinstance(document, dict)
        or document.get("status") != "success"
        or not isinstance(data, dict)
    ):
        quoted = _snippet(body, hide) or "empty body"
        raise MetricQueryFailed(
            f"{base} did not answer like a Prometheus API ({quoted}): check the prometheus URL"
        )
    warnings = tuple(str(w) for w in document.get("warnings") or ())
    result_type = str(data.get("resultType"))
    try:
        if result_type == "scalar":
            series: tuple[Series, ...] = (Series({}, float(data["result"][1])),)
        elif result_type == "vector":
            series = tuple(_sample(item) for item in data["result"])
        else:
            raise MetricQueryFailed(
                f"the query returns a {result_type}, not a number: the metric gate needs an "
                "instant vector or a scalar (for a range vector, wrap it in e.g. "
                "max_over_time(...))",
                retry=False,
            )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise MetricQueryFailed(
            f"cannot read the answer of Prometheus at {base} ({type(exc).__name__}: {exc}): "
            f"{_snippet(body, hide)}"
        ) from None
    return QueryResult(result_type, series, warnings)


def _sample(item: Mapping[str, Any]) -> Series:
    labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
    if "value" not in item and "histogram" in item:
        raise MetricQueryFailed(
            f"the series {Series(labels, 0.0).describe()} is a native histogram, not a number: "
            "query a number, e.g. with histogram_quantile(...)",
            retry=False,
        )
    return Series(labels, float(item["value"][1]))


def query_prometheus(
    spec: MetricGateSpec,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> QueryResult:
    """Run the gate's query once; ``${VARS}`` in headers come from ``environ`` (default: os)."""
    used: list[str] = []
    try:
        headers = {}
        for name, value in spec.headers.items():
            headers[name], found = resolve_env(value, os.environ if environ is None else environ)
            used += found
    except KeyError as exc:
        raise MetricQueryFailed(
            f"no value for ${{{exc.args[0]}}} in the metric gate's headers: set the environment "
            "variable on the worker",
            retry=False,
        ) from None
    base = spec.prometheus
    timeout = spec.request_timeout
    try:
        with httpx.Client(
            timeout=timeout, follow_redirects=True, transport=transport, verify=client_tls()
        ) as client:
            response = client.get(
                f"{base}/api/v1/query", params={"query": spec.query}, headers=headers
            )
    except httpx.TimeoutException:
        raise MetricQueryFailed(
            f"Prometheus at {base} did not answer within {format_duration(timeout)}: "
            "the server may be overloaded, or raise request_timeout"
        ) from None
    except httpx.ConnectError as exc:
        raise MetricQueryFailed(
            f"cannot connect to Prometheus at {base} ({exc}): check the prometheus URL and "
            "that the server is running"
        ) from None
    except httpx.HTTPError as exc:
        raise MetricQueryFailed(f"the request to Prometheus at {base} failed: {exc}") from None
    return parse_response(base, response.status_code, response.text, variants(used))


class PrometheusClient:
    """A :data:`Fetch` that asks the real server (see :func:`query_prometheus`)."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.environ = environ
        self.transport = transport

    def __call__(self, spec: MetricGateSpec) -> QueryResult:
        return query_prometheus(spec, self.environ, self.transport)


def _reduce(how: str, values: list[float]) -> float:
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    total = math.fsum(values)
    return total if how == "sum" else total / len(values)


def evaluate_metric(spec: MetricGateSpec, fetch: Fetch | None = None) -> MetricOutcome:
    """Query once (with ``fetch``, by default the real server) and compare with the threshold.

    No series, several series without ``reduce``, and NaN values fail with a
    message that says why; so does every error of the query itself.
    """
    try:
        result = (fetch or PrometheusClient())(spec)
    except MetricQueryFailed as exc:
        return MetricOutcome(passed=False, value=None, message=exc.detail, retry=exc.retry)
    series = result.series
    warned = f" (Prometheus warns: {'; '.join(result.warnings)})" if result.warnings else ""
    if not series:
        return MetricOutcome(
            False,
            None,
            "the query returned no series: check the metric name and labels, or that the "
            f"target is scraped{warned}",
        )
    listing = ", ".join(f"{s.describe()} = {_number(s.value)}" for s in series[:_SHOWN_SERIES])
    if len(series) > _SHOWN_SERIES:
        listing += f", and {len(series) - _SHOWN_SERIES} more"
    if len(series) > 1 and spec.reduce is None:
        return MetricOutcome(
            False,
            None,
            f"the query returned {len(series)} series, the gate needs one: aggregate in the "
            f"query (e.g. max(...)) or set reduce to max, min, sum or avg. Series: {listing}",
        )
    nan = [s for s in series if math.isnan(s.value)]
    if nan:
        return MetricOutcome(
            False,
            math.nan,
            f"the value of {', '.join(s.describe() for s in nan)} is NaN (not a number; often "
            "a division by zero when there is no traffic): make the query return a number, "
            f"e.g. with `or vector(0)`{warned}",
        )
    if len(series) == 1:
        value, what = series[0].value, "the value"
    else:
        assert spec.reduce is not None
        value = _reduce(spec.reduce, [s.value for s in series])
        what = f"the {spec.reduce} of {len(series)} series ({listing})"
    passed = spec.threshold.holds(value)
    verdict = "meets" if passed else "does not meet"
    message = f"{what} is {_number(value)}, which {verdict} the threshold {spec.threshold}{warned}"
    return MetricOutcome(passed, value, message)

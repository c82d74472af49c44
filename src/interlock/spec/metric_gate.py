"""The ``metric`` gate's block of interlock.yaml: a PromQL query compared with a threshold.

Example::

    metric:
      prometheus: http://prometheus.internal:9090   # base URL of a Prometheus-compatible API
      headers:                                      # optional; ${VARS} come from the worker
        Authorization: "Bearer ${PROMETHEUS_TOKEN}"
      query: sum(rate(http_requests_total{job="api",code=~"5.."}[5m]))
             / sum(rate(http_requests_total{job="api"}[5m]))
      threshold: {op: "<", value: 0.01}
      reduce: max          # only when the query returns several series: max, min, sum or avg
      interval: 30s        # time between polls
      timeout: 10m         # the gate fails when the threshold has not held by then
      request_timeout: 10s # one HTTP request to Prometheus
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from interlock.domain.templating import env_references
from interlock.spec.common import PositiveDuration, Strict

Operator = Literal["<", "<=", ">", ">=", "==", "!="]
Reducer = Literal["max", "min", "sum", "avg"]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class Threshold(Strict):
    """The condition the query's value must meet for the gate to pass."""

    op: Operator = Field(description="How the value compares with `value`.")
    value: Annotated[float, Field(allow_inf_nan=False)] = Field(
        description="The number the query's value is compared with."
    )

    def holds(self, observed: float) -> bool:
        """True when ``observed op value``; never for NaN."""
        if math.isnan(observed):
            return False
        return _COMPARE[self.op](observed, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


class MetricGateSpec(Strict):
    """The ``metric`` gate: poll a PromQL query until its value meets the threshold."""

    prometheus: str = Field(
        description="Base URL of a Prometheus-compatible HTTP API, e.g. http://prometheus:9090."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers; ${VARS} are read from the worker's environment.",
    )
    query: str = Field(min_length=1, description="A PromQL instant query.")
    threshold: Threshold
    reduce: Reducer | None = Field(
        default=None,
        description="How to combine several series into one value; without it, several fail.",
    )
    interval: PositiveDuration = Field(default=30.0, description="Time between two polls.")
    timeout: PositiveDuration = Field(
        default=600.0, description="The gate fails when the threshold has not held by then."
    )
    request_timeout: PositiveDuration = Field(
        default=10.0, description="How long one request to Prometheus may take."
    )

    @field_validator("prometheus")
    @classmethod
    def _base_url(cls, value: str) -> str:
        url = value.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"{value!r} is not an http(s) URL: give the base URL of the Prometheus API, "
                "e.g. http://prometheus:9090"
            )
        if parts.query or parts.fragment:
            raise ValueError("the Prometheus URL must not have a ?query or #fragment")
        if env_references(url):
            raise ValueError("the Prometheus URL cannot use ${VARS}: put secrets in headers")
        base = url.rstrip("/")
        for suffix in ("/api/v1/query", "/api/v1"):
            if base.endswith(suffix):
                raise ValueError(
                    f"give the base URL without {suffix}, e.g. {base[: -len(suffix)] or base}"
                )
        return base

    @field_validator("query")
    @classmethod
    def _query_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is empty: write a PromQL expression")
        return value.strip()

    @model_validator(mode="after")
    def _positive_times(self) -> MetricGateSpec:
        for name in ("interval", "request_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be longer than 0s")
        return self

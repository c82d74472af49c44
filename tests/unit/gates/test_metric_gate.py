"""The metric gate's config block and its evaluation, with a fake Prometheus."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from interlock.gates.prometheus import (
    PrometheusClient,
    QueryResult,
    Series,
    evaluate_metric,
)
from interlock.spec.metric_gate import MetricGateSpec


def spec(**block: Any) -> MetricGateSpec:
    block.setdefault("prometheus", "http://prometheus:9090")
    block.setdefault("query", "up")
    block.setdefault("threshold", {"op": ">=", "value": 1})
    return MetricGateSpec.model_validate(block)


def result(*values: float) -> QueryResult:
    return QueryResult(
        "vector", tuple(Series({"__name__": "x", "pod": f"p{i}"}, v) for i, v in enumerate(values))
    )


def test_defaults_and_durations() -> None:
    gate = spec(interval="15s", timeout="1h", prometheus="https://metrics.example/prom/")
    assert (gate.interval, gate.timeout, gate.request_timeout) == (15.0, 3600.0, 10.0)
    assert gate.prometheus == "https://metrics.example/prom"  # no trailing slash
    assert gate.reduce is None


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"prometheus": "prometheus:9090"}, "is not an http(s) URL"),
        ({"prometheus": "http://p:9090/api/v1/query"}, "without /api/v1/query, e.g. http://p:9090"),
        ({"prometheus": "http://${HOST}:9090"}, "cannot use ${VARS}: put secrets in headers"),
        ({"prometheus": "http://p:9090?x=1"}, "must not have a ?query"),
        ({"query": "   "}, "the query is empty"),
        ({"threshold": {"op": "=<", "value": 1}}, "'<', '<=', '>', '>=', '==' or '!='"),
        ({"threshold": {"op": "<", "value": "nan"}}, "finite number"),
        ({"threshold": {"op": "<"}}, "threshold.value"),
        ({"reduce": "median"}, "'max', 'min', 'sum' or 'avg'"),
        ({"interval": "0s"}, "interval must be longer than 0s"),
        ({"interval": "soon"}, "is not a duration"),
        ({"treshold": {"op": "<", "value": 1}}, "treshold"),
    ],
)
def test_bad_blocks_say_what_is_wrong(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(**block)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("op", "value", "observed", "passed"),
    [
        ("<", 1, 0.5, True),
        ("<", 1, 1, False),
        ("<=", 1, 1, True),
        (">", 1, 1, False),
        (">=", 1, 1, True),
        ("==", 1, 1, True),
        ("!=", 1, 1, False),
        ("<", 1, math.inf, False),
        ("!=", 1, math.nan, False),
    ],
)
def test_threshold(op: str, value: float, observed: float, passed: bool) -> None:
    assert spec(threshold={"op": op, "value": value}).threshold.holds(observed) is passed


def test_reducers() -> None:
    for how, expected in (("max", 3.0), ("min", 1.0), ("sum", 6.0), ("avg", 2.0)):
        outcome = evaluate_metric(spec(reduce=how), lambda _: result(1, 2, 3))
        assert outcome.value == expected
        assert outcome.message.startswith(f'the {how} of 3 series (x{{pod="p0"}} = 1, ')


def test_a_long_list_of_series_is_cut() -> None:
    outcome = evaluate_metric(spec(), lambda _: result(*range(25)))
    assert "the query returned 25 series" in outcome.message
    assert outcome.message.endswith(", and 15 more")


def test_the_request() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [{"metric": {"job": "api"}, "value": [1700000000.0, "1"]}],
            },
        }
        return httpx.Response(200, json=body)

    client = PrometheusClient(environ={"TOKEN": "t0k"}, transport=httpx.MockTransport(answer))
    gate = spec(query='up{job="api"}', headers={"Authorization": "Bearer ${TOKEN}"})
    outcome = evaluate_metric(gate, client)
    assert outcome.passed and outcome.value == 1.0
    (request,) = seen
    assert request.url.path == "/api/v1/query"
    assert request.url.params["query"] == 'up{job="api"}'
    assert request.headers["authorization"] == "Bearer t0k"
    assert "t0k" not in outcome.message


def test_a_request_that_times_out() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    gate = spec(request_timeout="2s")
    outcome = evaluate_metric(gate, PrometheusClient(transport=httpx.MockTransport(hang)))
    assert not outcome.passed and outcome.retry
    assert outcome.message.startswith(
        "Prometheus at http://prometheus:9090 did not answer within 2s"
    )


def test_a_native_histogram_is_refused() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [
                    {"metric": {"__name__": "latency"}, "histogram": [1700000000.0, {"count": "3"}]}
                ],
            },
        }
        return httpx.Response(200, json=body)

    outcome = evaluate_metric(spec(), PrometheusClient(transport=httpx.MockTransport(answer)))
    assert "latency is a native histogram, not a number" in outcome.message
    assert not outcome.retry

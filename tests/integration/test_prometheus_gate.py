"""The metric gate against a real Prometheus server scraping an exporter that the test serves."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import pytest

from interlock.gates.prometheus import (
    MetricOutcome,
    MetricQueryFailed,
    PrometheusClient,
    QueryResult,
    Series,
    evaluate_metric,
    parse_response,
)
from interlock.spec.metric_gate import MetricGateSpec

if TYPE_CHECKING:
    from tests.support.prometheus import PrometheusServer


def gate(
    prometheus: str, query: str, op: str = "<", value: float = 0.05, **extra: Any
) -> MetricGateSpec:
    return MetricGateSpec.model_validate(
        {
            "prometheus": prometheus,
            "query": query,
            "threshold": {"op": op, "value": value},
            "request_timeout": "5s",
            **extra,
        }
    )


def test_a_passing_threshold(prometheus_server: PrometheusServer) -> None:
    prometheus_server.exporter.set("checkout_error_ratio", 0.01, service="checkout")
    prometheus_server.wait_for_value("checkout_error_ratio", 0.01)
    outcome = evaluate_metric(
        gate(prometheus_server.url, 'checkout_error_ratio{service="checkout"}')
    )
    assert outcome == MetricOutcome(
        passed=True,
        value=0.01,
        message="the value is 0.01, which meets the threshold < 0.05",
    )


def test_a_failing_threshold(prometheus_server: PrometheusServer) -> None:
    prometheus_server.exporter.set("search_error_ratio", 0.2, service="search")
    prometheus_server.wait_for_value("search_error_ratio", 0.2)
    outcome = evaluate_metric(gate(prometheus_server.url, "search_error_ratio * 100", ">=", 90))
    assert not outcome.passed
    assert outcome.value == pytest.approx(20.0)
    assert outcome.message == "the value is 20, which does not meet the threshold >= 90"
    assert outcome.retry


def test_a_scalar_query(prometheus_server: PrometheusServer) -> None:
    outcome = evaluate_metric(gate(prometheus_server.url, "scalar(vector(3))", "==", 3))
    assert outcome.passed and outcome.value == 3.0


def test_a_query_with_no_series(prometheus_server: PrometheusServer) -> None:
    outcome = evaluate_metric(gate(prometheus_server.url, 'up{job="no-such-job"}'))
    assert not outcome.passed
    assert outcome.value is None
    assert outcome.message.startswith("the query returned no series")


def test_several_series_fail_unless_reduced(prometheus_server: PrometheusServer) -> None:
    exporter = prometheus_server.exporter
    exporter.set("pool_saturation", 0.2, pool="a")
    exporter.set("pool_saturation", 0.6, pool="b")
    prometheus_server.wait_for_value("count(pool_saturation)", 2)
    query = "pool_saturation"

    several = evaluate_metric(gate(prometheus_server.url, query, "<", 0.8))
    assert not several.passed
    assert "the query returned 2 series, the gate needs one" in several.message
    assert 'pool_saturation{instance="' in several.message and 'pool="b"} = 0.6' in several.message

    reduced = evaluate_metric(gate(prometheus_server.url, query, "<", 0.8, reduce="max"))
    assert reduced.passed and reduced.value == pytest.approx(0.6)
    assert reduced.message.startswith("the max of 2 series")
    mean = evaluate_metric(gate(prometheus_server.url, query, "<", 0.3, reduce="avg"))
    assert not mean.passed and mean.value == pytest.approx(0.4)


def test_nan_fails_with_an_explanation(prometheus_server: PrometheusServer) -> None:
    outcome = evaluate_metric(gate(prometheus_server.url, "vector(0) / vector(0)"))
    assert not outcome.passed
    assert outcome.value is not None and math.isnan(outcome.value)
    assert "is NaN (not a number" in outcome.message


def test_a_promql_syntax_error_reaches_the_user(prometheus_server: PrometheusServer) -> None:
    outcome = evaluate_metric(gate(prometheus_server.url, "sum(rate(http_requests_total[5m])"))
    assert not outcome.passed
    assert outcome.message.startswith(
        f"Prometheus at {prometheus_server.url} rejected the query (bad_data): "
    )
    assert "parse error" in outcome.message  # Prometheus's own words
    assert not outcome.retry  # polling again cannot fix a syntax error


def test_a_range_vector_is_refused(prometheus_server: PrometheusServer) -> None:
    outcome = evaluate_metric(gate(prometheus_server.url, "up[1m]"))
    assert not outcome.passed
    assert "the query returns a matrix, not a number" in outcome.message


def test_a_wrong_path_is_explained(prometheus_server: PrometheusServer) -> None:
    outcome = evaluate_metric(gate(prometheus_server.url + "/not-prometheus", "up"))
    assert not outcome.passed
    assert "answered HTTP 404: is " in outcome.message


def test_an_unreachable_url() -> None:
    from tests.support.prometheus import free_port

    url = f"http://127.0.0.1:{free_port()}"
    outcome = evaluate_metric(gate(url, "up"))
    assert not outcome.passed
    assert outcome.value is None
    assert outcome.message.startswith(f"cannot connect to Prometheus at {url} (")
    assert "check the prometheus URL and that the server is running" in outcome.message
    assert outcome.retry


def test_header_variables_come_from_the_environment(prometheus_server: PrometheusServer) -> None:
    spec = gate(
        prometheus_server.url, "vector(1)", "==", 1, headers={"Authorization": "Bearer ${TOKEN}"}
    )
    assert evaluate_metric(spec, PrometheusClient(environ={"TOKEN": "s3cret"})).passed
    missing = evaluate_metric(spec, PrometheusClient(environ={}))
    assert not missing.passed and not missing.retry
    assert "no value for ${TOKEN}" in missing.message


def test_the_value_changes_between_polls(prometheus_server: PrometheusServer) -> None:
    exporter = prometheus_server.exporter
    exporter.set("payments_p99_seconds", 2.5)
    prometheus_server.wait_for_value("payments_p99_seconds", 2.5)
    spec = gate(prometheus_server.url, "payments_p99_seconds", "<=", 0.5)
    first = evaluate_metric(spec)
    assert not first.passed and first.value == 2.5

    exporter.set("payments_p99_seconds", 0.3)  # the deploy settles
    polls = [first]
    deadline = time.monotonic() + 20
    while not polls[-1].passed and time.monotonic() < deadline:
        time.sleep(0.5)
        polls.append(evaluate_metric(spec))
    assert polls[-1].passed, polls[-1].message
    assert polls[-1].value == 0.3
    assert {p.value for p in polls} <= {2.5, 0.3}


# --- parsing without a server -------------------------------------------------------


def test_an_api_error_without_a_known_type_is_retried() -> None:
    body = '{"status":"error","errorType":"timeout","error":"query timed out in evaluation"}'
    with pytest.raises(MetricQueryFailed) as caught:
        parse_response("http://p", 503, body)
    assert "rejected the query (timeout): query timed out" in str(caught.value)
    assert caught.value.retry


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (401, "Unauthorized", "answered HTTP 401: check the credentials"),
        (502, "<html>Bad Gateway</html>", "answered HTTP 502 (<html>Bad Gateway</html>)"),
        (200, "<html>login</html>", "did not answer like a Prometheus API"),
        (200, '{"status":"success","data":{"resultType":"vector","result":[{}]}}', "cannot read"),
    ],
)
def test_answers_that_are_not_a_result(status: int, body: str, message: str) -> None:
    outcome = evaluate_metric(
        gate("http://p:9090", "up"), lambda spec: parse_response(spec.prometheus, status, body)
    )
    assert not outcome.passed and message in outcome.message


def test_warnings_are_shown() -> None:
    result = QueryResult("vector", (Series({"job": "a"}, 1.0),), warnings=("partial response",))
    outcome = evaluate_metric(gate("http://p:9090", "up", "==", 1), lambda spec: result)
    assert outcome.passed
    assert outcome.message.endswith("(Prometheus warns: partial response)")


def test_a_proxy_quoting_the_gates_token_where_its_answer_is_cut_shows_no_part_of_it(
    http_target: Any,
) -> None:
    # An auth proxy in front of Prometheus refuses the token and quotes it: the message
    # shows the answer up to a length, and a cut through the token showed its beginning.
    from interlock.gates.prometheus import query_prometheus

    token = "prom-0123456789abcdefghij"
    http_target.status = 401
    http_target.body = "x" * 275 + f" invalid token {token}"
    spec = gate(http_target.url, "up", headers={"Authorization": "Bearer ${PROM_TOKEN}"})
    with pytest.raises(MetricQueryFailed) as caught:
        query_prometheus(spec, environ={"PROM_TOKEN": token})
    assert "answered HTTP 401" in str(caught.value) and token[:8] not in str(caught.value)

"""The metrics API and the Prometheus exposition, over a real server with per-user tokens.

The records are those of tests/integration/test_metrics_db.py (its docstring
lists them with the answers computed by hand).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from interlock.engine.exposition import DeliveryCollector
from tests.integration.test_metrics_db import CONFIG, HOUR, SHA, WEEK, Records, at, seed
from tests.support.api import Api

PERMISSIONS = """\
permissions:
  - {user: prometheus, allow: [metrics.read]}
  - {team: storefront, allow: [metrics.read], services: owned}
  - {user: viewer, allow: [read]}
"""


@pytest.fixture
def api(pilot: Any) -> Any:
    pilot.config(CONFIG + PERMISSIONS)
    seed(pilot.engine)
    harness = Api(pilot.engine, pilot.configs, workers=0).start()
    yield harness
    harness.stop()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_every_metric_with_its_value_unit_n_definition_and_band(api):
    admin = api.admin()
    response = admin.get("/api/v1/metrics", params=WEEK)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"]["environments"] == ["production"]
    assert body["settings"] == {
        "statistic": "median",
        "frequency": "deployments",
        "frequency_unit": "week",
        "restore": "incident",
        "bands": "2024",
        "min_events": 5,
    }
    keys = [m["key"] for m in body["metrics"]]
    assert keys == [
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "time_to_restore",
        "rework_rate",
        "pipeline_run_frequency",
        "approval_wait_p50",
        "approval_wait_p90",
        "manual_step_share",
        "release_concentration",
        "schedule_slip",
    ]
    for metric in body["metrics"]:
        assert {"value", "unit", "n", "definition", "band", "band_note", "display"} <= set(metric)
        assert metric["definition"]
    m = {x["key"]: x for x in body["metrics"]}
    assert (m["lead_time"]["value"], m["lead_time"]["unit"]) == (13 * HOUR, "seconds")
    assert (m["change_failure_rate"]["value"], m["change_failure_rate"]["unit"]) == (
        0.375,
        "fraction",
    )
    assert m["change_failure_rate"]["band"] == "low"
    assert m["deployment_frequency"]["unit"] == "week"


def test_definition_options_are_query_parameters(api):
    admin = api.admin()
    params = {
        **WEEK,
        "statistic": "p90",
        "restore": "deployment",
        "frequency": "days",
        "frequency_unit": "day",
        "bands": "2021",
        "min_events": 3,
    }
    body = admin.get("/api/v1/metrics", params=params).json()
    m = {x["key"]: x for x in body["metrics"]}
    assert m["lead_time"]["value"] == pytest.approx(27.5 * HOUR)
    assert m["lead_time"]["band"] == "high"  # 2021: between one day and one week
    assert m["time_to_restore"]["value"] == pytest.approx(20 * HOUR)  # p90 of 4, 6, 20, 20
    assert m["deployment_frequency"]["value"] == pytest.approx(4 / 7)
    assert body["definitions"]["statistic"] == "90th percentile"
    bad = admin.get("/api/v1/metrics", params={"statistic": "average"})
    assert bad.status_code == 422
    unknown = admin.get("/api/v1/metrics", params={"env": "prod"})
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert unknown.json()["field"] == "env"


def test_metrics_read_is_needed_and_scoped_rules_see_their_services_only(api):
    erin = api.user("erin")  # team storefront: metrics.read for owned services (web)
    body = erin.get("/api/v1/metrics", params=WEEK).json()
    assert body["scope"]["services"] == ["web"]
    m = {x["key"]: x for x in body["metrics"]}
    assert m["change_failure_rate"]["details"]["deployments"] == 4
    assert erin.get("/api/v1/metrics", params={"service": "api"}).status_code == 403
    assert erin.get("/api/v1/metrics", params={"team": "payments"}).status_code == 403
    assert erin.get("/api/v1/metrics", params={"team": "storefront"}).status_code == 200
    assert api.user("viewer").get("/api/v1/metrics").status_code == 403
    assert api.client(None).get("/api/v1/metrics").status_code == 401
    assert api.user("prometheus").get("/api/v1/metrics").status_code == 200


def test_manual_steps_endpoint(api):
    body = api.admin().get("/api/v1/metrics/manual-steps", params=WEEK).json()
    assert [(s["step"], s["runs"], s["waiting"]) for s in body["steps"]] == [
        ("api/smoke-check", 3, 0),
        ("rotate-keys: confirm", 2, 1),
    ]
    assert body["unit"] == "week" and body["definition"]
    limited = api.admin().get("/api/v1/metrics/manual-steps", params={**WEEK, "limit": 1})
    assert len(limited.json()["steps"]) == 1


def test_prometheus_exposition_parses_and_counts_the_records(api):
    scraper = api.user("prometheus")
    response = scraper.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    deployments = "interlock_deployments_total"
    production = {"environment": "production"}
    for service, kind, outcome, count in (
        ("api", "deploy", "succeeded", 4),  # D1, D3, D8, D9
        ("api", "deploy", "failed", 1),
        ("api", "deploy", "rolled_back", 1),
        ("api", "deploy", "cancelled", 1),
        ("web", "deploy", "succeeded", 2),  # D4, D8
        ("web", "rollback", "succeeded", 1),
        ("web", "deploy", "rolled_back", 1),
    ):
        labels = {**production, "service": service, "kind": kind, "outcome": outcome}
        assert value(found, deployments, **labels) == count, labels
    staging = {"environment": "staging", "service": "api", "kind": "deploy"}
    assert value(found, deployments, **staging, outcome="succeeded") == 2

    duration = "interlock_deployment_duration_seconds"
    assert value(found, f"{duration}_count", **production) == 8  # the cancelled one left out
    assert value(found, f"{duration}_sum", **production) == pytest.approx(20 * HOUR)
    assert value(found, f"{duration}_bucket", **production, le="3600.0") == 3  # D2, D5, D9

    lead = "interlock_lead_time_seconds"
    api_production = {"service": "api", "environment": "production"}
    assert value(found, f"{lead}_count", **api_production) == 4  # 12h, 14h, 30h, 0 (skew)
    assert value(found, f"{lead}_bucket", **api_production, le="86400.0") == 3
    assert value(found, f"{lead}_bucket", **api_production, le="+Inf") == 4
    assert value(found, f"{lead}_sum", **api_production) == pytest.approx(56 * HOUR)
    assert value(found, f"{lead}_count", service="api", environment="staging") == 1

    restore = "interlock_time_to_restore_seconds"
    assert value(found, f"{restore}_count", **production) == 3
    assert value(found, f"{restore}_sum", **production) == pytest.approx(17 * HOUR)
    wait = "interlock_approval_wait_seconds"
    assert value(found, f"{wait}_count", **production) == 4
    assert value(found, f"{wait}_sum", **production) == pytest.approx(7.5 * HOUR)

    assert value(found, "interlock_incidents_total", service="web", **production) == 2
    assert value(found, "interlock_incidents_open", service="api", **production) == 1
    assert value(found, "interlock_approvals_waiting", **production) == 1
    for state in ("scheduled", "running", "needs_attention"):
        assert value(found, "interlock_releases_in_progress", state=state) == 0
    steps = "interlock_step_runs_total"
    assert value(found, steps, executor="shell", outcome="succeeded") == 9
    assert value(found, steps, executor="shell", outcome="failed") == 2
    assert value(found, steps, executor="manual", outcome="succeeded") == 4
    assert value(found, steps, executor="runbook", outcome="succeeded") == 1
    assert scraper.get("/metrics").text.count("interlock_deployments_total{") == len(
        [k for k in found if k[0] == deployments]
    )


def test_metrics_endpoint_authentication(api):
    assert api.client(None).get("/metrics").status_code == 401
    assert api.client("not-a-token").get("/metrics").status_code == 401
    assert api.user("viewer").get("/metrics").status_code == 403
    scoped = api.user("erin").get("/metrics")  # metrics.read for web only: /metrics has all
    assert scoped.status_code == 403
    assert "without services: or environments: limits" in scoped.json()["detail"]
    assert api.admin().get("/metrics").status_code == 200
    paths = api.admin().get("/openapi.json").json()["paths"]
    assert {"/metrics", "/api/v1/metrics", "/api/v1/metrics/manual-steps"} <= set(paths)


def test_the_exposition_sums_history_once_and_then_only_what_is_new(pilot):
    pilot.config(CONFIG)
    seed(pilot.engine)
    clock = ManualClock(at(200))
    collector = DeliveryCollector(Engine(pilot.engine.db, clock=clock), lag=600)
    key = ("interlock_deployments_total", frozenset(
        {"service": "api", "environment": "production", "kind": "deploy", "outcome": "succeeded"}
        .items()
    ))  # fmt: skip
    lead = ("interlock_lead_time_seconds_count", frozenset(
        {"service": "api", "environment": "production"}.items()
    ))  # fmt: skip
    first = samples(collector.exposition().decode())
    assert (first[key], first[lead]) == (4, 4)
    with pilot.engine.db.transaction() as tx:  # api@1.0 again, five minutes ago: not a new change
        r = Records(tx)
        again = r.release("alice", 199.8, ("api", "1.0", SHA["a1"]))
        made = r.deployment(again, "production", "succeeded", 199.85, 199.9)
        tx.refresh_delivery([made])  # written past the engine: derive its facts as it would
    second = samples(collector.exposition().decode())
    assert (second[key], second[lead]) == (5, 4)
    clock.advance(timedelta(hours=1).total_seconds())  # it is now behind the mark: summed once
    third = samples(collector.exposition().decode())
    assert (third[key], third[lead]) == (5, 4)
    assert stable(samples(collector.exposition().decode())) == stable(third)


def stable(found: dict[Any, float]) -> dict[Any, float]:
    return {k: v for k, v in found.items() if "scrape_duration" not in k[0]}


def test_the_documented_scrape_permission_and_config_are_valid():
    """The interlock.yaml and prometheus.yml snippets of docs/metrics.md."""
    import re
    from pathlib import Path

    import yaml

    from interlock.spec.gate_specs import Permission

    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    snippets = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", doc, flags=re.S)]
    [rule] = next(s["permissions"] for s in snippets if isinstance(s, dict) and "permissions" in s)
    permission = Permission.model_validate(rule)
    assert permission.allow == ["metrics.read"] and permission.services is None
    [job] = next(s["scrape_configs"] for s in snippets if "scrape_configs" in s)
    assert job["authorization"]["type"] == "Bearer"


def test_a_warmed_collector_s_first_scrape_reads_only_what_is_new(pilot, monkeypatch):
    """`interlock server` sums the history in the background as it starts."""
    from interlock.storage.tx import Tx

    pilot.config(CONFIG)
    seed(pilot.engine)
    clock = ManualClock(at(200))
    cold = samples(DeliveryCollector(Engine(pilot.engine.db, clock=clock)).exposition().decode())
    collector = DeliveryCollector(Engine(pilot.engine.db, clock=clock))
    collector.warm_in_background().join(timeout=30)
    asked: list[float | None] = []
    summed = Tx.metric_totals

    def recording(self: Any, start: float | None, end: float | None, bounds: Any) -> Any:
        asked.append(start)
        return summed(self, start, end, bounds)

    monkeypatch.setattr(Tx, "metric_totals", recording)
    warm = samples(collector.exposition().decode())
    assert asked and None not in asked  # the history was not summed again
    assert stable(warm) == stable(cold)


def test_the_weekly_series_equals_one_metrics_call_per_week(api):
    """One call gives every metric for each week, exactly as /metrics answers that week."""
    for who, params in ((api.admin(), {}), (api.user("erin"), {"team": "storefront"})):
        series = who.get(
            "/api/v1/metrics/series",
            params={**params, "weeks": 3, "until": "2024-03-16", "min_events": 1},
        )
        assert series.status_code == 200, series.text
        body = series.json()
        assert [w["until"][:10] for w in body["weeks"]] == [
            "2024-03-03",
            "2024-03-10",
            "2024-03-17",
        ]
        assert body["settings"]["min_events"] == 1
        by_key = {m["key"]: m for m in body["metrics"]}
        seen = 0
        for i, week in enumerate(body["weeks"]):
            one = who.get("/api/v1/metrics", params={**params, **week, "min_events": 1}).json()
            assert len(one["metrics"]) == len(by_key) == 11
            for metric in one["metrics"]:
                got = by_key[metric["key"]]["weeks"][i]
                assert (got["value"], got["band"], got["n"], got["display"]) == (
                    metric["value"],
                    metric["band"],
                    metric["n"],
                    metric["display"],
                ), (metric["key"], week)
                seen += metric["n"]
        assert seen > 0  # the seeded week has data, so the comparison is not all empty


def test_the_weekly_series_refuses_since_and_out_of_range_weeks(api):
    admin = api.admin()
    refused = admin.get("/api/v1/metrics/series", params={"since": "2024-03-01"})
    assert refused.status_code == 422
    assert refused.json()["field"] == "since"
    assert admin.get("/api/v1/metrics/series", params={"weeks": 0}).status_code == 422
    assert admin.get("/api/v1/metrics/series", params={"weeks": 53}).status_code == 422
    assert api.user("viewer").get("/api/v1/metrics/series").status_code == 403

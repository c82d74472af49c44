"""What ``interlock metrics`` measures: environments, services and period, from what was typed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from interlock.engine.metrics import MetricsRequest, parse_instant, resolve_scope
from interlock.errors import Forbidden, InvalidInput
from interlock.spec.loader import parse_config

NOW = datetime(2024, 6, 15, 12, 30, tzinfo=UTC)
CONFIG = """\
version: 1
environments:
  - name: staging
  - name: eu
    production: true
  - name: us
    production: true
services:
  api: {owner: payments, deploy: [{name: go, run: "true"}]}
  web: {owner: storefront, deploy: [{name: go, run: "true"}]}
  batch: {owner: payments, deploy: [{name: go, run: "true"}]}
"""


def config(text: str = CONFIG):  # type: ignore[no-untyped-def]
    return parse_config(text, Path("interlock.yaml"))


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2024-05-01", False, datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01", True, datetime(2024, 5, 2, tzinfo=UTC)),  # the whole day
        ("2024-05-01T09:00:00Z", True, datetime(2024, 5, 1, 9, tzinfo=UTC)),
        ("2024-05-01T09:00:00+02:00", False, datetime(2024, 5, 1, 7, tzinfo=UTC)),
        ("2024-05-01T09:00:00", False, datetime(2024, 5, 1, 9, tzinfo=UTC)),  # UTC unless said
        ("now", True, NOW),
        ("30d", False, NOW - timedelta(days=30)),
        ("12h", True, NOW - timedelta(hours=12)),
    ],
)
def test_instants_people_type(text, end, expected):
    assert parse_instant(text, now=NOW, end=end, what="since") == expected


def test_production_environments_are_the_default_and_any_can_be_named():
    scope, notes = resolve_scope(config(), MetricsRequest(), now=NOW, first_record=None)
    assert scope.environments == ("eu", "us") and notes == []
    assert scope.until == NOW and scope.since == NOW - timedelta(days=90)
    assert scope.services is None and scope.complete and scope.unplaced_runbooks
    named, _ = resolve_scope(
        config(), MetricsRequest(environment="staging"), now=NOW, first_record=None
    )
    assert named.environments == ("staging",) and not named.unplaced_runbooks
    plain = config(CONFIG.replace("    production: true\n", ""))
    scope, notes = resolve_scope(plain, MetricsRequest(), now=NOW, first_record=None)
    assert scope.environments == ("us",)
    assert notes == ["no environment is marked production: true; measuring the last one, us"]


def test_services_from_a_service_a_team_and_what_the_caller_may_read():
    def services(readable=None, **kw):  # type: ignore[no-untyped-def]
        request = MetricsRequest(**kw)
        scope, _ = resolve_scope(config(), request, now=NOW, first_record=None, readable=readable)
        return scope.services

    assert services(service="web") == ("web",)
    assert services(team="payments") == ("api", "batch")
    assert services(team="payments", service="api") == ("api",)
    assert services(readable={"api", "web"}) == ("api", "web")
    assert services(readable={"api"}, team="payments") == ("api",)
    with pytest.raises(Forbidden):
        services(readable={"web"}, team="payments")
    with pytest.raises(InvalidInput):
        services(team="payments", service="web")


def test_the_period_starts_no_earlier_than_the_records():
    first = datetime(2024, 6, 1, 15, tzinfo=UTC)
    scope, notes = resolve_scope(config(), MetricsRequest(), now=NOW, first_record=first)
    assert scope.since == datetime(2024, 6, 1, tzinfo=UTC)  # that day, from midnight UTC
    assert scope.complete
    assert notes == [
        "the period starts on 2024-06-01, when Interlock's records begin (asked: 2024-03-17)"
    ]
    later, notes = resolve_scope(
        config(), MetricsRequest(since="2024-06-10"), now=NOW, first_record=first
    )
    assert later.since == datetime(2024, 6, 10, tzinfo=UTC) and not later.complete
    assert notes == []
    with pytest.raises(InvalidInput) as caught:
        resolve_scope(config(), MetricsRequest(until="2024-01-01", since="2024-02-01"), now=NOW,
                      first_record=first)  # fmt: skip
    assert caught.value.extra["field"] == "until"

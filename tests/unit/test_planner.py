"""The plan a release follows: order, filters, snapshot."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from interlock.domain.plan import ReleaseItem, ReleasePlan
from interlock.errors import InvalidInput
from interlock.spec.loader import parse_config
from interlock.spec.planner import build_plan

CONFIG = textwrap.dedent("""\
    version: 1
    defaults: {timeout: 2m, retries: 1}
    environments: [{name: dev}, {name: staging}, {name: production, production: true}]
    services:
      api:
        deploy:
          - {name: migrate, run: "migrate {{ version }}", idempotent: true}
          - {name: canary, run: "canary", environments: [production], timeout: 30s}
          - {name: roll-out, http: {url: "http://127.0.0.1:9/deploy"}}
      web:
        deploy:
          - {name: roll-out, uses: noop}
    """)


def plan(*items: ReleaseItem, until: str | None = None, start: str | None = None) -> ReleasePlan:
    config = parse_config(CONFIG, Path("/srv/app/interlock.yaml"))
    return build_plan(
        config, items, config_version=3, base_dir=Path("/srv/app"), until=until, start=start
    )


def test_steps_in_order_with_defaults_and_filters():
    p = plan(ReleaseItem("api", "1.0"))
    assert [e.name for e in p.environments] == ["dev", "staging", "production"]
    assert [n.key for n in p.environments[0].nodes] == ["api/migrate", "api/roll-out"]
    prod = p.environment("production")
    assert [n.key for n in prod.nodes] == ["api/migrate", "api/canary", "api/roll-out"]
    assert prod.nodes[1].needs == ("api/migrate",) and prod.nodes[2].needs == ("api/canary",)
    migrate, canary = prod.nodes[0], prod.nodes[1]
    assert (migrate.timeout, migrate.retries, migrate.idempotent) == (120, 1, True)
    assert (canary.timeout, canary.idempotent) == (30, False)
    assert migrate.spec["cwd"] == "/srv/app" and prod.settings.production is True


def test_until_stops_the_route():
    assert [e.name for e in plan(ReleaseItem("api", "1"), until="staging").environments] == [
        "dev",
        "staging",
    ]
    with pytest.raises(InvalidInput, match="no environment named 'qa'"):
        plan(ReleaseItem("api", "1"), until="qa")


def test_a_route_may_start_part_way_behind_a_promotion_gate():
    p = plan(ReleaseItem("api", "1"), start="staging")
    assert [e.name for e in p.environments] == ["staging", "production"]
    staging, production = p.environments
    assert staging.nodes[0].key == "gate/promotion"
    assert staging.nodes[0].spec == {"previous": "dev"}
    assert staging.nodes[1].needs == ("gate/promotion",)
    assert production.nodes[0].key == "api/migrate"  # inside the route: no check needed
    with pytest.raises(InvalidInput, match="comes before"):
        plan(ReleaseItem("api", "1"), start="production", until="dev")


def test_gates_wrap_the_steps():
    config = parse_config(
        CONFIG.replace(
            "environments: [{name: dev}, {name: staging}, {name: production, production: true}]",
            """environments:
      - name: dev
        gates:
          before:
            - approval: {rules: [{role: leads, count: 2}]}
            - window: {timezone: UTC}
          after:
            - soak: {duration: 5m}
      - name: production
    """,
        ),
        Path("/srv/app/interlock.yaml"),
    )
    p = build_plan(config, [ReleaseItem("api", "1")], config_version=1, base_dir=Path("/srv"))
    dev = p.environments[0]
    assert [n.key for n in dev.nodes] == [
        "gate/approval",
        "gate/window",
        "api/migrate",
        "api/roll-out",
        "gate/soak",
    ]
    assert dev.nodes[2].needs == ("gate/approval", "gate/window")
    assert dev.nodes[4].needs == ("api/roll-out",)
    assert [n.key for n in dev.rollback] == ["rollback/api/migrate", "rollback/api/roll-out"]
    assert dev.nodes[0].spec["rules"][0] == {
        "role": "leads",
        "team": None,
        "owners": False,
        "count": 2,
    }


def test_unknown_or_repeated_services_are_refused():
    with pytest.raises(InvalidInput, match="no service named 'db'.*known: api, web"):
        plan(ReleaseItem("db", "1"))
    with pytest.raises(InvalidInput, match="listed twice"):
        plan(ReleaseItem("api", "1"), ReleaseItem("api", "2"))


def test_snapshot_round_trips():
    original = plan(ReleaseItem("api", "1.0", "sha256:" + "0" * 64), ReleaseItem("web", "2"))
    assert ReleasePlan.from_json(original.to_json()) == original

"""Delivery metrics from Interlock's own records, against hand-computed answers.

The records below are written straight through the storage layer, with exact
times (hours after T0, Monday 2024-03-04 00:00 UTC); the period measured is
the week [T0, T0 + 7 days). One scenario at the end runs the real engine.

Production deployments (F = finished, S = started; hours):

    D1  api@1.0 (a1)              S 8   F 10   succeeded   gate 8->9 (1h)
    D2  api@1.1 (a2)              S 29  F 30   failed      named by I1
    D3  api@1.2 (a3)              S 31  F 34   succeeded   gate 31->33 (2h); manual 33->33.5
    D4  web@2.0 (w1)              S 47  F 50   succeeded   named by I2
    D5  web@1.9   rollback        S 55  F 56   succeeded
    D6  api@1.3                   -     F 80   cancelled (never started)
    D7  api@1.4 + web@2.1         S 96  F 100  rolled_back gate 96->96.5 (30m)
    D8  api@1.4 + web@2.1         S 115 F 120  succeeded   gate 115->119 (4h); manual 119->121
    D9  api@1.5 (a5, skewed)      S 139 F 140  succeeded   manual 139->140; a runbook step
    D10 api@1.6                   S 160 running            gate waiting since 160

Staging: S1 (release of D1) S 2 F 4 and S2 (release of D2) S 20 F 22, succeeded.
Incidents (production): I1 api 30->34 names D2; I2 web 52->55 names D4;
I3 web 96->106 names nothing; I4 api 150->open names nothing.
Commits: a1 -2, a3 20, w1 49, a4 90, w2 95, a5 150 (after its deployment).
Runbook runs (no environment): rotate-keys, "confirm" 100->101.5 and one
waiting since 165; an automated step 99->100.
Releases: D1, D2, D4, D8 by alice; D3, D6 by bob; D5 by carol; D7 by the
service account ci for dave; D9 by ci for nobody. Scheduled: D3's release for
30 (slip +1h), D8's for 116 (-1h), D9's for 138 (+1h).
"""

from __future__ import annotations

import math
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from interlock.domain.plan import ReleasePlan
from interlock.domain.records import Item
from interlock.domain.states import DeploymentState, ReleaseState
from interlock.engine.metrics import MetricsRequest, delivery_report, manual_steps_report
from interlock.errors import InvalidInput
from interlock.metrics import (
    Definitions,
    DeploymentEvent,
    EventFacts,
    IncidentEvent,
    Outcome,
    RestoreFrom,
    Window,
    delivery_metrics,
)
from interlock.storage.metrics import MetricScope
from interlock.storage.schema import nodes
from tests.helpers import running, wait_release_end

T0 = datetime(2024, 3, 4, tzinfo=UTC)
HOUR = 3600.0
WEEK = {"since": "2024-03-04", "until": "2024-03-10"}  # a bare end date includes that day

CONFIG = """\
version: 1
environments:
  - name: staging
  - name: production
    production: true
services:
  api:
    owner: payments
    deploy: [{name: roll-out, run: "true"}]
  web:
    owner: storefront
    deploy: [{name: roll-out, run: "true"}]
teams:
  payments: [dave]
  storefront: [erin]
runbooks:
  rotate-keys:
    steps: [{name: confirm, manual: {role: sre, instructions: check}}]
roles:
  sre: [carol]
"""


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


class Records:
    """Writes releases, deployments, steps and incidents with exact times."""

    def __init__(self, tx: Any) -> None:
        self.tx = tx
        self.config_version = tx.latest_config().version

    def release(
        self,
        by: str,
        created: float,
        *items: tuple[str, str, str | None],
        kind: str = "deploy",
        scheduled: float | None = None,
        on_behalf_of: str | None = None,
    ) -> int:
        return int(
            self.tx.insert_release(
                reason="TEST-1",
                created_by=by,
                at=at(created),
                state=ReleaseState.SUCCEEDED,
                config_version=self.config_version,
                plan=ReleasePlan(config_version=self.config_version, items=(), environments=()),
                items=[Item(s, v, None, sha) for s, v, sha in items],
                scheduled_at=at(scheduled) if scheduled is not None else None,
                on_behalf_of=on_behalf_of,
                kind=kind,
            )
        )

    def deployment(
        self,
        release_id: int,
        environment: str,
        state: str,
        started: float | None,
        finished: float | None,
        *,
        kind: str = "deploy",
        created: float | None = None,
    ) -> int:
        begin = created if created is not None else (started if started is not None else 0)
        return int(
            self.tx.insert_deployment(
                release_id=release_id,
                kind=kind,
                environment=environment,
                env_index=1 if environment == "production" else 0,
                state=DeploymentState(state),
                created_by="tester",
                at=at(begin),
                started_at=at(started) if started is not None else None,
                finished_at=at(finished) if finished is not None else None,
                settings={"production": environment == "production"},
            )
        )

    def runbook_run(self, started: float, finished: float | None) -> int:
        return int(
            self.tx.insert_deployment(
                release_id=None,
                kind="runbook",
                environment=None,
                env_index=0,
                state=DeploymentState.SUCCEEDED if finished else DeploymentState.RUNNING,
                created_by="carol",
                at=at(started),
                started_at=at(started),
                finished_at=at(finished) if finished is not None else None,
                runbook="rotate-keys",
                settings={"on_failure": "fail"},
            )
        )

    def node(
        self,
        deployment_id: int,
        key: str,
        started: float | None,
        finished: float | None,
        *,
        executor: str = "shell",
        state: str = "succeeded",
    ) -> None:
        gate = executor == "approval"
        self.tx.conn.execute(
            nodes.insert().values(
                deployment_id=deployment_id,
                key=key,
                kind="gate" if gate else "step",
                service=None if gate or "/" not in key else key.split("/")[0],
                name=key.split("/")[-1],
                phase="before" if gate else "deploy",
                position=0,
                needs=[],
                unmet=0,
                dependents=[],
                executor=executor,
                spec={},
                timeout=600.0,
                max_attempts=1,
                backoff=5.0,
                idempotent=False,
                state=state,
                attempt=1,
                fence=1,
                cancel_requested=False,
                started_at=at(started) if started is not None else None,
                finished_at=at(finished) if finished is not None else None,
            )
        )

    def artifact(self, service: str, version: str, sha: str, committed: float) -> None:
        self.tx.add_artifact(
            service=service,
            version=version,
            digest="sha256:" + sha[0] * 64,
            commit=sha,
            repo=None,
            build_url=None,
            committed_at=at(committed),
            at=at(committed),
            by="ci",
        )

    def incident(
        self,
        service: str,
        opened: float,
        resolved: float | None,
        deployment_id: int | None,
        environment: str = "production",
    ) -> None:
        found = self.tx.open_incident(
            service=service,
            environment=environment,
            summary="broken",
            at=at(opened),
            by="tester",
            deployment_id=deployment_id,
            release_id=None,
        )
        if resolved is not None:
            self.tx.resolve_incident(
                found.id, resolved_at=at(resolved), resolved_by="tester", resolution="manual"
            )


SHA = {name: name[0] * 39 + name[1] for name in ("a1", "a2", "a3", "a4", "a5", "a6", "w1", "w2")}


def seed(engine: Any) -> dict[str, int]:
    """The records of the module docstring; returns the deployment ids by name."""
    from interlock.engine.identity import Identity

    Identity(engine).add_user(actor="test", name="ci", kind="service")
    ids: dict[str, int] = {}
    with engine.db.transaction() as tx:
        r = Records(tx)
        for service, version, sha, committed in (
            ("api", "1.0", "a1", -2),
            ("api", "1.2", "a3", 20),
            ("web", "2.0", "w1", 49),
            ("api", "1.4", "a4", 90),
            ("web", "2.1", "w2", 95),
            ("api", "1.5", "a5", 150),
        ):
            r.artifact(service, version, SHA[sha], committed)
        r1 = r.release("alice", 1, ("api", "1.0", SHA["a1"]))
        ids["S1"] = r.deployment(r1, "staging", "succeeded", 2, 4)
        ids["D1"] = r.deployment(r1, "production", "succeeded", 8, 10)
        r.node(ids["D1"], "gate/approval", 8, 9, executor="approval")
        r.node(ids["D1"], "api/roll-out", 9, 10)
        r2 = r.release("alice", 19, ("api", "1.1", SHA["a2"]))
        ids["S2"] = r.deployment(r2, "staging", "succeeded", 20, 22)
        ids["D2"] = r.deployment(r2, "production", "failed", 29, 30)
        r.node(ids["D2"], "api/roll-out", 29, 30, state="failed")
        r3 = r.release("bob", 28, ("api", "1.2", SHA["a3"]), scheduled=30)
        ids["D3"] = r.deployment(r3, "production", "succeeded", 31, 34)
        r.node(ids["D3"], "gate/approval", 31, 33, executor="approval")
        r.node(ids["D3"], "api/roll-out", 33, 34)
        r.node(ids["D3"], "api/smoke-check", 33, 33.5, executor="manual")
        r4 = r.release("alice", 46, ("web", "2.0", SHA["w1"]))
        ids["D4"] = r.deployment(r4, "production", "succeeded", 47, 50)
        r.node(ids["D4"], "web/roll-out", 49, 50)
        r5 = r.release("carol", 54, ("web", "1.9", None), kind="rollback")
        ids["D5"] = r.deployment(r5, "production", "succeeded", 55, 56, kind="rollback")
        r.node(ids["D5"], "rollback/web/roll-out", 55, 56)
        r6 = r.release("bob", 78, ("api", "1.3", None))
        ids["D6"] = r.deployment(r6, "production", "cancelled", None, 80, created=79)
        r.node(ids["D6"], "gate/approval", 79, 80, executor="approval", state="cancelled")
        items = (("api", "1.4", SHA["a4"]), ("web", "2.1", SHA["w2"]))
        r7 = r.release("ci", 95, *items, on_behalf_of="dave")
        ids["D7"] = r.deployment(r7, "production", "rolled_back", 96, 100)
        r.node(ids["D7"], "gate/approval", 96, 96.5, executor="approval")
        r.node(ids["D7"], "api/roll-out", 97, 98)
        r.node(ids["D7"], "web/roll-out", 98, 99, state="failed")
        r8 = r.release("alice", 114, *items, scheduled=116)
        ids["D8"] = r.deployment(r8, "production", "succeeded", 115, 120)
        r.node(ids["D8"], "gate/approval", 115, 119, executor="approval")
        r.node(ids["D8"], "api/roll-out", 119, 120)
        r.node(ids["D8"], "web/roll-out", 119, 120)
        r.node(ids["D8"], "api/smoke-check", 119, 121, executor="manual")
        r9 = r.release("ci", 137, ("api", "1.5", SHA["a5"]), scheduled=138)
        ids["D9"] = r.deployment(r9, "production", "succeeded", 139, 140)
        r.node(ids["D9"], "api/roll-out", 139, 140)
        r.node(ids["D9"], "api/smoke-check", 139, 140, executor="manual")
        r.node(ids["D9"], "api/rotate", 139, 140, executor="runbook")
        r10 = r.release("alice", 159, ("api", "1.6", None))
        ids["D10"] = r.deployment(r10, "production", "running", 160, None)
        r.node(ids["D10"], "gate/approval", 160, None, executor="approval", state="waiting")
        run1 = r.runbook_run(99, 101.5)
        r.node(run1, "check-logs", 99, 100)
        r.node(run1, "confirm", 100, 101.5, executor="manual")
        run2 = r.runbook_run(165, None)
        r.node(run2, "confirm", 165, None, executor="manual", state="waiting")
        r.incident("api", 30, 34, ids["D2"])
        r.incident("web", 52, 55, ids["D4"])
        r.incident("web", 96, 106, None)
        r.incident("api", 150, None, None)
        tx.rebuild_delivery()  # records written straight into the tables, as an import would
    return ids


def report(engine: Any, **options: Any) -> dict[str, Any]:
    settings = {k: options.pop(k) for k in list(options) if k in DEFINITION_KEYS}
    if "env" in options:
        options["environment"] = options.pop("env")
    request = MetricsRequest(**{**WEEK, **options}, definitions=Definitions.parse(**settings))
    found = delivery_report(engine, request).as_dict()
    return {**found, "by_key": {m["key"]: m for m in found["metrics"]}}


DEFINITION_KEYS = (
    "statistic",
    "frequency_unit",
    "frequency_count",
    "restore_from",
    "bands",
    "min_events",
)


@pytest.fixture
def seeded(pilot: Any) -> Any:
    pilot.config(CONFIG)
    pilot.ids = seed(pilot.engine)
    return pilot


def approx_hours(value: float | None, hours: float) -> None:
    assert value is not None
    assert value == pytest.approx(hours * HOUR, abs=1e-3)


def test_the_four_keys_and_rework_under_the_default_definitions(seeded):
    found = report(seeded.engine)
    m = found["by_key"]
    assert found["scope"]["environments"] == ["production"]
    assert found["scope"]["period"] == "2024-03-04 to 2024-03-10 (UTC, 7 days)"
    assert found["notes"] == []

    frequency = m["deployment_frequency"]
    assert frequency["value"] == pytest.approx(6.0)  # six successful in seven days
    assert (frequency["n"], frequency["unit"], frequency["band"]) == (6, "week", "elite")
    assert frequency["details"]["deployment_days"] == 4

    lead = m["lead_time"]  # [0 (skewed), 1, 12, 14, 25, 30] hours
    approx_hours(lead["value"], 13)
    assert (lead["n"], lead["band"], lead["details"]["clock_skew"]) == (6, "elite", 1)
    assert "1 commit(s) dated after their deployment (clock skew) count as 0" in lead["definition"]

    failures = m["change_failure_rate"]  # D2 failed, D7 rolled back, D4 named by I2
    assert failures["value"] == pytest.approx(3 / 8)
    assert (failures["n"], failures["band"]) == (8, "low")
    assert failures["details"] == {
        "deployments": 8,
        "change_failures": 3,
        "failed_or_rolled_back": 2,
        "followed_by_hotfix": 0,
        "named_by_incident": 2,
        "incidents_without_deployment": 2,
    }
    assert "2 incident(s) name no deployment" in failures["definition"]

    restore = m["time_to_restore"]  # incidents resolved after 4h, 3h, 10h; one open
    approx_hours(restore["value"], 4)
    assert (restore["n"], restore["band"]) == (3, None)
    assert restore["band_note"] == "not enough data (n=3)"
    assert "1 unresolved incident(s) not counted" in restore["definition"]

    rework = m["rework_rate"]  # D5 rolled back; D3 and D7 started during I1 and I3
    assert rework["value"] == pytest.approx(3 / 8)
    assert rework["details"] == {"deployments": 8, "rework": 3}


def test_pipeline_runs_every_outcome_per_pipeline_and_environment(seeded):
    m = report(seeded.engine)["by_key"]["pipeline_run_frequency"]
    assert m["value"] == pytest.approx(10.0) and m["n"] == 10  # ten runs in one week
    rows = {(r["pipeline"], r["environment"]): r for r in m["details"]["pipelines"]}
    assert set(rows) == {
        ("api", "production"),
        ("web", "production"),
        ("web (rollback)", "production"),
    }
    api, web, back = (
        rows[("api", "production")],
        rows[("web", "production")],
        rows[("web (rollback)", "production")],
    )
    assert (api["runs"], api["failed"]) == (6, 2)  # D6 never started: not a run
    gaps = [21.0, 2.0, 65.0, 19.0, 24.0]  # starts 8, 29, 31, 96, 115, 139
    assert api["gap_variation"] == pytest.approx(
        statistics.pstdev(gaps) / statistics.mean(gaps), rel=1e-6
    )
    assert (web["runs"], web["failed"]) == (3, 1)
    assert web["gap_variation"] == pytest.approx(15 / 34, rel=1e-6)  # gaps 49, 19
    assert (back["runs"], back["failed"], back["gap_variation"]) == (1, 0, None)


def test_coordination_metrics(seeded):
    m = report(seeded.engine)["by_key"]
    p50, p90 = m["approval_wait_p50"], m["approval_wait_p90"]  # 30m, 1h, 2h, 4h; one waiting
    approx_hours(p50["value"], 1.5)
    approx_hours(p90["value"], 3.4)
    assert (p50["n"], p50["details"]["waiting"]) == (4, 1)
    assert "1 still waiting, not counted" in p50["definition"]

    manual = m["manual_step_share"]  # 3 pipeline + 1 runbook manual steps of 15 step runs
    assert manual["value"] == pytest.approx(4 / 15)
    assert manual["details"] == {"manual": 4, "automated": 11}

    # alice 4, bob 1 (D6 was cancelled before it started: it reached nothing), carol 1,
    # dave 1; ci for nobody
    people = m["release_concentration"]
    assert people["value"] == pytest.approx(4 / 7) and people["n"] == 7
    details = people["details"]
    assert (details["top_person"], details["distinct_people"], details["bus_factor"]) == (
        "alice",
        4,
        1,
    )
    assert details["unknown"] == 1

    slip = m["schedule_slip"]  # +1h, -1h, +1h
    approx_hours(slip["value"], 1)
    assert slip["n"] == 3
    assert slip["details"]["late"] == 2


@pytest.mark.parametrize(
    ("statistic", "lead", "restore", "slip"),
    [
        ("median", 13, 4, 1),
        ("mean", 82 / 6, 17 / 3, 1 / 3),
        ("p90", 27.5, 8.8, 1),  # lead: rank 4.5 of 0,1,12,14,25,30; restore: rank 1.8 of 3,4,10
    ],
)
def test_each_statistic(seeded, statistic, lead, restore, slip):
    m = report(seeded.engine, statistic=statistic)["by_key"]
    approx_hours(m["lead_time"]["value"], lead)
    approx_hours(m["time_to_restore"]["value"], restore)
    approx_hours(m["schedule_slip"]["value"], slip)
    words = {"median": "median", "mean": "mean", "p90": "90th percentile"}[statistic]
    assert m["lead_time"]["definition"].startswith(words)


def test_deployment_days_per_unit(seeded):
    m = report(seeded.engine, frequency_count="days", frequency_unit="day")["by_key"]
    frequency = m["deployment_frequency"]
    assert frequency["value"] == pytest.approx(4 / 7)  # days 0, 1, 2 and 5
    assert (frequency["n"], frequency["unit"]) == (4, "day")
    assert frequency["band_note"] == "not enough data (n=4)"
    assert frequency["definition"].startswith("days with at least one successful deployment")


def test_time_to_restore_from_failed_deployment_to_the_next_good_one(seeded):
    m = report(seeded.engine, restore_from="deployment")["by_key"]["time_to_restore"]
    # api: D2 30 -> D3 34 (4h), D7 100 -> D8 120 (20h); web: D4 50 (named) -> D5 56 (6h),
    # D7 -> D8 (20h)
    approx_hours(m["value"], 13)
    assert m["n"] == 4
    assert m["details"]["not_restored"] == 0
    assert "next good deployment of the same service" in m["definition"]
    mean = report(seeded.engine, restore_from="deployment", statistic="mean")["by_key"]
    approx_hours(mean["time_to_restore"]["value"], 12.5)


def test_an_episode_ends_after_the_period_or_not_at_all(seeded):
    # D7 fails at 100 inside the period; the good D8 at 120 comes after it and still counts
    restore = report(seeded.engine, restore_from="deployment", until="2024-03-08T12:00:00Z")
    assert restore["by_key"]["time_to_restore"]["n"] == 4
    with seeded.engine.db.transaction() as tx:  # D8 failed too: web never recovers
        tx.update_deployment(seeded.ids["D8"], DeploymentState.SUCCEEDED, state="failed")
        tx.refresh_delivery([seeded.ids["D8"]])
    restore = report(seeded.engine, restore_from="deployment")["by_key"]["time_to_restore"]
    # api: D2 -> D3 (4h), D7 -> D9 (40h); web: D4 -> D5 (6h), D7 -> nothing
    assert (restore["n"], restore["details"]["not_restored"]) == (3, 1)
    approx_hours(restore["value"], 6)
    assert "1 failure(s) not yet followed by a good deployment" in restore["definition"]


@pytest.mark.parametrize(
    ("bands", "frequency", "lead", "failures"),
    [
        ("2021", "elite", "high", "low"),  # 13h: 2021 has a gap between 1 hour and 1 day
        ("2023", "elite", "elite", "low"),
        ("2024", "elite", "elite", "low"),
        ("none", None, None, None),
    ],
)
def test_each_report_s_bands(seeded, bands, frequency, lead, failures):
    m = report(seeded.engine, bands=bands)["by_key"]
    assert m["deployment_frequency"]["band"] == frequency
    assert m["lead_time"]["band"] == lead
    assert m["change_failure_rate"]["band"] == failures
    if bands == "none":
        assert m["lead_time"]["band_note"] == "no bands chosen"
    else:
        assert m["lead_time"]["band_note"].startswith(f"DORA {bands}: ")


def test_min_events_decides_when_there_is_enough_data(seeded):
    m = report(seeded.engine, min_events=3)["by_key"]
    assert m["time_to_restore"]["band"] == "high"  # 4h: less than one day
    m = report(seeded.engine, min_events=9)["by_key"]
    assert m["change_failure_rate"]["band_note"] == "not enough data (n=8)"


def test_filters_by_service_team_environment_and_period(seeded):
    web = report(seeded.engine, service="web")
    assert web["scope"]["services"] == ["web"]
    m = web["by_key"]
    # D4, D5 (rollback), D7, D8: three succeeded; D7 failed, D4 named by I2
    assert m["change_failure_rate"]["details"]["deployments"] == 4
    assert m["change_failure_rate"]["value"] == pytest.approx(2 / 4)
    approx_hours(m["lead_time"]["value"], 13)  # w1 1h, w2 25h
    assert m["time_to_restore"]["n"] == 2  # I2 and I3
    assert report(seeded.engine, team="storefront")["by_key"] == m

    staging = report(seeded.engine, env="staging")["by_key"]
    assert staging["deployment_frequency"]["n"] == 2
    assert staging["change_failure_rate"]["value"] == 0
    assert staging["time_to_restore"]["value"] is None  # no incidents there
    assert staging["time_to_restore"]["display"] == "no data"
    assert staging["lead_time"]["n"] == 1  # a1 reached staging at 4h; a2 has no commit time
    assert "1 deployed change(s) have no commit time" in staging["lead_time"]["definition"]

    first_days = report(seeded.engine, until="2024-03-05")["by_key"]  # 48 hours
    assert first_days["change_failure_rate"]["details"]["deployments"] == 3  # D1, D2, D3
    assert first_days["deployment_frequency"]["value"] == pytest.approx(2 / 2 * 7)


def test_scope_problems_are_reported_with_the_field(seeded):
    for options, field in (
        ({"env": "prod"}, "env"),
        ({"service": "nope"}, "service"),
        ({"team": "nobody"}, "team"),
        ({"team": "payments", "service": "web"}, "team"),
        ({"since": "yesterday-ish"}, "since"),
        ({"since": "2024-03-09", "until": "2024-03-05"}, "until"),
    ):
        with pytest.raises(InvalidInput) as caught:
            report(seeded.engine, **options)
        assert caught.value.extra["field"] == field, options


def test_the_period_never_starts_before_the_records(seeded):
    found = report(seeded.engine, since="2024-01-01")
    assert found["scope"]["since"] == "2024-03-04T00:00:00+00:00"
    assert found["notes"] == [
        "the period starts on 2024-03-04, when Interlock's records begin (asked: 2024-01-01)"
    ]
    assert found["by_key"]["deployment_frequency"]["value"] == pytest.approx(6.0)


def test_manual_steps_ranked_by_what_they_cost_people(seeded):
    request = MetricsRequest(**WEEK)
    found = manual_steps_report(seeded.engine, request)
    steps = [
        (s["step"], s["runs"], s["signed_off"], s["waiting"], s["median_signoff"])
        for s in found["steps"]
    ]
    assert steps == [
        ("api/smoke-check", 3, 3, 0, 1 * HOUR),  # 30m, 2h, 1h: 3h30m in all
        ("rotate-keys: confirm", 2, 1, 1, 1.5 * HOUR),  # 1h30m, and one still waiting
    ]
    assert found["steps"][0]["total_signoff"] == pytest.approx(3.5 * HOUR)
    assert found["steps"][0]["per_unit"] == pytest.approx(3.0)  # per week
    assert found["steps"][0]["median_signoff_display"] == "1h"
    assert found["more"] is False
    top = manual_steps_report(seeded.engine, request, limit=1)  # the ranking says it was cut
    assert [s["step"] for s in top["steps"]] == ["api/smoke-check"] and top["more"] is True
    only_production = manual_steps_report(
        seeded.engine, MetricsRequest(**WEEK, environment="production")
    )
    assert [s["step"] for s in only_production["steps"]] == ["api/smoke-check"]


def test_time_to_restore_agrees_with_the_metric_library_in_memory(seeded):
    """The same history as events: EventFacts and the SQL restore the same way."""

    def deployment(name: str, service: str, outcome: Outcome, finished: float, **kw: Any) -> Any:
        return DeploymentEvent(name, service, at(finished), outcome, **kw)

    ok, failed, back = Outcome.SUCCEEDED, Outcome.FAILED, Outcome.ROLLED_BACK
    events = [
        deployment("D1", "api", ok, 10),
        deployment("D2", "api", failed, 30),
        deployment("D3", "api", ok, 34),
        deployment("D4", "web", ok, 50),
        deployment("D5", "web", ok, 56),
        deployment("D6", "api", Outcome.CANCELLED, 80),
        deployment("D7", "api", back, 100),
        deployment("D7w", "web", back, 100),
        deployment("D8", "api", ok, 120),
        deployment("D8w", "web", ok, 120),
        deployment("D9", "api", ok, 140),
    ]
    incidents = [
        IncidentEvent("I1", at(30), at(34), "api", deployment_id="D2"),
        IncidentEvent("I2", at(52), at(55), "web", deployment_id="D4"),
        IncidentEvent("I3", at(96), at(106), "web"),
        IncidentEvent("I4", at(150), None, "api"),
    ]
    window = Window(T0, T0 + timedelta(days=7))
    memory = EventFacts(deployments=events, incidents=incidents, window=window)
    scope = MetricScope(("production",), window.since, window.until, complete=True)
    for restore in RestoreFrom:
        definitions = Definitions(restore_from=restore)
        with seeded.engine.db.read() as tx:
            sql = delivery_metrics(tx.delivery_facts(scope), definitions)
        expected = delivery_metrics(memory, definitions)
        # D7 and D8 are one deployment each in the records, two (one per service) as events
        assert sql[3].value == pytest.approx(expected[3].value)  # time to restore
        assert sql[3].n == expected[3].n


def test_an_empty_database_has_no_data_anywhere(pilot):
    pilot.config(CONFIG)
    found = report(pilot.engine)
    for metric in found["metrics"]:
        assert metric["n"] == 0, metric["key"]
        if metric["key"] == "deployment_frequency":  # none in the week asked for
            assert metric["value"] == 0 and metric["band_note"] == "not enough data (n=0)"
        else:
            assert metric["value"] is None, metric["key"]
            assert metric["display"] == "no data"


def test_one_deployment_and_no_incidents(pilot):
    pilot.config(CONFIG)
    with pilot.engine.db.transaction() as tx:
        r = Records(tx)
        r.artifact("api", "1.0", SHA["a1"], 1)
        release = r.release("alice", 1, ("api", "1.0", SHA["a1"]))
        r.deployment(release, "production", "succeeded", 2, 3)
        tx.rebuild_delivery()
    m = report(pilot.engine)["by_key"]
    frequency = m["deployment_frequency"]
    assert frequency["value"] == pytest.approx(1.0)  # one in the week asked for
    assert frequency["band_note"] == "not enough data (n=1)"
    approx_hours(m["lead_time"]["value"], 2)
    assert m["change_failure_rate"]["value"] == 0
    assert m["change_failure_rate"]["details"]["incidents_without_deployment"] == 0
    assert m["time_to_restore"]["value"] is None
    assert m["rework_rate"]["value"] == 0
    assert math.isclose(m["pipeline_run_frequency"]["value"], 1.0)
    assert m["release_concentration"]["details"]["bus_factor"] == 1


def test_a_version_deployed_before_the_period_is_not_a_new_change(pilot):
    pilot.config(CONFIG)
    with pilot.engine.db.transaction() as tx:
        r = Records(tx)
        r.artifact("api", "1.0", SHA["a1"], -30)
        first = r.release("alice", -26, ("api", "1.0", SHA["a1"]))
        r.deployment(first, "production", "succeeded", -25, -24)  # before the period
        again = r.release("alice", 10, ("api", "1.0", SHA["a1"]))
        r.deployment(again, "production", "succeeded", 11, 12)
        tx.rebuild_delivery()
    m = report(pilot.engine)["by_key"]
    assert m["deployment_frequency"]["n"] == 1
    assert m["lead_time"]["n"] == 0
    m = report(pilot.engine, since="2024-03-03")["by_key"]
    approx_hours(m["lead_time"]["value"], 6)  # -30 -> -24: the first deployment only


def test_the_real_engine_records_what_the_metrics_need(pilot):
    """Releases run by the engine: a failure opens an incident, the fix resolves it."""
    from interlock.engine.artifacts import register

    pilot.config(
        """\
        version: 1
        environments:
          - name: staging
          - name: production
            production: true
            on_failure: fail
        services:
          api:
            deploy:
              - name: roll-out
                run: "test {{ environment }}-{{ version }} != production-2.0"
        """
    )
    committed = pilot.engine.clock.now() - timedelta(hours=2)
    for version, sha in (("1.0", "a" * 40), ("2.0", "b" * 40), ("2.1", "c" * 40)):
        register(
            pilot.engine,
            actor="ci",
            service="api",
            version=version,
            digest="sha256:" + sha[0] * 64,
            commit=sha,
            committed_at=committed,
        )
    with running(pilot.engine):
        for ref in ("api@1.0", "api@2.0", "api@2.1"):
            wait_release_end(pilot.engine, pilot.release(ref).id, timeout=30)
    with pilot.read() as tx:
        [incident] = tx.list_incidents()
    assert incident.resolution == "fix" and incident.deployment_id is not None
    found = delivery_report(pilot.engine, MetricsRequest()).as_dict()
    m = {x["key"]: x for x in found["metrics"]}
    assert m["deployment_frequency"]["n"] == 2
    assert m["change_failure_rate"]["details"] == {
        "deployments": 3,
        "change_failures": 1,
        "failed_or_rolled_back": 1,
        "followed_by_hotfix": 0,
        "named_by_incident": 1,
        "incidents_without_deployment": 0,
    }
    assert m["time_to_restore"]["n"] == 1
    assert m["rework_rate"]["details"]["rework"] == 1  # 2.1 deployed while the incident was open
    assert m["lead_time"]["n"] == 2  # 1.0 and 2.1; 2.0 never succeeded
    assert 2 * HOUR <= m["lead_time"]["value"] < 3 * HOUR
    assert m["pipeline_run_frequency"]["n"] == 3
    assert m["manual_step_share"]["details"] == {"manual": 0, "automated": 3}
    assert m["release_concentration"]["details"]["top_person"] == "alice"
    restore = delivery_report(
        pilot.engine, MetricsRequest(definitions=Definitions(restore_from=RestoreFrom.DEPLOYMENT))
    ).metrics[3]
    assert restore.n == 1
    assert delivery_snapshot(pilot) == rebuilt_snapshot(pilot)


DELIVERY_TABLES = (
    "delivery_facts",
    "delivery_gates",
    "delivery_steps",
    "delivery_days",
    "delivery_people",
    "delivery_step_days",
    "delivery_manual",
)


def delivery_snapshot(pilot: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every delivery fact and sum (without surrogate ids), in a stable order."""
    from interlock.storage import schema

    found = {}
    with pilot.read() as tx:
        for name in DELIVERY_TABLES:
            table = getattr(schema, name)
            columns = [c for c in table.c if c.name != "id"]
            rows = tx.conn.execute(select(*columns)).all()
            found[name] = sorted(
                tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows
            )
    return found


def forget_facts(tx: Any) -> None:
    """Empty every delivery table, as if the facts had never been kept."""
    for name in DELIVERY_TABLES:
        tx.conn.exec_driver_sql(f"DELETE FROM {name}")


def rebuilt_snapshot(pilot: Any) -> dict[str, list[tuple[Any, ...]]]:
    with pilot.engine.db.transaction() as tx:
        tx.rebuild_delivery()
    return delivery_snapshot(pilot)


def test_facts_kept_one_deployment_at_a_time_equal_a_rebuild(seeded):
    """Refreshing deployments one by one, in any order, gives what a rebuild gives."""
    import random

    expected = delivery_snapshot(seeded)
    assert len(expected["delivery_facts"]) == 13  # 11 finished deployments, 2 of 2 services
    with seeded.read() as tx:  # the deployments and the runbook runs
        ids = list(tx.conn.exec_driver_sql("SELECT id FROM deployments").scalars())
    random.Random(5).shuffle(ids)
    with seeded.engine.db.transaction() as tx:
        forget_facts(tx)
        for deployment_id in ids:
            tx.refresh_delivery([deployment_id])
    assert delivery_snapshot(seeded) == expected
    # and an incident opened back in time marks the deploys that started since as rework
    with seeded.engine.db.transaction() as tx:
        Records(tx).incident("web", 40, 48, None)  # D4 started at 47
    after = report(seeded.engine)["by_key"]["rework_rate"]["details"]["rework"]
    assert after == 4
    assert delivery_snapshot(seeded) == rebuilt_snapshot(seeded)


def test_overlapping_transactions_refreshing_one_day_both_count(seeded):
    """Two deployments of the same day and environment finish in overlapping
    transactions, as workers on two machines do: both commit, and the day's
    sums hold both (on PostgreSQL the second used to fail on a duplicate day row,
    or sum without the first's uncommitted facts)."""
    import threading

    expected = delivery_snapshot(seeded)
    db = seeded.engine.db
    late = {seeded.ids["D2"], seeded.ids["D3"]}  # production, both on Tuesday
    with db.transaction() as tx:
        ids = set(tx.conn.exec_driver_sql("SELECT id FROM deployments").scalars())
        forget_facts(tx)
        tx.refresh_delivery(ids - late)
    first_refreshed, second_started = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def finish(name: str, hold: bool) -> None:
        try:
            if not hold:
                first_refreshed.wait(10)
                second_started.set()
            with db.transaction() as tx:
                tx.refresh_delivery([seeded.ids[name]])
                if hold:  # keep this transaction open while the other one refreshes
                    first_refreshed.set()
                    second_started.wait(10)
                    time.sleep(0.3)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [
        threading.Thread(target=finish, args=("D2", True)),
        threading.Thread(target=finish, args=("D3", False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert delivery_snapshot(seeded) == expected


def test_interlock_db_rebuild_metrics_derives_the_facts_again(seeded):
    """An operator who wrote records by hand asks for the facts again, from the CLI."""
    import subprocess
    import sys
    from pathlib import Path

    expected = delivery_snapshot(seeded)
    measured = report(seeded.engine)["by_key"]
    with seeded.engine.db.transaction() as tx:
        forget_facts(tx)
    assert report(seeded.engine)["by_key"]["deployment_frequency"]["n"] == 0
    interlock = str(Path(sys.executable).parent / "interlock")
    done = subprocess.run(
        [interlock, "db", "rebuild-metrics", "--database-url", seeded.engine.db.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "13 delivery facts" in done.stdout
    assert delivery_snapshot(seeded) == expected
    assert report(seeded.engine)["by_key"] == measured

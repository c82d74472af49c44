"""Plans and environment settings are read through typed, frozen objects, never by key."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from interlock.domain.plan import EnvironmentPlan, EnvironmentSettings, ReleaseItem, ReleasePlan
from interlock.domain.records import Deployment, Release
from interlock.domain.states import DeploymentState, ReleaseState

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_settings_stored_by_an_older_version_read_with_defaults() -> None:
    # A runbook run stored only this; keys a later version added are not there.
    settings = EnvironmentSettings.from_json({"on_failure": "fail", "something_new": 1})
    assert settings == EnvironmentSettings(on_failure="fail")
    assert (settings.production, settings.concurrency, settings.parallel) == (False, "queue", 0)
    assert settings.rollback_during_freeze is True and settings.deadline is None
    assert EnvironmentSettings.from_json(None) == EnvironmentSettings()


def test_settings_survive_their_json_and_are_frozen() -> None:
    settings = EnvironmentSettings(
        production=True,
        concurrency="refuse",
        previous="staging",
        on_failure="rollback_service",
        deadline=90.0,
        parallel=2,
        services=3,
        depends={"web": ["api"]},
        require_artifacts=True,
    )
    assert EnvironmentSettings.from_json(settings.to_json()) == settings
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.on_failure = "pause"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("parallel", "services", "limited"), [(0, 9, False), (4, 4, False), (2, 3, True)]
)
def test_a_train_is_limited_when_it_has_more_services_than_may_deploy_at_once(
    parallel: int, services: int, limited: bool
) -> None:
    assert EnvironmentSettings(parallel=parallel, services=services).limits_parallel is limited


def test_a_deployment_and_a_release_read_their_json_as_typed_objects() -> None:
    plan = ReleasePlan(
        config_version=3,
        items=(ReleaseItem("api", "1.0"),),
        environments=(
            EnvironmentPlan("staging", 0, (), settings=EnvironmentSettings(parallel=2)),
            EnvironmentPlan("production", 1, (), settings=EnvironmentSettings(production=True)),
        ),
    )
    stored = plan.to_json()
    assert stored["environments"][1]["settings"]["production"] is True  # JSON as before
    release = Release(
        id=1,
        reason="R-1",
        created_by="ann",
        created_at=NOW,
        state=ReleaseState.RUNNING,
        updated_at=NOW,
        finished_at=None,
        scheduled_at=None,
        config_version=3,
        plan=stored,
        environment="staging",
        error=None,
        revision=0,
    )
    assert release.planned == plan
    assert release.planned.environment("production").settings.production is True
    deployment = Deployment(
        id=7,
        release_id=1,
        kind="deploy",
        environment="production",
        env_index=1,
        state=DeploymentState.RUNNING,
        created_by="ann",
        created_at=NOW,
        started_at=NOW,
        finished_at=None,
        error=None,
        previous={},
        cancel_requested=False,
        settings=stored["environments"][1]["settings"],
    )
    assert deployment.rules.production is True and deployment.rules.on_failure == "fail"


def test_a_release_read_without_its_plan_says_so() -> None:
    release = Release(
        id=4,
        reason="R-4",
        created_by="ann",
        created_at=NOW,
        state=ReleaseState.RUNNING,
        updated_at=NOW,
        finished_at=None,
        scheduled_at=None,
        config_version=3,
        plan={},
        environment=None,
        error=None,
        revision=0,
    )
    with pytest.raises(ValueError, match="release 4 was read without its plan"):
        release.planned  # noqa: B018


def test_deployments_read_again_share_their_rules_only_while_their_settings_match() -> None:
    def read(settings: dict[str, object]) -> Deployment:  # as a worker reads it at each step
        return Deployment(
            id=8,
            release_id=1,
            kind="deploy",
            environment="staging",
            env_index=0,
            state=DeploymentState.RUNNING,
            created_by="ann",
            created_at=NOW,
            started_at=NOW,
            finished_at=None,
            error=None,
            previous={},
            cancel_requested=False,
            settings=settings,
        )

    first = read(EnvironmentSettings(on_failure="pause").to_json()).rules
    assert read(EnvironmentSettings(on_failure="pause").to_json()).rules is first  # parsed once
    # The same id with other settings (another database in the same process): its own.
    other = read(EnvironmentSettings(on_failure="rollback", parallel=2).to_json()).rules
    assert other.on_failure == "rollback" and other.parallel == 2
    assert read(EnvironmentSettings(on_failure="pause").to_json()).rules.on_failure == "pause"

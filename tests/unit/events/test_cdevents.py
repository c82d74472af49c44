"""Each audit action and the CDEvent it becomes, valid against the reference 0.5.1 schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from interlock.audit.chain import GENESIS, event_body, link
from interlock.domain.records import AuditEvent, Deployment, Incident, Item, Release
from interlock.domain.states import DeploymentState, ReleaseState
from interlock.events.cdevents import Context, to_cdevent
from interlock.events.outbound import ticket_links
from interlock.spec.model import Tickets
from tests.support.external import schema_errors

AT = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
DIGEST = "sha256:" + "0b" * 32
OLD_DIGEST = "sha256:" + "aa" * 32


def audit(
    action: str,
    object_type: str,
    object_id: Any,
    *,
    actor: str = "interlock",
    seq: int = 42,
    **fields: Any,
) -> AuditEvent:
    body = event_body(
        seq=seq,
        at=AT,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        **fields,
    )
    return AuditEvent(
        seq, AT, actor, action, object_type, str(object_id), body, GENESIS, link(GENESIS, body)
    )


def _release(release_id: int, kind: str, *items: Item) -> Release:
    return Release(
        id=release_id,
        reason="PAY-9: fees",
        created_by="alice",
        created_at=AT,
        state=ReleaseState.RUNNING,
        updated_at=AT,
        finished_at=None,
        scheduled_at=None,
        config_version=1,
        plan={},
        environment="production",
        error=None,
        revision=0,
        kind=kind,
        items=items,
    )


def _deployment(deployment_id: int, release_id: int | None, kind: str, **extra: Any) -> Deployment:
    return Deployment(
        id=deployment_id,
        release_id=release_id,
        kind=kind,
        environment="production",
        env_index=1,
        state=DeploymentState.RUNNING,
        created_by="alice",
        created_at=AT,
        started_at=AT,
        finished_at=None,
        error=None,
        previous={},
        cancel_requested=False,
        **extra,
    )


class Facts:
    deployments = {
        6: _deployment(6, 3, "deploy"),
        7: _deployment(7, 4, "rollback"),
        8: _deployment(8, None, "runbook", runbook="failover"),
    }
    releases = {
        3: _release(3, "deploy", Item("api", "3.0.0", DIGEST), Item("web", "2.0.0")),
        4: _release(4, "rollback", Item("api", "2.0.0", OLD_DIGEST)),
    }
    incidents = {
        1: Incident(
            id=1,
            service="api",
            environment="production",
            summary="it broke",
            state="resolved",
            opened_at=AT,
            opened_by="interlock",
            deployment_id=6,
            release_id=3,
            resolved_at=AT,
            resolved_by="carol",
            resolution="manual",
            resolved_by_deployment=None,
            resolution_note="fixed",
        )
    }

    def deployment(self, deployment_id: int) -> Deployment | None:
        return self.deployments.get(deployment_id)

    def release(self, release_id: int) -> Release | None:
        return self.releases.get(release_id)

    def incident(self, incident_id: int) -> Incident | None:
        return self.incidents.get(incident_id)


CONTEXT = Context("https://interlock.example.com", "https://interlock.example.com")
RUNNING = {"state": "running"}


def state(value: str) -> dict[str, str]:
    return {"state": value}


CASES = [
    # (audit event, CDEvent type, subject id, expected content (subset))
    (
        audit(
            "deployment.queued",
            "deployment",
            6,
            after=state("queued"),
            data={"release": 3, "environment": "production"},
        ),
        "pipelinerun.queued",
        "deployments/6",
        {
            "pipelineName": "deploy api,web to production",
            "uri": "https://interlock.example.com/api/v1/deployments/6",
        },
    ),
    (
        audit(
            "deployment.running",
            "deployment",
            6,
            before=state("queued"),
            after=RUNNING,
            data={"release": 3, "environment": "production"},
        ),
        "pipelinerun.started",
        "deployments/6",
        {"pipelineName": "deploy api,web to production"},
    ),
    (
        audit(
            "deployment.succeeded",
            "deployment",
            6,
            before=RUNNING,
            after=state("succeeded"),
            data={"release": 3, "environment": "production"},
        ),
        "pipelinerun.finished",
        "deployments/6",
        {"outcome": "success"},
    ),
    (
        audit(
            "deployment.failed",
            "deployment",
            6,
            before=RUNNING,
            after=state("failed"),
            reason="step api/roll-out failed",
            data={"release": 3},
        ),
        "pipelinerun.finished",
        "deployments/6",
        {"outcome": "failure", "errors": "step api/roll-out failed"},
    ),
    (
        audit(
            "deployment.failed",
            "deployment",
            6,
            before=state("rolling_back"),
            after=state("failed"),
            reason="rollback step failed",
            data={"release": 3},
        ),
        "pipelinerun.finished",
        "deployments/6",
        {"outcome": "error", "errors": "rollback step failed"},
    ),
    (
        audit(
            "deployment.rolled_back",
            "deployment",
            6,
            before=state("rolling_back"),
            after=state("rolled_back"),
            reason="api is back on 2.0.0",
            data={"release": 3},
        ),
        "pipelinerun.finished",
        "deployments/6",
        {"outcome": "failure", "errors": "api is back on 2.0.0"},
    ),
    (
        audit(
            "deployment.cancelled",
            "deployment",
            6,
            before=RUNNING,
            after=state("cancelled"),
            reason="not today",
            data={"release": 3},
        ),
        "pipelinerun.finished",
        "deployments/6",
        {"outcome": "cancel"},
    ),
    (
        audit(
            "deployment.queued",
            "deployment",
            7,
            after=state("queued"),
            data={"release": 4, "environment": "production"},
        ),
        "pipelinerun.queued",
        "deployments/7",
        {"pipelineName": "rollback api in production"},
    ),
    (
        audit(
            "deployment.running",
            "deployment",
            8,
            before=state("queued"),
            after=RUNNING,
            data={"release": None, "environment": "production"},
        ),
        "pipelinerun.started",
        "deployments/8",
        {"pipelineName": "runbook failover in production"},
    ),
    (
        audit(
            "step.started",
            "step",
            17,
            before=state("ready"),
            after=RUNNING,
            data={"deployment": 6, "key": "api/migrate", "attempt": 1},
        ),
        "taskrun.started",
        "steps/17/attempts/1",
        {
            "taskName": "api/migrate",
            "pipelineRun": {"id": "deployments/6", "source": CONTEXT.source},
            "uri": "https://interlock.example.com/api/v1/steps/17",
        },
    ),
    (
        audit(
            "step.succeeded",
            "step",
            17,
            before=RUNNING,
            after=state("succeeded"),
            data={"deployment": 6, "key": "api/migrate", "attempt": 1},
        ),
        "taskrun.finished",
        "steps/17/attempts/1",
        {"outcome": "success"},
    ),
    (
        audit(
            "step.retrying",
            "step",
            18,
            before=RUNNING,
            after=state("ready"),
            reason="exited with status 1",
            data={"deployment": 6, "key": "api/roll-out", "attempt": 1},
        ),
        "taskrun.finished",
        "steps/18/attempts/1",
        {"outcome": "failure", "errors": "exited with status 1"},
    ),
    (
        audit(
            "step.failed",
            "step",
            18,
            before=RUNNING,
            after=state("failed"),
            reason="exited with status 1",
            data={"deployment": 6, "key": "api/roll-out", "attempt": 2},
        ),
        "taskrun.finished",
        "steps/18/attempts/2",
        {"outcome": "failure"},
    ),
    (
        audit(
            "step.cancelled",
            "step",
            18,
            before=RUNNING,
            after=state("cancelled"),
            data={"deployment": 6, "key": "api/roll-out", "attempt": 2},
        ),
        "taskrun.finished",
        "steps/18/attempts/2",
        {"outcome": "cancel"},
    ),
    (
        audit(
            "step.recovered",
            "step",
            18,
            before=RUNNING,
            after=state("ready"),
            reason="the worker was lost",
            data={"deployment": 6, "key": "api/roll-out", "attempt": 1},
        ),
        "taskrun.finished",
        "steps/18/attempts/1",
        {"outcome": "error", "errors": "the worker was lost"},
    ),
    (
        audit(
            "service.deployed",
            "service",
            "api@production",
            after={"version": "3.0.0", "digest": DIGEST},
            data={"release": 3, "deployment": 6, "kind": "deploy"},
        ),
        "service.deployed",
        "api",
        {
            "environment": {"id": "production", "source": CONTEXT.source},
            "artifactId": f"pkg:generic/api@3.0.0?checksum={DIGEST}",
        },
    ),
    (
        audit(
            "service.deployed",
            "service",
            "api@production",
            before={"version": "2.0.0", "digest": OLD_DIGEST},
            after={"version": "3.0.0", "digest": DIGEST},
            data={"release": 3, "deployment": 6, "kind": "deploy"},
        ),
        "service.upgraded",
        "api",
        {"artifactId": f"pkg:generic/api@3.0.0?checksum={DIGEST}"},
    ),
    (
        audit(
            "service.deployed",
            "service",
            "api@production",
            before={"version": "3.0.0", "digest": DIGEST},
            after={"version": "2.0.0", "digest": OLD_DIGEST},
            data={"release": 4, "deployment": 7, "kind": "rollback"},
        ),
        "service.rolledback",
        "api",
        {"artifactId": f"pkg:generic/api@2.0.0?checksum={OLD_DIGEST}"},
    ),
    (
        audit(
            "service.rolled_back",
            "service",
            "web@production",
            before={"version": "2.0.0", "digest": None},
            after={"version": "1.9.0", "digest": None},
            data={"deployment": 6},
        ),
        "service.rolledback",
        "web",
        {"artifactId": "pkg:generic/web@1.9.0"},
    ),
    (
        audit(
            "incident.opened",
            "incident",
            1,
            reason="step api/roll-out failed",
            data={
                "service": "api",
                "environment": "production",
                "deployment": 6,
                "release": 3,
                "automatic": True,
            },
        ),
        "incident.detected",
        "incidents/1",
        {
            "description": "step api/roll-out failed",
            "environment": {"id": "production", "source": CONTEXT.source},
            "service": {"id": "api", "source": CONTEXT.source},
            "artifactId": f"pkg:generic/api@3.0.0?checksum={DIGEST}",
        },
    ),
    (
        audit(
            "incident.opened",
            "incident",
            1,
            actor="carol",
            reason="checkout errors",
            data={"service": "api", "environment": "production", "deployment": 6},
        ),
        "incident.reported",
        "incidents/1",
        {
            "description": "checkout errors",
            "ticketURI": "https://interlock.example.com/api/v1/incidents/1",
        },
    ),
    (
        audit(
            "incident.resolved",
            "incident",
            1,
            actor="carol",
            reason="fixed",
            data={"resolution": "manual"},
        ),
        "incident.resolved",
        "incidents/1",
        {
            "description": "fixed",
            "environment": {"id": "production", "source": CONTEXT.source},
            "service": {"id": "api", "source": CONTEXT.source},
        },
    ),
    (
        audit(
            "artifact.registered",
            "artifact",
            "api@3.0.0",
            actor="ci",
            after={"digest": DIGEST, "commit": "abc1234"},
        ),
        "artifact.published",
        f"pkg:generic/api@3.0.0?checksum={DIGEST}",
        {"user": "ci"},
    ),
]


@pytest.mark.parametrize(
    ("event", "name", "subject_id", "content"),
    CASES,
    ids=[f"{c[0].action}->{c[1]}" for c in CASES],
)
def test_each_audit_action_becomes_its_cdevent(event, name, subject_id, content):
    found = to_cdevent(event, CONTEXT, Facts())
    assert found is not None
    assert schema_errors(found) == []
    context = found["context"]
    assert context["type"] == f"dev.cdevents.{name}.0.3.0"
    assert context["specversion"] == "0.5.1"
    assert context["id"] == event.hash  # stable: derived from the audit event
    assert context["source"] == CONTEXT.source
    assert context["timestamp"] == "2026-11-27T10:00:00.123456Z"
    assert found["subject"]["id"] == subject_id
    assert found["subject"]["source"] == CONTEXT.source
    for key, value in content.items():
        assert found["subject"]["content"].get(key) == value, key
    assert found["customData"]["interlock"]["seq"] == event.seq
    assert found["customData"]["interlock"]["action"] == event.action
    assert found["customDataContentType"] == "application/json"


def test_events_of_one_release_share_a_chain_id():
    of_release_3 = [
        e
        for e, *_ in CASES
        if e.object_id == "6" or '"deployment":6' in e.body or '"release":3' in e.body
    ]
    chains = {to_cdevent(e, CONTEXT, Facts())["context"]["chainId"] for e in of_release_3}
    assert len(of_release_3) >= 15 and len(chains) == 1
    rollback = to_cdevent(CASES[7][0], CONTEXT, Facts())
    assert rollback["context"]["chainId"] not in chains  # release 4
    assert "chainId" not in to_cdevent(CASES[-1][0], CONTEXT, Facts())["context"]  # no release


def test_without_a_public_url_links_are_urns_and_tickets_link_to_the_tracker():
    tickets = ticket_links(Tickets(url="https://jira.example.com/browse/{ticket}"))
    context = Context("/interlock", None, tickets)
    started = to_cdevent(CASES[1][0], context, Facts())
    assert started["subject"]["content"]["uri"] == "urn:interlock:deployments:6"
    assert schema_errors(started) == []
    reported = to_cdevent(
        audit(
            "incident.opened",
            "incident",
            1,
            actor="carol",
            reason="PAY-12 checkout errors",
            data={"service": "api", "environment": "production", "deployment": None},
        ),
        context,
        Facts(),
    )
    assert reported["subject"]["content"]["ticketURI"] == "https://jira.example.com/browse/PAY-12"
    assert schema_errors(reported) == []


@pytest.mark.parametrize(
    "event",
    [
        audit("release.created", "release", 3, after={"items": ["api@3.0.0"]}),
        audit("approval.given", "release", 3, actor="bob"),
        audit("gate.waiting", "gate", 9, data={"deployment": 6, "key": "approval"}),
        audit(
            "deployment.running", "deployment", 6, before=state("needs_attention"), after=RUNNING
        ),
        audit(
            "step.cancelled",
            "step",
            19,
            before=state("pending"),
            after=state("cancelled"),
            data={"deployment": 6, "key": "api/x", "attempt": 0},
        ),
        audit("service.observed", "service", "api@production", data={"observed": "1.0.0"}),
        audit("auth.failed", "token", "-", actor="anonymous"),
    ],
    ids=lambda e: e.action,
)
def test_actions_without_a_cdevents_counterpart_map_to_nothing(event):
    assert to_cdevent(event, CONTEXT, Facts()) is None

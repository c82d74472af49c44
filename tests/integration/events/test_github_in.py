"""GitHub webhooks in: the real payloads as they are, signed with X-Hub-Signature-256."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any
from urllib.parse import quote_plus

import pytest

from interlock.engine import views
from tests.support.api import Api
from tests.support.external import external, github_payload

SECRET = "github-webhook-secret"
COMMIT = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"  # deployment.sha in the payloads
NPM_DIGEST = "sha256:ba703915435b6ca2ca666b5d8332db34bf9dc37a198ed70d3a5fa5d08b8415c8"
CONFIG = """\
version: 1
environments: [{name: staging}, {name: production, production: true}]
services:
  api: {deploy: [{name: roll-out, run: "true"}]}
  site: {deploy: [{name: roll-out, run: "true"}]}
permissions:
  - {user: github, allow: [artifact.register]}
notifications:
  inbound:
    - {name: acme, kind: github, secret: "${GITHUB_WEBHOOK_SECRET}", as: github}
  services:
    hello-world-npm: api        # the package name
    Codertocat/Hello-World: site   # the repository of the deployments
"""


@pytest.fixture
def api(pilot: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", SECRET)
    path = pilot.config(CONFIG)
    harness = Api(pilot.engine, pilot.configs, path, workers=0).start()
    harness.user("github", kind="service")
    yield harness
    harness.stop()


def deliver(
    api: Any,
    event: str,
    body: bytes,
    *,
    signature: str | None = "valid",
    delivery: str = "",
    path: str = "/api/v1/hooks/github",
) -> Any:
    headers = {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery or str(uuid.uuid4()),
    }
    if signature == "valid":
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    if signature is not None:
        headers["x-hub-signature-256"] = signature
    return api.client(None).post(path, content=body, headers=headers)


def artifacts_of(api: Any) -> list[Any]:
    with api.engine.db.read() as tx:
        return tx.list_artifacts()


def test_the_real_payloads(api):
    for name in ("payload.json", "with-app_id.payload.json", "with-organization.payload.json"):
        answer = deliver(api, "ping", github_payload("ping", name))
        assert answer.status_code == 200 and answer.json()["outcome"] == "pong", answer.text
    # A published npm package: version from its tag, digest from its file, commit target_oid.
    answer = deliver(api, "package", github_payload("package", "published.npm.payload.json"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "registered"
    [artifact] = artifacts_of(api)
    assert (artifact.service, artifact.version, artifact.digest) == ("api", "1.0.0", NPM_DIGEST)
    assert artifact.commit_sha == "6c62fb45fe66bfb1ea9a66abc38f6a0cc974292b"
    assert artifact.registered_by == "github"
    # The container examples have an empty tag: nothing to register under a version.
    for event, name in (
        ("package", "published.docker.payload.json"),
        ("registry_package", "published.docker.payload.json"),
    ):
        answer = deliver(api, event, github_payload(event, name))
        assert answer.status_code == 202 and "no version" in answer.json()["detail"], answer.text
    assert len(artifacts_of(api)) == 1
    # A successful deployment: which version runs is found by the deployment's commit.
    body = github_payload("deployment_status", "payload.json")
    answer = deliver(api, "deployment_status", body)
    assert answer.status_code == 202 and COMMIT in answer.json()["detail"]
    admin = api.admin()
    assert admin.post(
        "/api/v1/artifacts",
        json={"service": "site", "version": "2.0.0", "digest": NPM_DIGEST, "commit": COMMIT},
    ).is_success
    delivery = str(uuid.uuid4())
    answer = deliver(api, "deployment_status", body, delivery=delivery)
    assert answer.status_code == 200 and answer.json()["outcome"] == "observed", answer.text
    assert answer.json()["detail"] == "site@2.0.0 runs in production"
    again = deliver(api, "deployment_status", body, delivery=delivery)  # GitHub's redelivery
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert len(views.audit_events(api.engine, actions=["service.observed"])) == 1
    answer = deliver(
        api, "deployment_status", github_payload("deployment_status", "gh-pages.payload.json")
    )
    assert answer.status_code == 202 and "in_progress" in answer.json()["detail"]
    # Every payload of the reference set is accepted (acted on, or ignored with a reason).
    root = external("github-webhooks", "payload-examples", "api.github.com")
    events = set()
    for path in sorted(root.glob("*/*.json")):
        answer = deliver(api, path.parent.name, path.read_bytes())
        assert answer.status_code in (200, 202), (path, answer.text)
        if path.parent.name in ("release", "push", "create", "workflow_run", "deployment"):
            assert answer.status_code == 202 and answer.json()["outcome"] == "ignored"
        events.add(path.parent.name)
    assert events == {
        "create",
        "deployment",
        "deployment_status",
        "package",
        "ping",
        "push",
        "registry_package",
        "release",
        "workflow_run",
    }
    assert len(artifacts_of(api)) == 2
    assert views.audit_verify(api.engine).ok


def test_a_bad_or_missing_signature_is_refused_changes_nothing_and_is_audited_once(api):
    body = github_payload("package", "published.npm.payload.json")
    head = views.audit_checkpoint(api.engine).seq
    for signature in (None, "sha256=" + "0" * 64, "sha1=abc", None, "sha256=" + "0" * 64):
        answer = deliver(api, "package", body, signature=signature)
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert artifacts_of(api) == []
    new = views.audit_events(api.engine, after=head, limit=100)
    assert [(e.action, e.object_id, e.body.count("no signature")) for e in new] == [
        ("auth.failed", "/api/v1/hooks/github", 1),
        ("auth.failed", "/api/v1/hooks/github", 0),
    ]
    # The right secret, a changed body: refused.
    signed = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert deliver(api, "package", body + b"\n", signature=signed).status_code == 401
    assert deliver(api, "package", body, signature=signed).status_code == 200
    assert len(artifacts_of(api)) == 1
    # GitHub's other content type: the JSON in a `payload` form field, the form signed.
    form = b"payload=" + quote_plus(github_payload("ping", "payload.json")).encode()
    answer = api.client(None).post(
        "/api/v1/hooks/github",
        content=form,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-github-event": "ping",
            "x-github-delivery": str(uuid.uuid4()),
            "x-hub-signature-256": "sha256="
            + hmac.new(SECRET.encode(), form, hashlib.sha256).hexdigest(),
        },
    )
    assert answer.status_code == 200 and answer.json()["hook_id"] == 109948940, answer.text


def test_a_replay_under_another_or_no_delivery_id_changes_nothing(api):
    # The delivery id is a header, outside the signature: anyone who saw a delivery can
    # send it again under any id. The signed body is what identifies it.
    assert (
        api.admin()
        .post(
            "/api/v1/artifacts",
            json={"service": "site", "version": "2.0.0", "digest": NPM_DIGEST, "commit": COMMIT},
        )
        .is_success
    )
    body = github_payload("deployment_status", "payload.json")
    first = deliver(api, "deployment_status", body, delivery="72d3162e-cc78-11e3-81ab-1")
    assert first.status_code == 200 and first.json()["outcome"] == "observed", first.text
    replay = deliver(api, "deployment_status", body, delivery="attacker-chosen")
    assert replay.status_code == 200, replay.text
    assert replay.json()["outcome"] == "duplicate"
    assert replay.json()["detail"] == "already received: observed"
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    for delivery in ("", None):
        headers = {
            "content-type": "application/json",
            "x-github-event": "deployment_status",
            "x-hub-signature-256": signature,
        }
        if delivery is not None:
            headers["x-github-delivery"] = delivery
        answer = api.client(None).post("/api/v1/hooks/github", content=body, headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["errors"][0]["field"] == "X-GitHub-Delivery"
    assert len(views.audit_events(api.engine, actions=["service.observed"])) == 1
    # Another deployment status (another body) is another event.
    other = body.replace(b'"id": 209916254,', b'"id": 209916255,', 1)
    assert other != body
    answer = deliver(api, "deployment_status", other)
    assert answer.status_code == 200 and answer.json()["outcome"] == "observed", answer.text
    assert len(views.audit_events(api.engine, actions=["service.observed"])) == 2


def test_a_payload_url_with_a_stray_query_parameter_says_so_not_401(api):
    # A signed delivery has no token: what it gets wrong must still be named.
    body = github_payload("ping", "payload.json")
    answer = deliver(api, "ping", body, path="/api/v1/hooks/github?team=payments")
    assert answer.status_code == 422, answer.text
    assert "unknown query parameter 'team'" in answer.json()["detail"]
    # Token-authenticated endpoints still answer 401 first.
    assert api.client(None).get("/api/v1/releases?team=x").status_code == 401


@pytest.mark.parametrize("header", ["x-github-delivery", "x-github-event"])
def test_a_control_character_in_a_header_kept_with_the_receipt_is_refused(api, header):
    # Both headers are stored with the receipt and echoed in the answer; HTTP lets bytes
    # 0x80-0xFF through, read as C1 control characters (U+009B is a terminal's CSI).
    body = github_payload("deployment_status", "payload.json")
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers: dict[str, Any] = {
        "content-type": "application/json",
        "x-github-event": "deployment_status",
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": signature,
    }
    headers[header] = headers[header].encode() + b"\x9b31m"
    answer = api.client(None).post("/api/v1/hooks/github", content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"].lower() == header
    assert "U+009B" in answer.json()["detail"]
    with api.engine.db.read() as tx:
        assert (
            tx.event_receipt(
                "x", source="github:acme", body_digest=hashlib.sha256(body).hexdigest()
            )
            is None
        )

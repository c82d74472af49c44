"""Sign-off from the command line: users, tokens, approvals, rejections, locks, restarts."""

from __future__ import annotations

from tests.acceptance.conftest import one_backend
from tests.helpers import wait_for, write_config

CONFIG = """\
version: 1
teams: {payments: [dave]}
roles: {release-managers: [alice, bob]}
permissions:
  - {team: payments, allow: [release.create], services: owned}
  - {role: release-managers, allow: [approve, lock]}
environments:
  - name: staging
  - name: production
    gates:
      before:
        - approval: {rules: [{role: release-managers, count: 2}], expires: 1d}
services:
  api:
    owner: payments
    deploy: [{name: roll-out, run: "echo {{ environment }} {{ version }} >> deployed.log"}]
"""


def _token(server, user: str) -> str:
    """Through the CLI: `user add`, then `token create` prints the secret once."""
    created = server.cli("user", "add", user)
    assert created.returncode == 0, created.stderr
    token = server.cli("token", "create", "--user", user, "--name", "test")
    assert token.returncode == 0 and token.stdout.startswith("ilk_"), token.stderr
    assert "only time it is shown" in token.stderr
    return token.stdout.strip()


def test_two_people_sign_off_production_from_the_cli(project, server):
    write_config(project, CONFIG)
    server.start()
    admin_token = (project / ".interlock" / "admin.token").read_text().strip()
    assert (project / ".interlock" / "admin.token").stat().st_mode & 0o777 == 0o600
    assert admin_token in server.log() and admin_token.startswith("ilk_")
    dave = _token(server, "dave")
    alice, bob = server.user("alice"), server.user("bob")  # set-up: through the API

    created = server.cli(
        "release", "create", "api@1.4.2", "--reason", "PAY-9", INTERLOCK_TOKEN=dave
    )
    assert created.returncode == 0, created.stderr
    release_id = created.stdout.strip()
    wait_for(lambda: server.waits(release_id, token=dave), message="the approval gate to wait")
    shown = server.cli("release", "show", release_id, INTERLOCK_TOKEN=dave).stdout
    assert "production/approval waits for approval: 2 from role release-managers" in shown
    assert "2 from role release-managers: given by nobody yet; 2 more from: alice, bob" in shown

    assert server.cli("approve", release_id, INTERLOCK_TOKEN=dave).returncode == 4
    waiting = server.json("approvals", INTERLOCK_TOKEN=alice)
    assert [w["release"] for w in waiting] == [int(release_id)]
    first = server.cli("approve", release_id, "--comment", "diff reviewed", INTERLOCK_TOKEN=alice)
    assert first.returncode == 0 and "gate approval: waiting" in first.stdout
    second = server.cli("approve", release_id, INTERLOCK_TOKEN=bob)
    assert second.returncode == 0 and "gate approval: succeeded" in second.stdout
    assert server.cli("release", "watch", release_id, INTERLOCK_TOKEN=dave).returncode == 0
    assert (project / "deployed.log").read_text().split() == [
        "staging",
        "1.4.2",
        "production",
        "1.4.2",
    ]
    log = server.json("audit", "log", "--action", "approval.given")
    assert [(e["actor"], e["reason"]) for e in log] == [("alice", "diff reviewed"), ("bob", None)]


@one_backend  # the CLI's answers (approvals, tokens and locks on both: tests/integration)
def test_reject_needs_a_comment_and_stops_the_release(project, server):
    write_config(project, CONFIG)
    server.start()
    dave, bob = server.user("dave"), server.user("bob")
    release_id = server.create("api@2.0.0", reason="r", token=dave)
    wait_for(lambda: server.api("GET", "/approvals/pending", token=bob)["items"])
    missing = server.cli("reject", release_id, INTERLOCK_TOKEN=bob)
    assert missing.returncode == 2 and "--comment" in missing.stderr
    rejected = server.cli("reject", release_id, "--comment", "wrong fee table", INTERLOCK_TOKEN=bob)
    assert rejected.returncode == 0, rejected.stderr
    watch = server.cli("release", "watch", release_id, INTERLOCK_TOKEN=dave)
    assert watch.returncode == 1 and "rejected by bob: wrong fee table" in watch.stdout


@one_backend  # the CLI's answers (approvals, tokens and locks on both: tests/integration)
def test_bad_and_revoked_tokens(project, server):
    write_config(project, CONFIG)
    server.start()
    dave = server.user("dave")
    bad = server.cli("status", INTERLOCK_TOKEN="ilk_not-a-token")
    assert bad.returncode == 4 and "authentication failed: unknown token" in bad.stderr
    token_id = server.json("token", "list", "--user", "dave")[0]["id"]
    assert server.cli("token", "revoke", str(token_id)).returncode == 0
    revoked = server.cli("release", "create", "api@1", "--reason", "r", INTERLOCK_TOKEN=dave)
    assert revoked.returncode == 4 and "revoked" in revoked.stderr
    assert server.api("GET", "/releases")["items"] == []


def test_a_wait_for_approval_survives_a_crash(project, server):
    write_config(project, CONFIG)
    server.start()
    dave, alice, bob = (server.user(n) for n in ("dave", "alice", "bob"))
    release_id = server.create("api@3.0.0", reason="r", token=dave)
    wait_for(lambda: server.api("GET", "/approvals/pending", token=alice)["items"])
    server.api("POST", f"/releases/{release_id}/approvals", {}, token=alice)
    server.kill()
    server.start()
    assert server.cli("approve", release_id, INTERLOCK_TOKEN=bob).returncode == 0
    assert server.cli("release", "watch", release_id, "--timeout", "30").returncode == 0


@one_backend  # the CLI's answers (approvals, tokens and locks on both: tests/integration)
def test_lock_and_unlock_from_the_cli(project, server):
    write_config(
        project,
        CONFIG.replace(
            """    gates:
      before:
        - approval: {rules: [{role: release-managers, count: 2}], expires: 1d}
""",
            "",
        ),
    )
    server.start()
    alice = server.user("alice")
    assert (
        server.cli("lock", "production", "--reason", "db upgrade", INTERLOCK_TOKEN=alice).returncode
        == 0
    )
    release_id = server.create("api@4.0.0", reason="r")

    def staging_done() -> dict | None:
        found = server.release(release_id)
        deployments = found["deployments"]
        staged = deployments[0]["state"] == "succeeded" and len(deployments) > 1
        return found if staged else None

    shown = wait_for(staging_done, message="staging to finish, production to come next")
    assert shown["deployments"][-1]["environment"] == "production"
    assert shown["deployments"][-1]["state"] == "queued"
    assert server.cli("unlock", "production", INTERLOCK_TOKEN=alice).returncode == 0
    assert server.cli("release", "watch", release_id, "--timeout", "30").returncode == 0

"""Executors against real things: an HTTP server on 127.0.0.1, plug-ins by entry point."""

from __future__ import annotations

import pytest

from interlock.domain.states import ReleaseState
from interlock.engine import views
from tests.helpers import running, wait_release_end


def _config(url: str, expect: str = "200") -> str:
    return f"""\
version: 1
environments: [{{name: staging}}]
services:
  api:
    deploy:
      - name: roll-out
        http:
          method: POST
          url: "{url}/deploy/{{{{ service }}}}/{{{{ version }}}}"
          headers: {{Authorization: "Bearer ${{DEPLOY_TOKEN}}"}}
          body: {{version: "{{{{ version }}}}", env: "{{{{ environment }}}}"}}
          expect_status: {expect}
"""


def _log(pilot, release_id: int) -> str:
    node = views.release_view(pilot.engine, release_id).deployments[0].nodes[0]
    return views.step_log(pilot.engine, node.id)[2]


def test_http_step_sends_the_release_and_hides_the_secret(pilot, http_target, monkeypatch):
    monkeypatch.setenv("DEPLOY_TOKEN", "tok-123456")
    http_target.body = '{"echo": "tok-123456"}'
    pilot.config(_config(http_target.url))
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, pilot.release("api@1.4.2+b7").id)
    assert done.state is ReleaseState.SUCCEEDED
    [request] = http_target.requests
    assert request["path"] == "/deploy/api/1.4.2%2Bb7"
    assert request["headers"]["authorization"] == "Bearer tok-123456"
    assert request["json"] == {"version": "1.4.2+b7", "env": "staging"}
    log = _log(pilot, done.id)
    assert "-> 200" in log and "tok-123456" not in log and "***" in log


def test_a_secret_across_the_cut_of_a_long_response_shows_no_part_of_it(
    pilot, http_target, monkeypatch
):
    from interlock.executors.http import BODY_LOG_LIMIT

    secret = "tok-0123456789abcdefghij"
    monkeypatch.setenv("DEPLOY_TOKEN", secret)
    # The server quotes the token where the log's cut of the body falls.
    http_target.body = "a" * (BODY_LOG_LIMIT - 10) + secret + "b" * 100
    pilot.config(_config(http_target.url))
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, pilot.release("api@1.4.2").id)
    log = _log(pilot, done.id)
    assert "response body cut" in log
    assert secret[:8] not in log and "a***" in log


def test_unexpected_status_fails_the_step(pilot, http_target, monkeypatch):
    monkeypatch.setenv("DEPLOY_TOKEN", "x")
    http_target.status = 503
    pilot.config(_config(http_target.url, expect="[200, 204]"))
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, pilot.release("api@1.0").id)
    assert done.state is ReleaseState.FAILED
    assert "expected status 200 or 204, got 503" in done.error


def test_missing_secret_is_a_clear_failure(pilot, http_target, monkeypatch):
    monkeypatch.delenv("DEPLOY_TOKEN", raising=False)
    pilot.config(_config(http_target.url))
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, pilot.release("api@1.0").id)
    assert done.state is ReleaseState.FAILED
    assert "no value for 'DEPLOY_TOKEN'" in done.error
    assert http_target.requests == []


def test_unreachable_endpoint(pilot, monkeypatch):
    monkeypatch.setenv("DEPLOY_TOKEN", "x")
    pilot.config(_config("http://127.0.0.1:9"))
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, pilot.release("api@1.0").id)
    assert done.state is ReleaseState.FAILED and "request failed" in done.error


def test_plugin_executor_from_entry_point(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: staging}]
        services:
          api:
            deploy:
              - {name: hello, uses: noop, with: {message: "hello from a plug-in"}}
              - {name: boom, uses: noop, with: {fail: true}}
        """)
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, pilot.release("api@1.0").id)
    assert done.state is ReleaseState.FAILED and "failed on purpose" in done.error
    assert "hello from a plug-in" in _log(pilot, done.id)


def test_steps_see_the_release_in_their_environment(pilot, monkeypatch):
    monkeypatch.setenv("INTERLOCK_TOKEN", "secret-of-the-server")  # never passed on
    monkeypatch.setenv("TEAM_SETTING", "kept")
    monkeypatch.setenv("INTERLOCK_HOME", str(pilot.dir / "home"))  # holds admin.token
    pilot.config("""\
        version: 1
        environments: [{name: staging}]
        services:
          api:
            deploy:
              - name: env
                run: env | grep -E '^(INTERLOCK_|TEAM_)' | sort > env.txt
        """)
    with running(pilot.engine):
        release = pilot.release("api@3.1.0", reason="PAY-7")
        wait_release_end(pilot.engine, release.id)
    seen = dict(line.split("=", 1) for line in (pilot.dir / "env.txt").read_text().splitlines())
    assert seen["INTERLOCK_SERVICE"] == "api" and seen["INTERLOCK_VERSION"] == "3.1.0"
    assert seen["INTERLOCK_ENVIRONMENT"] == "staging"
    assert seen["INTERLOCK_RELEASE"] == seen["INTERLOCK_RELEASE_ID"] == str(release.id)
    assert seen["INTERLOCK_DEPLOYMENT_ID"] == seen["INTERLOCK_DEPLOYMENT"]
    assert seen["INTERLOCK_IDEMPOTENCY_KEY"].endswith(":api/env:1")
    assert seen["INTERLOCK_REASON"] == "PAY-7"
    assert "INTERLOCK_TOKEN" not in seen and "INTERLOCK_DATABASE_URL" not in seen
    assert "INTERLOCK_HOME" not in seen
    assert "TEAM_SETTING" not in seen  # nor the rest: `secrets:` and `inherit_env:` opt in


def test_a_reason_naming_a_secret_stays_text_and_errors_hide_secrets(
    pilot, http_target, monkeypatch
):
    monkeypatch.setenv("DEPLOY_TOKEN", "tok-123456")
    pilot.config(f"""\
        version: 1
        environments: [{{name: staging}}]
        services:
          api:
            deploy:
              - name: notify
                http:
                  url: "{http_target.url}/notify"
                  body: {{why: "{{{{ reason }}}}"}}
              - name: broken
                http:
                  url: "{http_target.url}/x"
                  headers: {{Authorization: "Bearer ${{MULTILINE}}"}}
        """)
    monkeypatch.setenv("MULTILINE", "line-one-secret\nline-two")
    with running(pilot.engine):
        done = wait_release_end(
            pilot.engine, pilot.release("api@1", reason="PAY-1 ${DEPLOY_TOKEN}").id
        )
    [request] = http_target.requests
    assert request["json"] == {"why": "PAY-1 ${DEPLOY_TOKEN}"}
    assert done.state is ReleaseState.FAILED
    assert "holds a line break" in done.error
    assert "line-one-secret" not in done.error


@pytest.mark.parametrize(
    ("run", "reason", "printed"),
    [
        ('echo "got $(echo {{ reason }})"', "hi; touch pwned", "got hi; touch pwned"),
        ('"cat <<EOT\\ngot {{ reason }}\\nEOT"', "$(touch pwned)", "got $(touch pwned)"),
        ('"# deploying for {{ reason }}\\necho ok"', "PAY-1\ntouch pwned #", "ok"),
    ],
)
def test_a_release_reason_never_runs_in_a_shell_step(pilot, run, reason, printed):
    pilot.config(f"""\
        version: 1
        environments: [{{name: staging}}]
        services:
          api:
            deploy:
              - name: roll-out
                run: {run}
        """)
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, pilot.release("api@1.0", reason=reason).id)
    log = _log(pilot, done.id)
    assert not (pilot.dir / "pwned").exists(), log
    assert done.state is ReleaseState.SUCCEEDED, log
    assert log.endswith(f"\n{printed}\n")
    assert '"${INTERLOCK_ARG_REASON}"' in log or "${INTERLOCK_ARG_REASON}" in log


def test_a_step_printing_a_nul_byte_keeps_its_output_and_succeeds_on_both_backends(pilot):
    # PostgreSQL stores no NUL in text: the step's whole output was lost and its result
    # could not be recorded (retried until its lease ran out). Shown as U+FFFD instead,
    # as a byte that is not UTF-8 is.
    pilot.config(
        """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: roll-out, run: "printf 'a\\\\000b\\\\n'; echo after"}
"""
    )
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, pilot.release("api@1.0.0").id)
    assert done.state is ReleaseState.SUCCEEDED
    log = _log(pilot, done.id)
    assert "a\ufffdb\nafter\n" in log and "\x00" not in log

"""`run` steps with untrusted placeholder values, run by the shell executor in real processes.

A value (a release reason, a commit, a runbook param) reaches the step as an
``INTERLOCK_ARG_*`` environment variable the script refers to; it is never part
of the script's text, so no context of the shell can make it run.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from interlock.domain.templating import render_shell
from interlock.executors.base import LogSink, StepContext, StepResult
from interlock.executors.shell import ShellExecutor
from tests.helpers import wait_for

DEFAULTS = {"service": "api", "version": "1.4.2", "reason": "PAY-1"}


def run(
    tmp_path: Path,
    command: str,
    environ: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    **values: str,
) -> tuple[StepResult, str]:
    """Run ``command`` as a step in ``tmp_path``; its result and its log."""
    variables = {**DEFAULTS, **values}
    sink = LogSink()
    ctx = StepContext(
        variables=variables,
        environ={"PATH": os.environ["PATH"], **(environ or {})},
        cwd=str(tmp_path),
        timeout=10,
        log=sink,
    )
    result = ShellExecutor().run({"run": command, "env": env or {}}, ctx)
    return result, sink.text()


def printed(tmp_path: Path, command: str, **values: str) -> str:
    """Run ``command``; what it printed (the log after the logged command and values)."""
    result, log = run(tmp_path, command, **values)
    assert result.ok, (command, result, log)
    shown = render_shell(command, {**DEFAULTS, **values}).shown() + "\n"
    assert log.startswith(shown), (shown, log)
    return log[len(shown) :]


def test_the_command_is_a_script_of_references():
    command = render_shell(
        "./deploy.sh {{ service }} '{{ version }}' \"v={{ version }}\"",
        {"service": "api", "version": "1.0"},
    )
    assert command.script == (
        "./deploy.sh \"${INTERLOCK_ARG_SERVICE}\" ''\"${INTERLOCK_ARG_VERSION}\"'' "
        '"v=${INTERLOCK_ARG_VERSION}"'
    )
    assert command.arguments == {"INTERLOCK_ARG_SERVICE": "api", "INTERLOCK_ARG_VERSION": "1.0"}


EXPLOITS = [
    # command substitution inside double quotes
    ('echo "got $(echo {{ reason }})"', "hi; touch {flag}", "got hi; touch {flag}\n"),
    ('echo "got $(printf %s {{ reason }})"', "$(touch {flag})", "got $(touch {flag})\n"),
    # single quotes mean nothing in the body of an unquoted here-document
    ("cat <<EOT\ngot {{ reason }}\nEOT", "$(touch {flag})", "got $(touch {flag})\n"),
    ("cat <<EOT\ngot {{ reason }}\nEOT", "`touch {flag}`", "got `touch {flag}`\n"),
    ("cat <<-EOT\n\tgot '{{ reason }}'\n\tEOT", "x'; touch {flag}", "got 'x'; touch {flag}'\n"),
    # a placeholder in a comment, a line break in the value
    ("# deploying for {{ reason }}\necho ok", "PAY-1\ntouch {flag} #", "ok\n"),
    ("echo ok # for {{ reason }}", "PAY-1\ntouch {flag}", "ok\n"),
    # backticks, bare, inside them and inside double quotes
    ("echo {{ reason }}", "`touch {flag}`", "`touch {flag}`\n"),
    ("echo `echo {{ reason }}`", "a; touch {flag}", "a; touch {flag}\n"),
    ('echo "x `echo {{ reason }}` y"', "a; touch {flag}", "x a; touch {flag} y\n"),
    ('echo "{{ reason }}"', "$(touch {flag})", "$(touch {flag})\n"),
    ('echo "{{ reason }}"', '"; touch {flag}; echo "', '"; touch {flag}; echo "\n'),
]


@pytest.mark.parametrize(("command", "value", "expected"), EXPLOITS)
def test_a_value_runs_nowhere(tmp_path, command, value, expected):
    flag = tmp_path / "pwned"
    result, log = run(tmp_path, command, reason=value.format(flag=flag))
    assert not flag.exists(), log
    assert result.ok, (result, log)
    assert log.endswith("\n" + expected.format(flag=flag)), log


ORDINARY = [
    "plain",
    "1.4.2+b7",
    "a b  c",
    'it\'s "quoted"',
    "line one\nline two",
    "$HOME ${HOME} $(id) `id`",
    "*",
    "back\\slash",
    "",
    " leading and trailing ",
]


@pytest.mark.parametrize("value", ORDINARY)
def test_ordinary_forms_print_exactly_the_value(tmp_path, value):
    (tmp_path / "some-file").write_text("")  # something a `*` would match
    forms = {
        "printf '[%s]' {{ version }}": f"[{value}]",
        "printf '[%s]' \"v={{ version }}\"": f"[v={value}]",
        "printf '[%s]' 'x {{ version }} y'": f"[x {value} y]",
        "printf '[%s]' --flag={{ version }}": f"[--flag={value}]",
        "printf '[%s]' {{ service }}-{{ version }}": f"[api-{value}]",
        "printf '[%s]' \"$(printf %s {{ version }})\"": f"[{value.rstrip(chr(10))}]",
        "cat <<EOF\n[{{ version }}]\nEOF": f"[{value}]\n",
    }
    for command, expected in forms.items():
        assert printed(tmp_path, command, version=value) == expected, command


def test_deploy_script_gets_two_words(tmp_path):
    script = tmp_path / "deploy.sh"
    script.write_text('#!/bin/sh\nprintf "%s|" "$#" "$@"\n')
    script.chmod(0o755)
    out = printed(tmp_path, "./deploy.sh {{ service }} {{ version }}", version="1 2; id")
    assert out == "2|api|1 2; id|"


def test_the_log_shows_references_and_values_on_single_lines(tmp_path):
    result, log = run(
        tmp_path, "echo {{ service }} {{ reason }} > /dev/null", reason="PAY-1\ntouch x #"
    )
    assert result.ok
    assert log == (
        '$ echo "${INTERLOCK_ARG_SERVICE}" "${INTERLOCK_ARG_REASON}" > /dev/null\n'
        "  INTERLOCK_ARG_SERVICE=api\n"
        '  INTERLOCK_ARG_REASON="PAY-1\\ntouch x #"\n'
    )


def test_secrets_are_read_by_the_shell_and_stay_out_of_the_logged_command(tmp_path):
    result, log = run(
        tmp_path,
        'echo "${DEPLOY_TOKEN}" > token.txt; echo "why={{ reason }}"',
        environ={"DEPLOY_TOKEN": "tok-123456"},
        reason="${DEPLOY_TOKEN} $DEPLOY_TOKEN",
    )
    assert result.ok, log
    assert (tmp_path / "token.txt").read_text() == "tok-123456\n"
    assert "tok-123456" not in log
    # A value naming a secret is never expanded: it stays that text.
    assert log.endswith("\nwhy=${DEPLOY_TOKEN} $DEPLOY_TOKEN\n")


def test_a_step_env_cannot_replace_a_value(tmp_path):
    result, log = run(
        tmp_path,
        'echo {{ version }} "$OTHER"',
        env={"INTERLOCK_ARG_VERSION": "$(id)", "OTHER": "kept"},
    )
    assert result.ok and log.endswith("\n1.4.2 kept\n")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("cat <<'EOT'\n{{ reason }}\nEOT", "quoted delimiter"),
        ('cat <<"EOT"\n{{ reason }}\nEOT', "quoted delimiter"),
        ("echo $(( {{ version }} + 1 ))", "inside $((…))"),
    ],
)
def test_places_a_value_cannot_stand_are_refused(tmp_path, command, message):
    result, log = run(tmp_path, command + "\ntouch ran")
    assert not result.ok and message in (result.error or "")
    assert not (tmp_path / "ran").exists()


def test_a_nul_byte_is_refused(tmp_path):
    result, _ = run(tmp_path, "echo {{ reason }}", reason="a\0b")
    assert not result.ok and "NUL" in (result.error or "")


def test_unknown_placeholder_still_fails_clearly(tmp_path):
    result, _ = run(tmp_path, "echo {{ commit }}")
    assert not result.ok and result.error == "no value for placeholder {{ commit }}"


def test_two_names_that_look_alike_get_two_variables():
    command = render_shell("{{ a.b }} {{ a_b }} {{ a.b }}", {"a.b": "1", "a_b": "2"})
    assert command.arguments == {"INTERLOCK_ARG_A_B": "1", "INTERLOCK_ARG_A_B_2": "2"}
    assert command.script == (
        '"${INTERLOCK_ARG_A_B}" "${INTERLOCK_ARG_A_B_2}" "${INTERLOCK_ARG_A_B}"'
    )


def test_a_steps_env_gets_its_placeholders_and_secrets_filled_in(tmp_path):
    hostile = "$(touch pwned-env)"
    result, log = run(
        tmp_path,
        'echo "V=$V R=$R T=$T"; [ "$T" = tok-123456 ] && echo token-ok',
        environ={"DEPLOY_TOKEN": "tok-123456"},
        env={"V": "v={{ version }}", "R": "{{ reason }}", "T": "${DEPLOY_TOKEN}"},
        reason=hostile,
    )
    assert result.ok, log
    assert f"V=v=1.4.2 R={hostile}" in log and "token-ok" in log
    assert not (tmp_path / "pwned-env").exists()
    assert "tok-123456" not in log  # the secret is masked wherever it shows


def test_a_steps_env_naming_an_unset_variable_fails_the_step_clearly(tmp_path):
    result, _ = run(tmp_path, "true", env={"T": "${NOT_SET_ANYWHERE}"})
    assert not result.ok and "${NOT_SET_ANYWHERE}" in (result.error or "")


def test_a_steps_env_keeps_a_literal_reference_written_with_a_doubled_dollar(tmp_path):
    result, log = run(tmp_path, 'echo "L=$L"', env={"L": "$${NOT_SET_ANYWHERE}-{{ version }}"})
    assert result.ok, log
    assert "L=${NOT_SET_ANYWHERE}-1.4.2" in log


def test_output_keeps_characters_split_across_reads_whole(tmp_path):
    # 300,000 bytes of three-byte characters: the pipe's 64 KiB reads cut some in two.
    script = "import sys; sys.stdout.write('日' * 100000 + '\\n' + 'é')"
    result, log = run(tmp_path, f'python3 -c "{script}"')
    assert result.ok, log
    output = log.split("\n", 1)[1]  # after the logged command
    assert output.count("日") == 100000 and "\ufffd" not in output
    assert output.rstrip("\n").endswith("é")


def test_a_detached_child_holding_the_output_neither_holds_the_step_nor_writes_to_it(tmp_path):
    sink = LogSink()
    ctx = StepContext(
        variables=DEFAULTS,
        environ={"PATH": os.environ["PATH"]},
        cwd=str(tmp_path),
        timeout=10,
        log=sink,
    )
    child = "(while [ ! -f go ]; do sleep 0.02; done; echo late; touch wrote) & echo done"
    begun = time.monotonic()
    result = ShellExecutor().run({"run": child, "env": {}}, ctx)
    # Once the pipe is empty the step is over: no waiting on the reader (it was 2 s).
    assert result.ok and time.monotonic() - begun < 1.5
    (tmp_path / "go").touch()  # the child writes once the step has ended
    # ... and is not killed by a closed pipe for it (a daemon a deploy started lives on).
    wait_for(lambda: (tmp_path / "wrote").exists(), message="the child to write and go on")
    wait_for(
        lambda: not any(t.name == "step-output" for t in threading.enumerate()),
        message="the step's output reader to end (it reads what the child wrote, then stops)",
    )
    assert sink.text().splitlines()[1:] == ["done"]  # after the logged command


def test_all_a_step_wrote_before_it_ended_is_logged_though_a_child_holds_the_pipe(tmp_path):
    sink = LogSink(limit=8 * 1024 * 1024)
    ctx = StepContext(
        variables=DEFAULTS,
        environ={"PATH": os.environ["PATH"]},
        cwd=str(tmp_path),
        timeout=10,
        log=sink,
    )
    script = (
        "(while [ ! -f go ]; do sleep 0.02; done) & "
        "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo last line"
    )
    begun = time.monotonic()
    result = ShellExecutor().run({"run": script, "env": {}}, ctx)
    took = time.monotonic() - begun
    (tmp_path / "go").touch()
    output = sink.text().split("\n", 1)[1]  # after the logged command
    assert result.ok and took < 1.5
    assert output == "x" * 3000000 + "\nlast line\n"

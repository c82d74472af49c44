"""What the CLI prints: a step's line in `release watch`, and errors without repeats."""

from __future__ import annotations

import click
import pytest

from interlock.cli.output import run
from interlock.cli.releases import _step_detail
from interlock.errors import InvalidInput


def _step(**kw):
    base = {
        "state": "running",
        "attempt": 1,
        "max_attempts": 3,
        "error": None,
        "started_at": None,
        "finished_at": None,
    }
    return {**base, **kw}


def test_a_step_line_says_which_try_and_why():
    assert _step_detail(_step()) == " (attempt 1/3)"
    # re-run after a lost worker, beyond its retries: not "attempt 2/1"
    lost = [{"attempt": 1, "outcome": "lost"}]
    assert _step_detail(_step(attempt=2, max_attempts=1, attempts=lost)) == (
        " (attempt 2: run again after its worker was lost)"
    )
    # A gate that polls, or a step that looks again at what it waits for, counts tries:
    # no lost worker, and not "4 of 1".
    polled = [{"attempt": 3, "outcome": "waiting"}]
    assert _step_detail(_step(kind="gate", attempt=4, max_attempts=1, attempts=polled)) == (
        " (try 4)"
    )
    assert _step_detail(
        _step(kind="gate", state="ready", attempt=4, max_attempts=1, error="not yet: 503")
    ) == (" (try 4: not yet: 503)")
    assert _step_detail(_step(kind="step", attempt=2, max_attempts=1, attempts=polled)) == (
        " (try 2)"
    )
    assert _step_detail(_step(state="ready", attempt=1, error="exited with status 1")) == (
        " (try 2 next, after: exited with status 1)"
    )
    failed = _step(
        state="failed",
        error="exited with status 4",
        started_at="2026-11-27T10:00:00+00:00",
        finished_at="2026-11-27T10:00:02+00:00",
    )
    assert _step_detail(failed) == " in 2s: exited with status 4"


def _fails_with(error: InvalidInput) -> click.Group:
    @click.group()
    def cli() -> None:
        pass

    @cli.command()
    def go() -> None:
        raise error

    return cli


def test_an_error_is_printed_once(capsys):
    one = InvalidInput("reason must not be empty", field="reason")
    with pytest.raises(SystemExit) as done:
        run(_fails_with(one), ["go"])
    assert done.value.code == 2
    assert capsys.readouterr().err == "error: reason must not be empty\n"

    two = InvalidInput(
        "a: bad; b: worse",
        errors=[{"field": "a", "message": "bad"}, {"field": "b", "message": "worse"}],
    )
    with pytest.raises(SystemExit):
        run(_fails_with(two), ["go"])
    assert capsys.readouterr().err == "error: 2 problems:\n  a: bad\n  b: worse\n"


def test_an_unexpected_error_is_one_line_not_a_traceback(capsys, monkeypatch):
    monkeypatch.delenv("INTERLOCK_DEBUG", raising=False)

    @click.group()
    def cli() -> None:
        pass

    @cli.command()
    def go() -> None:
        raise KeyError("entries")

    with pytest.raises(SystemExit) as done:
        run(cli, ["go"])
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "KeyError" in err and "INTERLOCK_DEBUG=1" in err


def test_a_step_waiting_for_a_person_shows_how_long_it_ran_not_a_growing_time():
    from interlock.cli.releases import _took

    tries = [
        {"finished_at": "2026-11-28T10:00:02+00:00"},
        {"finished_at": "2026-11-28T10:00:05+00:00"},
    ]
    step = {"started_at": "2026-11-28T10:00:00+00:00", "finished_at": None, "attempts": tries}
    assert _took({**step, "state": "needs_attention"}) == "5s"
    assert _took({**step, "state": "needs_attention", "attempts": []}) == ""  # lost: unknown
    assert _took({**step, "state": "succeeded", "finished_at": "2026-11-28T10:01:00+00:00"}) == (
        "1m"
    )


def test_a_watcher_shows_a_try_that_began_and_ended_between_two_looks(capsys):
    from interlock.cli.releases import _print_changes

    def looked(state: str, attempt: int, error: str | None = None) -> dict[str, object]:
        step = _step(kind="gate", key="gate/check", state=state, attempt=attempt, error=error)
        deployment = {"id": 1, "environment": "staging", "state": "running"}
        return {
            "id": 1,
            "state": "running",
            "environment": "staging",
            "deployments": [{**deployment, "finished_at": None, "steps": [step]}],
        }

    seen: dict[tuple[int, str], str] = {}
    _print_changes(looked("running", 1), seen, None)
    _print_changes(looked("ready", 1, "not yet"), seen, "running")
    # try 2 ran and failed, try 3 started, all between two looks of the watcher
    _print_changes(looked("ready", 2, "not yet"), seen, "running")
    _print_changes(looked("running", 3), seen, "running")
    _print_changes(looked("running", 3), seen, "running")  # nothing new: nothing printed
    lines = [line.split("] ", 2)[-1] for line in capsys.readouterr().out.splitlines()]
    steps = [line for line in lines if "gate/check" in line]
    assert steps == [
        "staging  gate/check  running (try 1)",
        "staging  gate/check  ready (try 1: not yet)",
        "staging  gate/check  running (try 2)",
        "staging  gate/check  ready (try 2: not yet)",
        "staging  gate/check  running (try 3)",
    ]

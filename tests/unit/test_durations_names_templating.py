"""Durations, strict names, and placeholder rendering (quoting is the security boundary)."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from interlock.domain.durations import format_duration, parse_duration
from interlock.domain.names import check_digest, parse_ref
from interlock.domain.templating import (
    env_references,
    render_shell,
    render_url,
    resolve_env,
    unknown_names,
)
from interlock.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("2h", 7200),
        ("1h30m", 5400),
        ("7d", 604800),
        ("250ms", 0.25),
        (45, 45),
        (1.5, 1.5),
        ("1m 30s", 90),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "five minutes", "5x", "m5", "-5s", "1h30"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="90s|negative|duration"):
        parse_duration(text if text != "5" else "5q")


def test_format_duration():
    assert format_duration(0.019) == "19ms"
    assert format_duration(2.5) == "2.5s"
    assert format_duration(5400) == "1h30m"


def test_refs():
    ref = parse_ref("api@1.4.2+build.7")
    assert (ref.service, ref.version) == ("api", "1.4.2+build.7")
    for bad in ["api", "@1.0", "api@", "API@1.0", "api@1.0;rm -rf /", "api@$(id)", "a b@1"]:
        with pytest.raises(InvalidInput):
            parse_ref(bad)


def test_digest():
    check_digest("sha256:" + "a" * 64)
    with pytest.raises(InvalidInput, match="sha256"):
        check_digest("md5:abc")


def run_shell(template: str, values: dict[str, str]) -> str:
    """What ``sh -c`` prints for the rendered template, its references in the environment."""
    command = render_shell(template, values)
    return subprocess.run(
        ["/bin/sh", "-c", command.script],
        env={"PATH": "/usr/bin:/bin", **command.arguments},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_shell_values_are_single_words(tmp_path):
    hostile = "x'; touch " + str(tmp_path / "pwned") + "; echo '"
    assert run_shell("printf '%s\\n' {{ version }}", {"version": hostile}) == hostile + "\n"
    assert not (tmp_path / "pwned").exists()
    assert run_shell("printf '<%s>' {{ service }}", {"service": "a b"}) == "<a b>"
    # The script holds a reference, never the value.
    command = render_shell("deploy {{ service }}", {"service": "a b"})
    assert command.script == 'deploy "${INTERLOCK_ARG_SERVICE}"'
    assert command.arguments == {"INTERLOCK_ARG_SERVICE": "a b"}


def test_url_values_are_encoded():
    assert render_url("http://h/deploy/{{ version }}", {"version": "1.0+b/../x"}) == (
        "http://h/deploy/1.0%2Bb%2F..%2Fx"
    )


def test_unknown_placeholders_are_found():
    assert unknown_names("run {{ service }} {{ verison }} {{ params.x }}") == ["verison"]


def test_env_references():
    assert env_references("Bearer ${TOKEN} ${OTHER}") == ["TOKEN", "OTHER"]
    text, used = resolve_env("Bearer ${TOKEN}", {"TOKEN": "s3cret"})
    assert text == "Bearer s3cret" and used == ["s3cret"]
    with pytest.raises(KeyError):
        resolve_env("${MISSING}", {})


def test_a_doubled_dollar_writes_a_literal_reference():
    assert env_references("$${HOME} ${TOKEN} $${X}") == ["TOKEN"]
    text, used = resolve_env("literal $${HOME}, real ${TOKEN}, cost $$5", {"TOKEN": "t"})
    assert text == "literal ${HOME}, real t, cost $$5" and used == ["t"]


HOSTILE = [
    "eu-1; touch {flag}",
    "x'; touch {flag}; echo '",
    'x"; touch {flag}; echo "',
    "$(touch {flag})",
    "`touch {flag}`",
    "\\",
    "a\\'b",
    "$HOME",
    "*",
]


@pytest.mark.parametrize(
    "template",
    [
        "printf '%s\\n' {{ reason }}",
        "printf '%s\\n' '{{ reason }}'",
        "printf '%s\\n' 'before {{ reason }} after'",
        "printf '%s\\n' \"{{ reason }}\"",
        "printf '%s\\n' \"pre {{ reason }} post\"",
        "printf '%s\\n' x'{{ reason }}'y\"{{ reason }}\"z{{ reason }}",
        'printf \'%s\\n\' "a\\"b {{ reason }}"',
    ],
)
def test_a_value_never_becomes_shell_syntax_wherever_it_stands(template, tmp_path):
    flag = tmp_path / "pwned"
    for raw in HOSTILE:
        value = raw.format(flag=flag)
        out = run_shell(template, {"reason": value})
        assert not flag.exists(), (template, value)
        # What a shell word of the template means, with the value in place.
        words = shlex.split(template.replace("{{ reason }}", "\x00"))[2:]
        assert out.splitlines() == [w.replace("\x00", value) for w in words], template


def test_placeholders_and_env_in_one_pass():
    from interlock.domain.templating import render_with_env

    text, used = render_with_env(
        "token=${TOKEN} why={{ reason }}",
        {"reason": "${TOKEN} {{ reason }}"},
        {"TOKEN": "s3cret"},
    )
    assert text == "token=s3cret why=${TOKEN} {{ reason }}"  # the value is not expanded again
    assert used == ["s3cret"]
    text, used = render_with_env("$${TOKEN}={{ reason }}", {"reason": "$${x}"}, {"TOKEN": "s"})
    assert (text, used) == ("${TOKEN}=$${x}", [])  # the escape, but never in a value
    text, _ = render_with_env("$${{ version }}", {"version": "1.2"}, {})
    assert text == "$$1.2"  # `$$` before a placeholder is text, as it always was

"""Hostile interlock.yaml files: each is one error naming file and line, in bounded time and memory.

Alias bombs, recursive aliases and merges, deep nesting, control characters,
files that are not UTF-8 text, too large, a directory, empty or not a mapping.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from interlock.errors import ConfigError
from interlock.spec.loader import load_config, parse_config
from interlock.spec.yaml_tree import MAX_CONFIG_BYTES

VALID = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: a, run: "true"}]}
"""


def refused(text: str, path: str = "conf/interlock.yaml") -> dict:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path(path))
    [issue] = info.value.errors
    assert info.value.detail.splitlines()[1].startswith(
        f"{path}:{issue['line']}:{issue['column']}: "
    )
    return issue


def laughs(levels: int, indent: str = "    ") -> str:
    """The billion-laughs document: each level holds nine aliases of the one before."""
    lines = [f'{indent}l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"{indent}l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_is_an_error_at_its_line_in_bounded_time_and_memory():
    bomb = VALID.replace(
        'api: {deploy: [{name: a, run: "true"}]}',
        "api:\n    description: x\n    deploy:\n      - name: a\n        uses: noop\n"
        "        with:\n" + laughs(10, "          ") + "          all: *l9",
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    issue = refused(bomb)
    assert time.monotonic() - started < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB
    assert "alias bomb" in issue["message"] and "more than 100,000 values" in issue["message"]
    assert issue["field"].startswith("services.api.deploy[0].with.l")
    assert 8 <= issue["line"] <= 17


def test_a_merge_bomb_is_an_error_too():
    lines = ["version: 1", "runbooks:", "  r:", "    description: x", "    params:"]
    lines.append("      m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}")
    for level in range(1, 40):
        lines.append(f"      m{level}: &m{level} {{<<: [{', '.join([f'*m{level - 1}'] * 9)}]}}")
    issue = refused("\n".join(lines) + "\n")
    assert "alias bomb" in issue["message"] and issue["field"].startswith("runbooks.r.params.m")


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("version: 1\nenvironments: &e [*e]\n", 2, "environments[0]"),
        ("version: 1\nservices: &s {api: {deploy: *s}}\n", 2, "services.api.deploy"),
        ("version: 1\ndefaults: &d {<<: *d}\n", 2, "defaults"),
    ],
)
def test_a_recursive_alias_or_merge_is_an_error_naming_its_line(text, line, field):
    issue = refused(text)
    assert "recursive alias" in issue["message"] and "anchored at line 2" in issue["message"]
    assert (issue["line"], issue["field"]) == (line, field)


def test_aliases_and_merges_still_work_and_a_written_key_wins_over_a_merged_one():
    text = VALID.replace(
        'api: {deploy: [{name: a, run: "true"}]}',
        'api:\n    deploy:\n      - &step {name: a, run: "true", timeout: 5m}\n'
        "      - {<<: *step, name: b}\n  db: {deploy: [*step]}",
    )
    config = parse_config(text, Path("interlock.yaml"))
    assert [s.name for s in config.services["api"].deploy] == ["a", "b"]
    assert config.services["api"].deploy[1].timeout == 300
    assert config.services["db"].deploy[0].name == "a"


def test_deep_nesting_is_an_error_not_a_crash():
    deep = "[" * 500 + "]" * 500
    issue = refused(VALID.replace('run: "true"', f"uses: noop, with: {{x: {deep}}}"))
    assert "nest more than 64 levels" in issue["message"] and issue["line"] == 4
    block = "".join("  " * i + "- \n" for i in range(1, 900))
    issue = refused(f"version: 1\nenvironments:\n{block}")
    assert "nest more than 64 levels" in issue["message"]


@pytest.mark.parametrize(
    ("bad", "code"), [("\x00", "U+0000"), ("\x1b", "U+001B"), ("\ufffe", "U+FFFE")]
)
def test_a_control_character_is_an_error_with_line_and_column(bad, code):
    issue = refused(VALID.replace("name: staging", f"name: stag{bad}ing"))
    assert (issue["line"], issue["column"]) == (2, 27)
    assert f"the character {code} is not allowed" in issue["message"]


@pytest.mark.parametrize(
    ("text", "message", "field"),
    [
        (VALID + "tickets: !!python/name:os.system x\n", "could not determine a constructor", ""),
        (VALID + "defaults: {timeout: !!timestamp 2020-99-99}\n", "month must be", "timeout"),
        (VALID + "defaults: {retries: !!int abc}\n", "invalid literal", "retries"),
        (VALID + "defaults: {retries: " + "9" * 5000 + "}\n", "Exceeds the limit", "retries"),
        (VALID + "defaults: {<<: 5}\n", "<< merges a mapping", ""),
        (VALID + "tickets: !!timestamp x\n", "cannot read 'x': it is not a valid timestamp", ""),
    ],
)
def test_a_value_yaml_cannot_construct_is_an_error_not_a_crash(text, message, field):
    issue = refused(text)
    assert issue["line"] == 5 and message in issue["message"]
    assert issue["field"].endswith(field)


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "interlock.yaml"
    path.write_bytes(data)
    return path


def load_refused(path: Path) -> dict:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [issue] = info.value.errors
    assert info.value.detail.startswith("1 problem in the configuration:")
    assert issue["file"] == str(path)
    return issue


def test_a_file_that_is_not_utf8_names_the_line_and_column_of_the_bad_byte(tmp_path):
    issue = load_refused(write(tmp_path, b"version: 1\nenvironments: [{name: \xe9t\xe9}]\n"))
    assert (issue["line"], issue["column"]) == (2, 23)
    assert "not UTF-8 text (byte 0xe9); save the file as UTF-8" in issue["message"]


def test_a_directory_an_empty_file_and_a_list_are_clear_errors(tmp_path):
    assert "is a directory" in load_refused(tmp_path)["message"]
    assert "the file is empty" in load_refused(write(tmp_path, b"# nothing yet\n"))["message"]
    issue = load_refused(write(tmp_path, b"- version: 1\n"))
    assert "top level must be a mapping of keys" in issue["message"]
    assert "not a list" in issue["message"]
    assert "not the str 'hello'" in load_refused(write(tmp_path, b"hello\n"))["message"]


def test_a_file_over_the_size_limit_is_refused_without_reading_all_of_it(tmp_path):
    big = write(tmp_path, VALID.encode() + b"#" * MAX_CONFIG_BYTES)
    assert "larger than 1 MiB" in load_refused(big)["message"]
    assert "larger than 1 MiB" in load_refused(Path("/dev/zero"))["message"]


def test_a_key_written_like_pydantics_key_marker_is_an_unknown_key_not_a_crash():
    with pytest.raises(ConfigError) as info:
        parse_config(VALID + "'[key]': 1\n", Path("interlock.yaml"))
    [issue] = info.value.errors
    assert (issue["line"], issue["field"]) == (5, "[key]")
    assert issue["message"].startswith("unknown key '[key]'")


def test_more_values_than_a_config_holds_is_an_error_at_the_one_past_the_bound(monkeypatch):
    from interlock.spec import yaml_tree

    monkeypatch.setattr(yaml_tree, "MAX_VALUES", 40)  # 200,000 takes a while to write out
    issue = refused(VALID.replace('run: "true"', f"uses: noop, with: {{x: {list(range(50))}}}"))
    assert issue["message"] == "the file holds more than 40 values" and issue["line"] == 4
    assert issue["field"].startswith("services.api.deploy[0].with.x[")

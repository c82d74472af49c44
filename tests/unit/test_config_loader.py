"""interlock.yaml: good files load; every kind of bad file says where and what is wrong."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from interlock.errors import ConfigError
from interlock.spec.loader import load_config, parse_config
from interlock.spec.model import json_schema

MINIMAL = """\
version: 1
environments:            # list order is the promotion order
  - name: staging
  - name: production
services:
  api:
    deploy:
      - name: migrate
        run: ./scripts/migrate.sh {{ service }} {{ version }} {{ environment }}
        timeout: 5m
        retries: 2
        idempotent: true
      - name: roll-out
        http: {method: POST, url: "http://127.0.0.1:9000/deploy", expect_status: 200}
"""


def errors_of(text: str) -> list[dict]:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), Path("interlock.yaml"))
    assert info.value.exit_code == 2
    return info.value.errors


def test_the_minimal_file_from_the_issue_is_valid():
    config = parse_config(MINIMAL, Path("interlock.yaml"))
    step = config.services["api"].deploy[0]
    assert step.timeout == 300 and step.retries == 2 and step.idempotent is True
    assert config.services["api"].deploy[1].http.url == "http://127.0.0.1:9000/deploy"
    assert [e.name for e in config.environments] == ["staging", "production"]


def test_a_typo_names_line_column_and_the_closest_key():
    [error] = errors_of(MINIMAL.replace("        timeout: 5m", "        timout: 5m"))
    assert (error["line"], error["column"]) == (10, 9)
    assert error["field"] == "services.api.deploy[0].timout"
    assert "unknown key 'timout'; did you mean 'timeout'?" == error["message"]
    assert error["suggestion"] == "timeout"


def test_the_message_carries_file_line_and_column():
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL.replace("retries: 2", "retries: many"), Path("conf/x.yaml"))
    assert "conf/x.yaml:11:18: services.api.deploy[0].retries:" in info.value.detail
    assert "'many'" in info.value.detail


def test_bad_duration():
    [error] = errors_of(MINIMAL.replace("timeout: 5m", "timeout: five"))
    assert (error["line"], error["field"]) == (10, "services.api.deploy[0].timeout")
    assert "write it like 90s, 5m, 2h" in error["message"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[1]", "not a list"),
        ("{a: 1}", "not a mapping"),
        ("0s", "longer than 0s"),
        ("0", "longer than 0s"),
        (".nan", "not an infinite number"),
        (".inf", "not an infinite number"),
    ],
)
def test_a_timeout_that_is_not_a_duration_or_is_zero_is_an_error_not_a_crash(value, message):
    [error] = errors_of(MINIMAL.replace("timeout: 5m", f"timeout: {value}"))
    assert (error["line"], error["field"]) == (10, "services.api.deploy[0].timeout")
    assert message in error["message"]


def test_a_null_default_says_to_leave_the_key_out():
    [error] = errors_of(MINIMAL.replace("services:", "defaults: {backoff: null}\nservices:"))
    assert error["field"] == "defaults.backoff"
    assert "leave the key out" in error["message"]


@pytest.mark.parametrize("url", ["http://x/${", "http://x/${1BAD}", "http://x/${A-B}"])
def test_a_broken_env_reference_is_an_error(url):
    text = MINIMAL.replace('"http://127.0.0.1:9000/deploy"', f'"{url}"')
    [error] = errors_of(text)
    assert error["field"] == "services.api.deploy[1].http.url"
    assert "write ${NAME}" in error["message"]


def test_a_doubled_dollar_is_a_literal_reference_not_an_error():
    text = MINIMAL.replace('"http://127.0.0.1:9000/deploy"', '"http://x/$${1BAD}/${OK}"')
    config = parse_config(text, Path("interlock.yaml"))
    assert config.services["api"].deploy[1].http.url == "http://x/$${1BAD}/${OK}"


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ("sleep $(( {{ attempt }} * 5 ))", "inside $((…))"),
        ("(( {{ attempt }} > 1 )) && echo again", "inside $((…)) or ((…))"),
        ("cat <<'EOT'\\n{{ version }}\\nEOT", "quoted delimiter"),
    ],
)
def test_a_placeholder_where_the_shell_would_run_it_is_refused_at_validation(run, message):
    [error] = errors_of(
        MINIMAL.replace(
            "./scripts/migrate.sh {{ service }} {{ version }} {{ environment }}", f'"{run}"'
        )
    )
    assert error["field"] == "services.api.deploy[0].run" and message in error["message"]


def test_shell_syntax_with_braces_in_run_is_left_alone():
    parse_config(
        MINIMAL.replace("run: ./scripts/migrate.sh", "run: echo ${HOME:-/} ${#PATH} && ./m.sh"),
        Path("interlock.yaml"),
    )


def test_missing_key_points_at_the_mapping():
    [error] = errors_of("""\
        version: 1
        environments: [{name: staging}]
        services:
          api:
            owner: payments
        """)
    assert error["field"] == "services.api.deploy"
    assert error["message"] == "missing required key 'deploy'"
    assert error["line"] == 5


def test_yaml_syntax_error_has_a_position():
    [error] = errors_of("version: 1\nenvironments: [\n  - name: x\n")
    assert error["line"] >= 2 and "not valid YAML" in error["message"]


def test_duplicate_keys_are_errors():
    [error] = errors_of(
        MINIMAL.replace("        retries: 2\n", "        retries: 2\n        retries: 3\n")
    )
    assert "duplicate key 'retries'" in error["message"] and "line 11" in error["message"]
    assert error["line"] == 12


def test_step_needs_exactly_one_executor():
    [error] = errors_of(
        MINIMAL.replace("        http: {method", "        run: echo hi\n        http: {method")
    )
    assert (
        "exactly one of run, http, uses, runbook or manual (found run, http)" in (error["message"])
    )
    assert error["field"] == "services.api.deploy[1]"


def test_unknown_placeholder():
    [error] = errors_of(MINIMAL.replace("{{ environment }}", "{{ enviroment }}"))
    assert error["field"] == "services.api.deploy[0].run"
    assert "unknown placeholder {{ enviroment }}" in error["message"]
    assert error["line"] == 9


def test_unknown_plugin_lists_the_installed_ones():
    [error] = errors_of(
        MINIMAL.replace(
            "run: ./scripts/migrate.sh {{ service }} {{ version }} {{ environment }}",
            "uses: teleport",
        )
    )
    assert "no executor plug-in named 'teleport' (installed: noop)" in error["message"]


def test_cross_key_rules():
    problems = errors_of("""\
        version: 1
        environments: [{name: staging}, {name: staging}]
        services:
          api:
            deploy:
              - {name: a, run: "true", environments: [prod]}
              - {name: a, run: "true"}
        """)
    messages = [p["message"] for p in problems]
    assert "environment 'staging' is listed twice" in messages
    assert "no environment named 'prod'" in messages
    assert any("step name 'a' is already used" in m for m in messages)


def test_depends_on_names_the_cycle_the_unknown_service_and_the_self_reference():
    # Lines and columns are those of the dedented file: api's depends_on is line 5.
    problems = errors_of("""\
        version: 1
        environments: [{name: staging}]
        services:
          api:
            depends_on: [db]
            deploy: [{name: a, run: "true"}]
          db:
            depends_on: [cache]
            deploy: [{name: a, run: "true"}]
          cache:
            depends_on: [api, cache, queue]
            deploy: [{name: a, run: "true"}]
        """)
    found = {p["field"]: (p["line"], p["column"], p["message"]) for p in problems}
    assert found == {
        "services.cache.depends_on[1]": (11, 23, "a service cannot depend on itself"),
        "services.cache.depends_on[2]": (11, 30, "no service named 'queue'"),
        "services.api.depends_on": (5, 17, "depends_on forms a cycle: api → db → cache → api"),
    }


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("PAY-([", "not a regular expression: unterminated character set"),
        (".*", "matches an empty string"),
    ],
)
def test_a_bad_ticket_pattern_is_a_config_error(pattern, message):
    problems = errors_of(f"""\
        version: 1
        environments: [{{name: staging}}]
        services:
          api: {{deploy: [{{name: a, run: "true"}}]}}
        tickets:
          pattern: "{pattern}"
        """)
    [problem] = problems
    assert problem["field"] == "tickets.pattern" and problem["line"] == 6
    assert message in problem["message"]


def test_invalid_names_and_versions():
    problems = errors_of("""\
        version: 2
        environments: [{name: Staging}]
        services:
          API: {deploy: [{name: a, run: "true"}]}
        """)
    fields = {p["field"]: p["message"] for p in problems}
    assert {"version", "environments[0].name", "services.API"} <= set(fields)
    assert fields["environments[0].name"].startswith("must be lower-case letters")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("- a\n- b\n", "top level must be a mapping"),
    ],
)
def test_not_a_config(text, message):
    [error] = errors_of(text)
    assert message in error["message"]


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file; run `interlock init`"):
        load_config(tmp_path / "nope.yaml")


def test_load_config_hashes_the_bytes(tmp_path):
    path = tmp_path / "interlock.yaml"
    path.write_text(MINIMAL)
    loaded = load_config(path)
    assert len(loaded.hash) == 64 and loaded.base_dir == tmp_path


def test_init_template_is_valid(tmp_path):
    template = Path(__file__).parents[2] / "src/interlock/spec/init_template.yaml"
    config = parse_config(template.read_text().replace("__SERVICE__", "api"), template)
    assert [e.name for e in config.environments] == ["dev", "staging", "production"]


def test_shipped_schema_is_generated_from_the_models():
    shipped = Path(__file__).parents[2] / "src/interlock/spec/interlock.schema.json"
    assert json.loads(shipped.read_text()) == json_schema(), (
        "regenerate it: .venv/bin/interlock schema > src/interlock/spec/interlock.schema.json"
    )


def test_schema_validates_the_minimal_file():
    import jsonschema
    import yaml

    jsonschema.validate(yaml.safe_load(MINIMAL), json_schema())

"""Configuration at company scale: vars per environment, included files, templates."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from interlock.domain.plan import ReleaseItem
from interlock.errors import ConfigError
from interlock.spec.loader import load_config, parse_config
from interlock.spec.model import json_schema
from interlock.spec.planner import build_plan

MAIN = """\
version: 1
vars: {region: eu-west-1}
environments:
  - name: staging
    vars: {api_url: "https://staging.example.com", replicas: 1}
  - name: production
    production: true
    vars: {api_url: "https://example.com", replicas: 3}
templates:
  k8s:
    params:
      namespace: {required: true}
      image: {default: registry.example.com/app}
    deploy:
      - name: apply
        run: set-image -n {{ vars.namespace }} {{ service }} {{ vars.image }}:{{ version }}
      - name: scale
        run: scale -n {{ vars.namespace }} {{ service }} {{ vars.replicas }}
      - name: smoke
        http: {method: GET, url: "{{ vars.api_url }}/health"}
services:
  api:
    extends: k8s
    params: {namespace: core}
    vars: {replicas: 2}
    overrides:
      production: {vars: {replicas: 6}}
    deploy:
      - name: smoke
        run: ./smoke.sh {{ vars.api_url }} {{ vars.region }}
      - name: announce
        run: echo done
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "interlock.yaml"


def errors(path: Path) -> list[dict]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.errors


def steps_of(plan, env: str) -> dict[str, dict]:
    return {n.key: n.spec for n in plan.environment(env).nodes if n.kind == "step"}


def test_a_service_gets_its_environments_values_the_closest_winning(tmp_path):
    loaded = load_config(write(tmp_path, {"interlock.yaml": MAIN}))
    plan = build_plan(
        loaded.config, [ReleaseItem("api", "1.2")], config_version=1, base_dir=tmp_path
    )
    staging, production = steps_of(plan, "staging"), steps_of(plan, "production")
    # the template's steps, its `smoke` replaced by the service's, `announce` added at the end
    assert list(staging) == ["api/apply", "api/scale", "api/smoke", "api/announce"]
    assert staging["api/smoke"]["run"] == "./smoke.sh {{ vars.api_url }} {{ vars.region }}"
    assert staging["api/apply"]["vars"] == {
        "namespace": "core",
        "image": "registry.example.com/app",
    }
    assert staging["api/scale"]["vars"]["replicas"] == "2"  # the service's over staging's 1
    assert production["api/scale"]["vars"]["replicas"] == "6"  # its production override
    assert production["api/smoke"]["vars"] == {
        "api_url": "https://example.com",
        "region": "eu-west-1",
    }
    assert "vars" not in staging["api/announce"]


def test_an_unknown_variable_names_the_file_line_and_column_and_where_it_lacks(tmp_path):
    text = MAIN.replace("{{ vars.region }}", "{{ vars.regoin }}")
    [error] = errors(write(tmp_path, {"interlock.yaml": text}))
    assert (error["line"], error["column"]) == (30, 14)
    assert error["field"] == "services.api.deploy[0].run"
    assert "unknown variable {{ vars.regoin }}" in error["message"]
    assert "api in staging, api in production" in error["message"]


def test_a_variable_missing_in_one_environment_points_at_the_templates_step(tmp_path):
    text = MAIN.replace(
        'vars: {api_url: "https://example.com", replicas: 3}', "vars: {replicas: 3}"
    )
    [error] = errors(write(tmp_path, {"interlock.yaml": text}))
    # The service's own smoke step lacks it in production too; the template's smoke is replaced.
    assert error["field"] == "services.api.deploy[0].run"
    assert "no value for api in production" in error["message"]
    del_smoke = text.replace(
        "      - name: smoke\n        run: ./smoke.sh {{ vars.api_url }} {{ vars.region }}\n", ""
    )
    [error] = errors(write(tmp_path, {"interlock.yaml": del_smoke}))
    assert error["field"] == "templates.k8s.deploy[2].http.url"
    assert error["line"] == 20


def test_template_parameters_are_checked(tmp_path):
    text = MAIN.replace("params: {namespace: core}", "params: {namespaec: core}")
    found = {e["field"]: e["message"] for e in errors(write(tmp_path, {"interlock.yaml": text}))}
    assert "has no parameter 'namespaec'" in found["services.api.params.namespaec"]
    assert "needs the parameter 'namespace'" in found["services.api.extends"]
    text = MAIN.replace("extends: k8s", "extends: vm")
    [error] = errors(write(tmp_path, {"interlock.yaml": text}))
    assert error["message"] == "no template named 'vm' (known: k8s)"
    text = MAIN.replace("production: {vars:", "prod: {vars:")
    [error] = errors(write(tmp_path, {"interlock.yaml": text}))
    assert error["field"] == "services.api.overrides.prod"


def test_a_runbook_cannot_use_vars():
    text = textwrap.dedent("""\
        version: 1
        environments: [{name: dev}]
        services: {api: {deploy: [{name: d, run: "true"}]}}
        runbooks:
          flush: {steps: [{name: f, run: "flush {{ vars.cache }}"}]}
        """)
    with pytest.raises(ConfigError, match="runbooks have no vars"):
        parse_config(text, Path("interlock.yaml"))


def test_a_secret_reference_in_a_value_must_be_well_formed(tmp_path):
    text = MAIN.replace("vars: {region: eu-west-1}", 'vars: {region: "${file:relative}"}')
    [error] = errors(write(tmp_path, {"interlock.yaml": text}))
    assert error["field"] == "vars.region" and "${file:/path}" in error["message"]


TEAM_MAIN = """\
version: 1
include: ["services/*.yaml", "teams/*/interlock.yaml"]
environments: [{name: staging}, {name: production}]
services:
  gateway:
    deploy: [{name: d, run: "true"}]
"""


def test_included_files_add_services_teams_and_permissions(tmp_path):
    path = write(
        tmp_path,
        {
            "interlock.yaml": TEAM_MAIN,
            "services/billing.yaml": "services:\n  billing: {deploy: [{name: d, run: 'true'}]}\n",
            "teams/pay/interlock.yaml": """\
                teams: {pay: [erin]}
                services:
                  pay: {owner: pay, deploy: [{name: d, run: "true"}]}
                permissions:
                  - {team: pay, allow: [release.create], services: owned}
                """,
        },
    )
    loaded = load_config(path)
    assert sorted(loaded.config.services) == ["billing", "gateway", "pay"]
    assert loaded.config.teams == {"pay": ["erin"]}
    assert len(loaded.config.permissions) == 1
    assert [p.name for p in loaded.files] == ["billing.yaml", "interlock.yaml"]
    # what a server stores holds every file: parsing it needs no disk, and matches
    (tmp_path / "services/billing.yaml").unlink()
    again = parse_config(loaded.text, path)
    assert again == loaded.config
    assert loaded.hash == hashlib.sha256(loaded.text.encode()).hexdigest()


def test_a_change_in_an_included_file_changes_the_hash(tmp_path):
    files = {
        "interlock.yaml": TEAM_MAIN.replace(', "teams/*/interlock.yaml"', ""),
        "services/billing.yaml": "services:\n  billing: {deploy: [{name: d, run: 'true'}]}\n",
    }
    first = load_config(write(tmp_path, files)).hash
    (tmp_path / "services/billing.yaml").write_text(
        "services:\n  billing: {deploy: [{name: d, run: 'false'}]}\n"
    )
    assert load_config(tmp_path / "interlock.yaml").hash != first


def test_a_name_defined_twice_names_both_places(tmp_path):
    path = write(
        tmp_path,
        {
            "interlock.yaml": TEAM_MAIN.replace(', "teams/*/interlock.yaml"', ""),
            "services/a.yaml": "services:\n  billing: {deploy: [{name: d, run: 'true'}]}\n",
            "services/b.yaml": "# 2\nservices:\n  billing: {deploy: [{name: d, run: 'true'}]}\n",
        },
    )
    [error] = errors(path)
    assert error["file"].endswith("services/b.yaml") and error["line"] == 3
    assert error["message"] == (
        f"service 'billing' is defined twice: here and at {tmp_path}/services/a.yaml:2:3"
    )


def test_errors_in_an_included_file_name_its_line_and_column(tmp_path):
    path = write(
        tmp_path,
        {
            "interlock.yaml": TEAM_MAIN.replace(', "teams/*/interlock.yaml"', ""),
            "services/billing.yaml": """\
                services:
                  billing:
                    deploy:
                      - name: d
                        run: "true"
                        timeuot: 5m
                """,
        },
    )
    [error] = errors(path)
    assert error["file"] == str(tmp_path / "services/billing.yaml")
    assert (error["line"], error["column"]) == (6, 9)
    assert error["message"] == "unknown key 'timeuot'; did you mean 'timeout'?"


def test_what_an_included_file_may_hold_and_globs_that_match_nothing(tmp_path):
    path = write(
        tmp_path,
        {
            "interlock.yaml": TEAM_MAIN.replace(', "teams/*/interlock.yaml"', ""),
            "services/x.yaml": "environments: [{name: qa}]\n",
        },
    )
    [error] = errors(path)
    assert error["file"].endswith("services/x.yaml") and "may hold only" in error["message"]
    (tmp_path / "services/x.yaml").unlink()
    [error] = errors(path)
    assert (error["field"], error["line"]) == ("include[0]", 2)
    assert "'services/*.yaml' matches no file" in error["message"]


def test_the_schema_serves_main_and_included_files():
    schema = json_schema()
    jsonschema.validate(yaml.safe_load(MAIN), schema)
    jsonschema.validate({"services": {"a": {"deploy": [{"name": "d", "run": "x"}]}}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"environments": [{"name": "qa"}]}, schema)  # not in an include
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": 1}, schema)  # a main file needs its keys
    shipped = Path(__file__).parents[2] / "src/interlock/spec/interlock.schema.json"
    assert json.loads(shipped.read_text()) == schema


def test_the_company_example_validates_plans_and_matches_the_schema():
    root = Path(__file__).parents[2] / "examples/company"
    loaded = load_config(root / "interlock.yaml")
    config = loaded.config
    assert sorted(config.services) == ["checkout", "ledger", "search-api", "storefront"]
    assert len(loaded.files) == 3 and config.config_changes.review == "production_gates"
    plan = build_plan(
        config,
        [ReleaseItem("checkout", "1.4.0"), ReleaseItem("storefront", "2.0")],
        config_version=1,
        base_dir=root,
    )
    production = steps_of(plan, "production")
    assert production["checkout/deploy"]["vars"]["replicas"] == "6"
    assert production["storefront/deploy"]["vars"]["replicas"] == "4"
    assert "checkout/migrate" in production and "checkout/migrate" not in steps_of(plan, "dev")
    schema = json_schema()
    for path in [root / "interlock.yaml", *loaded.files]:
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_a_gate_uses_only_its_environments_vars():
    text = textwrap.dedent("""\
        version: 1
        vars: {domain: example.com}
        environments:
          - name: staging
            vars: {api_url: "https://stg.example.com"}
            gates:
              before:
                - check: {http: {method: GET, url: "{{ vars.api_url }}/{{ vars.domain }}"}}
          - name: production
            gates:
              before:
                - check: {http: {method: GET, url: "{{ vars.api_url }}/ok"}}
        services: {api: {deploy: [{name: d, run: "true"}]}}
        """)
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("interlock.yaml"))
    [error] = info.value.errors
    assert error["field"] == "environments[1].gates.before[0].check.http.url"
    assert "environment 'production' has no value for it" in error["message"]
    fixed = text.replace("  - name: production\n", "  - name: production\n    vars: {api_url: x}\n")
    config = parse_config(fixed, Path("interlock.yaml"))
    plan = build_plan(config, [ReleaseItem("api", "1")], config_version=1, base_dir=Path("/"))
    [gate] = [n for n in plan.environment("staging").nodes if n.key == "gate/check"]
    assert gate.spec["vars"] == {"api_url": "https://stg.example.com", "domain": "example.com"}


def test_a_yaml_error_in_an_included_file_names_that_file(tmp_path):
    path = write(
        tmp_path,
        {
            "interlock.yaml": TEAM_MAIN.replace(', "teams/*/interlock.yaml"', ""),
            "services/bad.yaml": "services:\n  x: [unclosed\n",
        },
    )
    [error] = errors(path)
    assert error["file"] == str(tmp_path / "services/bad.yaml") and error["line"] >= 2
    assert "not valid YAML" in error["message"]


def test_a_templates_parameters_are_vars_in_its_steps(tmp_path):
    text = MAIN.replace("set-image -n {{ vars.namespace }}", "set-image -n {{ params.namespace }}")
    [error] = errors(write(tmp_path, {"interlock.yaml": text}))
    assert error["field"] == "templates.k8s.deploy[0].run"
    assert error["message"] == (
        "{{ params.namespace }}: a template's parameters are {{ vars.namespace }} in its steps"
    )


def test_an_include_that_only_finds_the_main_file_is_an_error(tmp_path):
    path = write(
        tmp_path,
        {
            "interlock.yaml": TEAM_MAIN.replace(
                '["services/*.yaml", "teams/*/interlock.yaml"]', '["*.yaml"]'
            )
        },
    )
    [error] = errors(path)
    assert error["field"] == "include" and "names no file but this one" in error["message"]

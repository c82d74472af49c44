"""Commands that need no server: init, validate, plan, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from interlock.cli.output import FORMAT_OPTION, emit_json
from interlock.cli.settings import CONFIG_OPTION
from interlock.errors import ConfigError, Conflict


def _schema_text() -> str:
    from interlock.spec.model import json_schema

    return json.dumps(json_schema(), indent=2) + "\n"


@click.command()
@CONFIG_OPTION
@click.option("--service", default="api", show_default=True, help="Name of the first service.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option(
    "--discover",
    is_flag=True,
    help="Scaffold every service of the repository (services/*, apps/*): a file each, "
    "beside its code, included by the main file.",
)
def init(config_path: Path, service: str, force: bool, discover: bool) -> None:
    """Write a commented interlock.yaml (and its JSON Schema for editors)."""
    from interlock.domain.names import check_service_name

    if discover:
        _discover(config_path, force)
        return

    check_service_name(service)
    if config_path.exists() and not force:
        raise Conflict(f"{config_path} already exists; use --force to overwrite it")
    template = (Path(__file__).parent.parent / "spec" / "init_template.yaml").read_text()
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(template.replace("__SERVICE__", service))
    schema = config_path.parent / "interlock.schema.json"
    schema.write_text(_schema_text())
    click.echo(f"wrote {config_path} (service {service!r}; dev → staging → production)")
    click.echo(f"wrote {schema} (JSON Schema, for editor completion)")
    click.echo(f"next: `interlock validate`, `interlock plan {service}@1.0.0`, `interlock server`")


def _discover(config_path: Path, force: bool) -> None:
    from interlock.cli.discover import scaffold
    from interlock.spec.loader import load_config

    written, found = scaffold(config_path, force)
    schema = config_path.parent / "interlock.schema.json"
    schema.write_text(_schema_text())
    for service in found:
        owner = f", owner {service.owner}" if service.owner else ""
        click.echo(f"found {service.name} in {service.path} ({service.kind}{owner})")
    click.echo(f"wrote {config_path} and {len(written) - 1} service files, and {schema}")
    load_config(config_path)  # what was written is valid
    click.echo(f"next: `interlock validate`, `interlock plan {found[0].name}@1.0.0`")


@click.command()
@CONFIG_OPTION
@FORMAT_OPTION
def validate(config_path: Path, fmt: str) -> None:
    """Check interlock.yaml and report every problem with file:line:column."""
    from interlock.spec.loader import load_config

    try:
        loaded = load_config(config_path)
    except ConfigError as exc:
        if fmt == "json":
            emit_json({"valid": False, "file": str(config_path), "errors": exc.errors})
            raise SystemExit(exc.exit_code) from None
        raise
    config = loaded.config
    if fmt == "json":
        emit_json(
            {
                "valid": True,
                "file": str(config_path),
                "hash": loaded.hash,
                "environments": [e.name for e in config.environments],
                "services": sorted(config.services),
                "included": [str(f) for f in loaded.files],
            }
        )
        return
    envs = " → ".join(e.name for e in config.environments)
    services = ", ".join(sorted(config.services))
    click.echo(f"{config_path} is valid: environments {envs}; services {services}")
    if loaded.files:
        click.echo(f"({len(loaded.files)} included files)")


def _rendered(node: Any, values: dict[str, str]) -> str:
    from interlock.domain.templating import PLACEHOLDER

    def fill(text: str, quote: bool) -> str:
        import shlex

        def sub(match: Any) -> str:
            name = match.group(1)
            if name in values:
                return shlex.quote(values[name]) if quote else values[name]
            return str(match.group(0))

        return PLACEHOLDER.sub(sub, text)

    if node.executor == "shell":
        return "$ " + fill(node.spec["run"], True)
    if node.executor == "http":
        call = node.spec["http"]
        return f"{call.get('method', 'POST')} {fill(call['url'], False)}"
    return f"plug-in {node.executor} {json.dumps(node.spec.get('with', {}))}"


def _origin(config: Any, service: str | None, step: str) -> str | None:
    """Where a deploy step of a service that extends a template comes from."""
    found = config.services.get(service) if service else None
    if found is None or found.extends is None:
        return None
    template = config.templates.get(found.extends)
    if template is None:
        return None
    for candidate in template.deploy:
        if candidate.name == step:
            own = next((s for s in found.deploy if s.name == step), None)
            kind = "from" if own == candidate else "replaces the step of"
            return f"{kind} template {found.extends}"
    return None


def _vars_text(planned: dict[str, str]) -> str:
    """``name=value`` of each var a step gets; a secret reference stays a reference (its
    value is read only when the step runs)."""
    from interlock.domain.templating import env_references

    shown = []
    for name, value in planned.items():
        secret = " (secret, read when the step runs)" if env_references(value) else ""
        shown.append(f"{name}={json.dumps(value, ensure_ascii=False)}{secret}")
    return ", ".join(shown)


def _waves(nodes: Any) -> dict[str, int]:
    """Each node's wave: 1 + the longest chain of needs before it (same wave = in parallel)."""
    wave: dict[str, int] = {}
    for node in nodes:  # plans list nodes after everything they need
        wave[node.key] = 1 + max((wave[k] for k in node.needs if k in wave), default=0)
    return wave


def _gate_text(node: Any, config: Any) -> str:
    spec = node.spec
    if node.executor == "approval":
        rules = []
        for rule in spec.get("rules", []):
            if rule.get("role"):
                who = config.roles.get(rule["role"], [])
                rules.append(f"{rule['count']} from role {rule['role']} ({', '.join(who) or '?'})")
            elif rule.get("team"):
                who = config.teams.get(rule["team"], [])
                rules.append(f"{rule['count']} from team {rule['team']} ({', '.join(who) or '?'})")
            else:
                rules.append(f"{rule['count']} from each owning team")
        return "approval: " + "; ".join(rules)
    if node.executor == "window":
        allow = ", ".join(f"{'/'.join(w['days'])} {w['from']}-{w['to']}" for w in spec["allow"])
        return f"window ({spec['timezone']}): {allow or 'any time'}" + (
            f"; {len(spec['freeze'])} freezes" if spec.get("freeze") else ""
        )
    if node.executor == "promotion":
        return f"promotion: the artifacts must have succeeded in {spec['previous']}"
    if node.executor in ("check", "metric"):
        return f"{node.executor}: every {spec.get('interval')}s, for at most {spec.get('timeout')}s"
    if node.executor == "soak":
        return f"soak: {spec['duration']}s with {len(spec.get('checks', []))} checks"
    return str(node.executor)


def _estimates(
    services: list[str],
) -> tuple[dict[str, dict[str, float]] | None, dict[str, dict[str, float]], str]:
    """Median step durations and gate waits from the server's history, if a server answers
    (``None`` for the durations when none does)."""
    from interlock.cli.client import Client
    from interlock.errors import InterlockError

    try:
        found = Client(timeout=3).get("/api/v1/estimates", service=services)
    except InterlockError as exc:
        # the first sentence: the URL and the reason, not the advice that follows (a URL
        # has colons, so cutting at the first ':' would leave just "http")
        reason = exc.detail.partition(". ")[0].rstrip(".")
        return None, {}, f"no expected durations ({reason})"
    return (
        found["durations"],
        found.get("gates", {}),
        f"expected durations: medians of past runs ({found['runs']} steps), gates included",
    )


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="SERVICE@VERSION...")
@CONFIG_OPTION
@click.option("--until", metavar="ENV", help="Stop the route after this environment.")
@click.option("--from", "start", metavar="ENV", help="Start the route at this environment.")
@click.option(
    "--estimate/--no-estimate",
    default=True,
    show_default=True,
    help="Ask the server (INTERLOCK_URL) for durations of past runs.",
)
@FORMAT_OPTION
def plan(
    refs: tuple[str, ...],
    config_path: Path,
    until: str | None,
    start: str | None,
    estimate: bool,
    fmt: str,
) -> None:
    """Print what a release of SERVICE@VERSION... would do: order, parallelism, gates."""
    from datetime import UTC, datetime

    from interlock.domain.durations import format_duration
    from interlock.domain.names import parse_ref
    from interlock.domain.plan import ReleaseItem
    from interlock.engine.estimates import estimate_plan
    from interlock.spec.loader import load_config
    from interlock.spec.planner import build_plan

    loaded = load_config(config_path)
    items = [ReleaseItem(r.service, r.version) for r in map(parse_ref, refs)]
    release_plan = build_plan(
        loaded.config,
        items,
        config_version=0,
        base_dir=loaded.base_dir,
        until=until,
        start=start,
    )
    durations, gate_history, note = (
        _estimates([i.service for i in items])
        if estimate
        else (None, {}, "expected durations: not asked (--no-estimate)")
    )
    known = durations is not None
    expected = estimate_plan(release_plan, durations or {}, gate_history, now=datetime.now(UTC))
    by_env = {e.environment: e for e in expected.environments}
    if fmt == "json":
        data = release_plan.to_json()
        for env in data["environments"]:
            waves = _waves(release_plan.environment(env["name"]).nodes)
            for node in env["nodes"]:
                node["wave"] = waves[node["key"]]
            found = by_env[env["name"]]
            env["expected_seconds"] = found.seconds if known else None
            env["gates_expected"] = [g.__dict__ for g in found.gates] if known else None
        data["expected_total_seconds"] = expected.total_seconds if known else None
        emit_json(data)
        return
    click.echo(
        f"release of {', '.join(refs)}: " + " → ".join(e.name for e in release_plan.environments)
    )
    click.echo(note)
    if known:
        click.echo(f"expected total: {format_duration(expected.total_seconds)}")
    for env in release_plan.environments:
        waves = _waves(env.nodes)
        found = by_env[env.name]
        gate_of = {g.key: g for g in found.gates}
        took = ""
        if known:
            unknown = found.steps_without_history
            took = f"  (expected {format_duration(found.seconds)}" + (
                f", {unknown} steps never ran before)" if unknown else ")"
            )
        click.echo(f"\n{env.index + 1}. {env.name}{took}")
        for wave in sorted(set(waves.values())):
            group = [n for n in env.nodes if waves[n.key] == wave]
            label = "in parallel: " if len(group) > 1 else ""
            click.echo(f"   wave {wave} {label}".rstrip())
            for node in group:
                item = release_plan.item(node.service) if node.service else None
                values = {"environment": env.name}
                if item:
                    values.update(service=item.service, version=item.version)
                planned_vars = node.spec.get("vars") or {}
                values.update({f"vars.{k}": v for k, v in planned_vars.items()})
                if node.kind == "gate":
                    click.echo(f"      gate {node.name}: {_gate_text(node, loaded.config)}")
                    gate = gate_of[node.key]
                    if known:
                        wait = "unknown" if gate.seconds is None else format_duration(gate.seconds)
                        click.echo(f"         expected wait {wait} ({gate.basis})")
                    continue
                facts = [node.executor, f"timeout {format_duration(node.timeout)}"]
                origin = _origin(loaded.config, node.service, node.name)
                if origin:
                    facts.append(origin)
                if node.retries:
                    facts.append(f"retries {node.retries}")
                facts.append("idempotent" if node.idempotent else "not idempotent")
                if node.needs:
                    facts.append(f"after {', '.join(node.needs)}")
                median = (durations or {}).get(env.name, {}).get(node.key)
                if median is not None:
                    facts.append(f"usually {format_duration(median)}")
                click.echo(f"      {node.key}  ({'; '.join(facts)})")
                click.echo(f"         {_rendered(node, values)}")
                if planned_vars:
                    click.echo(f"         vars: {_vars_text(planned_vars)}")


@click.command()
def schema() -> None:
    """Print the JSON Schema of interlock.yaml (for editors and CI linters)."""
    click.echo(_schema_text(), nl=False)

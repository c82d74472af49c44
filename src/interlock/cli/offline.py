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
def init(config_path: Path, service: str, force: bool) -> None:
    """Write a commented interlock.yaml (and its JSON Schema for editors)."""
    from interlock.domain.names import check_service_name

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
            }
        )
        return
    envs = " → ".join(e.name for e in config.environments)
    services = ", ".join(sorted(config.services))
    click.echo(f"{config_path} is valid: environments {envs}; services {services}")


def _rendered(node: Any, values: dict[str, str]) -> str:
    from interlock.domain.templating import PLACEHOLDER

    def fill(text: str, quote: bool) -> str:
        import shlex

        def sub(match: Any) -> str:
            name = match.group(1)
            if name in values:
                return shlex.quote(values[name]) if quote else values[name]
            return match.group(0)

        return PLACEHOLDER.sub(sub, text)

    if node.executor == "shell":
        return "$ " + fill(node.spec["run"], True)
    if node.executor == "http":
        call = node.spec["http"]
        return f"{call.get('method', 'POST')} {fill(call['url'], False)}"
    return f"plug-in {node.executor} {json.dumps(node.spec.get('with', {}))}"


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="SERVICE@VERSION...")
@CONFIG_OPTION
@click.option("--until", metavar="ENV", help="Stop the route after this environment.")
@FORMAT_OPTION
def plan(refs: tuple[str, ...], config_path: Path, until: str | None, fmt: str) -> None:
    """Print, in order, what a release of SERVICE@VERSION... would do."""
    from interlock.domain.durations import format_duration
    from interlock.domain.names import parse_ref
    from interlock.domain.plan import ReleaseItem
    from interlock.spec.loader import load_config
    from interlock.spec.planner import build_plan

    loaded = load_config(config_path)
    items = [ReleaseItem(r.service, r.version) for r in map(parse_ref, refs)]
    release_plan = build_plan(
        loaded.config, items, config_version=0, base_dir=loaded.base_dir, until=until
    )
    if fmt == "json":
        emit_json(release_plan.to_json())
        return
    click.echo(
        f"release of {', '.join(refs)}: " + " → ".join(e.name for e in release_plan.environments)
    )
    for env in release_plan.environments:
        click.echo(f"\n{env.index + 1}. {env.name}")
        for number, node in enumerate(env.nodes, 1):
            item = release_plan.item(node.service) if node.service else None
            values = {"environment": env.name}
            if item:
                values.update(service=item.service, version=item.version)
            facts = [node.executor, f"timeout {format_duration(node.timeout)}"]
            if node.retries:
                facts.append(f"retries {node.retries}")
            facts.append("idempotent" if node.idempotent else "not idempotent")
            if node.needs:
                facts.append(f"after {', '.join(node.needs)}")
            click.echo(f"   {number}. {node.key}  ({'; '.join(facts)})")
            click.echo(f"      {_rendered(node, values)}")


@click.command()
def schema() -> None:
    """Print the JSON Schema of interlock.yaml (for editors and CI linters)."""
    click.echo(_schema_text(), nl=False)

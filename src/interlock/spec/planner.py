"""Turn a config and a release's content into the plan the release will follow."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from interlock.domain.plan import (
    EnvironmentPlan,
    EnvironmentSettings,
    NodePlan,
    ReleaseItem,
    ReleasePlan,
)
from interlock.errors import InvalidInput
from interlock.spec.composition import environment_vars, service_vars, step_templates, used_vars
from interlock.spec.gate_specs import Gate
from interlock.spec.model import Config, Environment, Step


def step_node(
    config: Config,
    service: str | None,
    step: Step,
    base_dir: Path,
    needs: tuple[str, ...],
    prefix: str = "",
    phase: str = "deploy",
    environment: str | None = None,
) -> NodePlan:
    """The plan of one step of ``service`` (or of a runbook, with ``None``), after ``needs``.

    In ``environment``, the step's spec holds the values of the ``{{ vars.NAME }}`` it uses
    (as planned: a reload does not change a release's values)."""
    d = config.defaults
    spec: dict[str, Any]
    if step.run is not None:
        executor = "shell"
        spec = {"run": step.run}
    elif step.http is not None:
        executor = "http"
        spec = {"http": step.http.model_dump(mode="json")}
    elif step.runbook is not None:
        executor = "runbook"
        spec = {"runbook": step.runbook, "with": step.with_}
    elif step.manual is not None:
        executor = "manual"
        spec = {"manual": step.manual.model_dump(mode="json")}
    else:
        assert step.uses is not None
        executor = step.uses
        spec = {"with": step.with_}
    spec["env"] = dict(step.env)
    spec["cwd"] = str((base_dir / step.cwd) if step.cwd else base_dir)
    spec.update(step_environment(config))
    if service is not None and environment is not None:
        names = used_vars(text for _, text in step_templates(step, ()))
        if names:
            values = service_vars(config, service, environment)
            spec["vars"] = {name: values[name] for name in names if name in values}
    return NodePlan(
        key=f"{prefix}{service}/{step.name}" if service else f"{prefix}{step.name}",
        kind="step",
        name=step.name,
        executor=executor,
        spec=spec,
        service=service,
        phase=phase,
        needs=needs,
        timeout=step.timeout if step.timeout is not None else d.timeout,
        retries=step.retries if step.retries is not None else d.retries,
        backoff=step.backoff if step.backoff is not None else d.backoff,
        idempotent=step.idempotent if step.idempotent is not None else d.idempotent,
    )


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def step_environment(config: Config) -> dict[str, list[str]]:
    """What a node's processes inherit beyond the basics, as planned (kept out of the
    plan when the config does not say)."""
    found: dict[str, list[str]] = {}
    if config.secrets:
        found["secrets"] = list(config.secrets)
    if config.inherit_env:
        found["inherit_env"] = list(config.inherit_env)
    return found


def gate_node(
    gate: Gate,
    phase: str,
    needs: tuple[str, ...],
    base_dir: Path,
    config: Config,
    environment: str | None = None,
) -> NodePlan:
    """The plan of one gate of an environment's ``phase`` (before or after), after ``needs``.

    A check's ``{{ vars.NAME }}`` get the values of ``environment`` (planned)."""
    spec: dict[str, Any] = gate.spec.model_dump(mode="json", by_alias=True)
    spec["cwd"] = str(base_dir)
    if gate.kind in ("check", "soak"):  # the gates that run commands
        spec.update(step_environment(config))
        names = used_vars(_texts(spec))
        if names and environment is not None:
            values = environment_vars(config, environment)
            spec["vars"] = {name: values[name] for name in names if name in values}
    timeout = float(spec.get("timeout") or 0) or 0.0
    return NodePlan(
        key=f"gate/{gate.name}",
        kind="gate",
        name=gate.name,
        executor=gate.kind,
        spec=spec,
        phase=phase,
        needs=needs,
        timeout=timeout or 600.0,
        idempotent=True,  # a gate only looks; evaluating it again is always safe
    )


def _environment_plan(
    config: Config,
    env: Environment,
    index: int,
    items: Sequence[ReleaseItem],
    base_dir: Path,
    previous_env: str | None,
) -> EnvironmentPlan:
    before: list[NodePlan] = []
    if env.promotion and previous_env is not None:
        before.append(
            NodePlan(
                key="gate/promotion",
                kind="gate",
                name="promotion",
                executor="promotion",
                spec={"previous": previous_env},
                phase="before",
                idempotent=True,
            )
        )
    before += [gate_node(g, "before", (), base_dir, config, env.name) for g in env.gates.before]
    gate_keys = tuple(n.key for n in before)
    in_release = {i.service for i in items}
    depends = {
        i.service: [d for d in config.services[i.service].depends_on if d in in_release]
        for i in items
    }
    steps: list[NodePlan] = []
    last: dict[str, str] = {}
    for service_name in train_order(items, depends):
        service = config.services[service_name]
        previous: tuple[str, ...] = tuple(last[d] for d in depends[service_name] if d in last)
        previous = previous or gate_keys
        for step in service.deploy:
            if step.environments is not None and env.name not in step.environments:
                continue
            node = step_node(config, service_name, step, base_dir, previous, environment=env.name)
            steps.append(node)
            previous = (node.key,)
            last[service_name] = node.key
    depended_on = {d for deps in depends.values() for d in deps}
    sinks = tuple(last[s] for s in last if s not in depended_on) or gate_keys
    after = [gate_node(g, "after", sinks, base_dir, config, env.name) for g in env.gates.after]
    rollback: list[NodePlan] = []
    for item in items:
        service = config.services[item.service]
        chain: tuple[str, ...] = ()
        for step in service.rollback if service.rollback is not None else service.deploy:
            if step.environments is not None and env.name not in step.environments:
                continue
            node = step_node(
                config,
                item.service,
                step,
                base_dir,
                chain,
                "rollback/",
                "rollback",
                environment=env.name,
            )
            rollback.append(node)
            chain = (node.key,)
    return EnvironmentPlan(
        name=env.name,
        index=index,
        nodes=tuple(before + steps + after),
        rollback=tuple(rollback),
        settings=EnvironmentSettings(
            production=env.production,
            concurrency=env.concurrency,
            previous=previous_env if env.promotion else None,
            on_failure=env.on_failure,
            deadline=env.deadline,
            parallel=env.parallel,
            services=len(items),
            depends=depends,
            require_artifacts=env.require_artifacts,
            rollback_during_freeze=env.rollback_during_freeze,
            rollback_approvals=env.rollback_approvals,
        ),
    )


def train_order(items: Sequence[ReleaseItem], depends: dict[str, list[str]]) -> list[str]:
    """Services in an order that respects ``depends_on``; otherwise as given."""
    placed: list[str] = []
    pending = [i.service for i in items]
    while pending:
        for name in pending:
            if all(d in placed for d in depends.get(name, [])):
                placed.append(name)
                pending.remove(name)
                break
        else:  # a cycle: validation refuses these, so this is never reached
            placed.extend(pending)
            break
    return placed


def build_plan(
    config: Config,
    items: Sequence[ReleaseItem],
    *,
    config_version: int,
    base_dir: Path,
    until: str | None = None,
    start: str | None = None,
) -> ReleasePlan:
    """The plan of a release of ``items``.

    The route runs through the environments in order, from ``start`` (default:
    the first) to ``until`` (default: the last).
    """
    seen: set[str] = set()
    for item in items:
        if item.service not in config.services:
            known = ", ".join(sorted(config.services))
            raise InvalidInput(
                f"no service named {item.service!r} in the configuration (known: {known})",
                field="services",
            )
        if item.service in seen:
            raise InvalidInput(
                f"service {item.service!r} is listed twice in one release", field="services"
            )
        seen.add(item.service)
    if not items:
        raise InvalidInput("a release needs at least one SERVICE@VERSION", field="services")
    envs = list(config.environments)
    names = [e.name for e in envs]
    for value, field in ((until, "until"), (start, "from")):
        if value is not None and value not in names:
            raise InvalidInput(
                f"no environment named {value!r} (known: {', '.join(names)})", field=field
            )
    first = names.index(start) if start else 0
    last = names.index(until) if until else len(envs) - 1
    if last < first:
        raise InvalidInput(
            f"{until!r} comes before {start!r} in the promotion order", field="until"
        )
    return ReleasePlan(
        config_version=config_version,
        items=tuple(items),
        environments=tuple(
            # Inside the route, reaching an environment means the previous one
            # succeeded; only a route that starts part-way needs the promotion check.
            _environment_plan(
                config,
                envs[i],
                i - first,
                items,
                base_dir,
                names[i - 1] if i == first and i > 0 else None,
            )
            for i in range(first, last + 1)
        ),
    )

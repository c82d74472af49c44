"""Turn a config and a release's content into the plan the release will follow."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interlock.domain.plan import EnvironmentPlan, NodePlan, ReleaseItem, ReleasePlan
from interlock.errors import InvalidInput
from interlock.spec.model import Config, Environment, Step


def _step_node(
    config: Config, service: str, step: Step, base_dir: Path, needs: tuple[str, ...]
) -> NodePlan:
    d = config.defaults
    spec: dict[str, Any]
    if step.run is not None:
        executor = "shell"
        spec = {"run": step.run}
    elif step.http is not None:
        executor = "http"
        spec = {"http": step.http.model_dump(mode="json")}
    else:
        assert step.uses is not None
        executor = step.uses
        spec = {"with": step.with_}
    spec["env"] = dict(step.env)
    spec["cwd"] = str((base_dir / step.cwd) if step.cwd else base_dir)
    return NodePlan(
        key=f"{service}/{step.name}",
        kind="step",
        name=step.name,
        executor=executor,
        spec=spec,
        service=service,
        phase="deploy",
        needs=needs,
        timeout=step.timeout if step.timeout is not None else d.timeout,
        retries=step.retries if step.retries is not None else d.retries,
        backoff=step.backoff if step.backoff is not None else d.backoff,
        idempotent=step.idempotent if step.idempotent is not None else d.idempotent,
    )


def _environment_plan(
    config: Config, env: Environment, index: int, items: Sequence[ReleaseItem], base_dir: Path
) -> EnvironmentPlan:
    nodes: list[NodePlan] = []
    previous: tuple[str, ...] = ()
    for item in items:
        service = config.services[item.service]
        for step in service.deploy:
            if step.environments is not None and env.name not in step.environments:
                continue
            node = _step_node(config, item.service, step, base_dir, previous)
            nodes.append(node)
            previous = (node.key,)
    return EnvironmentPlan(
        name=env.name,
        index=index,
        nodes=tuple(nodes),
        settings={"production": env.production},
    )


def build_plan(
    config: Config,
    items: Sequence[ReleaseItem],
    *,
    config_version: int,
    base_dir: Path,
    until: str | None = None,
) -> ReleasePlan:
    """The plan of a release of ``items``; ``until`` stops the route at that environment."""
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
    if until is not None:
        names = [e.name for e in envs]
        if until not in names:
            raise InvalidInput(
                f"no environment named {until!r} (known: {', '.join(names)})", field="until"
            )
        envs = envs[: names.index(until) + 1]
    return ReleasePlan(
        config_version=config_version,
        items=tuple(items),
        environments=tuple(
            _environment_plan(config, env, i, items, base_dir) for i, env in enumerate(envs)
        ),
    )

"""Rules that span several keys of interlock.yaml (pydantic checks each key alone)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from interlock.domain.templating import (
    ENV_REFERENCE,
    PLACEHOLDER,
    VARIABLES,
    render_shell,
    unknown_names,
)
from interlock.errors import InvalidInput
from interlock.spec.composition import (
    BROKEN_ENV,
    VAR,
    VAR_PREFIX,
    environment_vars,
    step_templates,
    texts_at,
    vars_issues,
)
from interlock.spec.model import Config, Step

Loc = tuple[str | int, ...]
Issue = tuple[Loc, str]


def _check_steps(
    steps: list[Step], loc: Loc, environments: set[str], plugins: set[str]
) -> Iterator[Issue]:
    seen: dict[str, int] = {}
    for i, step in enumerate(steps):
        here = loc + (i,)
        if step.name in seen:
            yield (
                here + ("name",),
                (
                    f"step name {step.name!r} is already used by step {seen[step.name] + 1}; "
                    "step names must be unique within a service"
                ),
            )
        seen.setdefault(step.name, i)
        for where, text in step_templates(step, here):
            for name in unknown_names(text):
                if name.startswith(VAR_PREFIX) and "." not in name[len(VAR_PREFIX) :]:
                    continue  # checked per service and environment (_check_vars)
                yield (
                    where,
                    f"unknown placeholder {{{{ {name} }}}}; known: " + ", ".join(sorted(VARIABLES)),
                )
            if where[len(here)] != "run" and BROKEN_ENV.search(ENV_REFERENCE.sub("", text)):
                yield (
                    where,
                    "'${' starts a reference to an environment variable: write ${NAME}, a "
                    "letter or '_' first, then letters, digits or '_', or ${file:/path} for a "
                    "file holding a secret (write $${ for a literal '${')",
                )
        if step.run is not None:
            # What the shell executor would refuse when the step runs, said now.
            sample = {m.group(1): "x" for m in PLACEHOLDER.finditer(step.run)}
            try:
                render_shell(step.run, sample)
            except ValueError as exc:
                yield here + ("run",), str(exc)
        for j, env in enumerate(step.environments or []):
            if env not in environments:
                yield here + ("environments", j), f"no environment named {env!r}"
        if step.uses is not None and step.uses not in plugins:
            known = ", ".join(sorted(plugins)) or "none installed"
            yield here + ("uses",), f"no executor plug-in named {step.uses!r} (installed: {known})"


def _check_gates(config: Config, base_dir: Path | None) -> Iterator[Issue]:
    for i, env in enumerate(config.environments):
        seen: dict[str, str] = {}
        for phase in ("before", "after"):
            for j, gate in enumerate(getattr(env.gates, phase)):
                here: Loc = ("environments", i, "gates", phase, j)
                kind = gate.kind
                if phase == "after" and kind in ("approval", "window"):
                    yield (
                        here + (kind,),
                        (
                            f"a {kind} gate belongs in `before` (it decides whether the deploy "
                            "may start)"
                        ),
                    )
                if phase == "before" and kind == "soak":
                    yield here + (kind,), "a soak gate belongs in `after` (it watches a deploy)"
                if gate.name in seen:
                    yield (
                        here + (kind,),
                        (
                            f"two gates named {gate.name!r} in environment {env.name!r}; give "
                            "one of them a `name`"
                            if kind in ("approval", "check", "soak")
                            else f"two {kind} gates in environment {env.name!r}; merge them"
                        ),
                    )
                seen[gate.name] = phase
                probes: list[tuple[Loc, Any]] = []
                if kind == "check":
                    probes.append((here + ("check",), gate.check))
                if kind == "soak":
                    probes += [
                        (here + ("soak", "checks", k, "check"), c.check)
                        for k, c in enumerate(gate.soak.checks)
                        if c.check is not None
                    ]
                for loc, probe in probes:
                    texts = [(loc + ("run",), probe.run)] if probe.run else []
                    if probe.http is not None:
                        texts.append((loc + ("http", "url"), probe.http.url))
                        texts += list(texts_at(probe.http.headers, loc + ("http", "headers")))
                    values = environment_vars(config, env.name)
                    for where, text in texts:
                        for name in unknown_names(text):
                            var = VAR.fullmatch(f"{{{{ {name} }}}}")
                            if var is None:
                                yield where, f"unknown placeholder {{{{ {name} }}}}"
                            elif var.group(1) not in values:
                                known = ", ".join(sorted(values)) or "none"
                                yield (
                                    where,
                                    f"unknown variable {{{{ {name} }}}}: environment "
                                    f"{env.name!r} has no value for it (a gate gets the "
                                    f"top-level and the environment's vars; defined: {known})",
                                )
                if kind == "window" and gate.window.freeze_calendar and base_dir is not None:
                    # Here, not at the top: reading iCalendar costs 60 ms of imports,
                    # paid only by a config that names a freeze calendar.
                    from interlock.domain.windows import WindowPolicy

                    try:
                        WindowPolicy.from_spec(gate.window, base_dir)
                    except InvalidInput as exc:
                        yield here + ("window", "freeze_calendar"), exc.detail


def _check_permissions(config: Config, environments: set[str]) -> Iterator[Issue]:
    for i, rule in enumerate(config.permissions):
        for j, env in enumerate(rule.environments or []):
            if env not in environments:
                yield ("permissions", i, "environments", j), f"no environment named {env!r}"
        if isinstance(rule.services, list):
            for j, service in enumerate(rule.services):
                if service not in config.services:
                    yield ("permissions", i, "services", j), f"no service named {service!r}"


PARAM = re.compile(r"\{\{\s*params\.([A-Za-z0-9_]+)\s*\}\}")


def _all_steps(config: Config) -> Iterator[tuple[Loc, Step]]:
    for name, service in config.services.items():
        for i, step in enumerate(service.deploy):
            yield ("services", name, "deploy", i), step
        for i, step in enumerate(service.rollback or []):
            yield ("services", name, "rollback", i), step
    for name, runbook in config.runbooks.items():
        for i, step in enumerate(runbook.steps):
            yield ("runbooks", name, "steps", i), step


def dependency_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle in ``depends_on`` as the path that closes it (``a → b → a``), if any."""
    state: dict[str, int] = {}
    path: list[str] = []
    for node in sorted(graph):
        if state.get(node) is None:
            found = _visit(graph, state, path, node)
            if found:
                return found
    return None


def _visit(
    graph: dict[str, list[str]], state: dict[str, int], path: list[str], node: str
) -> list[str] | None:
    # Not a closure: one that calls itself is a reference cycle, which held the graph
    # (every service's depends_on) until a collection, none while a server starts.
    state[node] = 1
    path.append(node)
    for nxt in graph.get(node, []):
        if nxt not in graph or nxt == node:
            continue
        if state.get(nxt) == 1:
            return path[path.index(nxt) :] + [nxt]
        if state.get(nxt) is None:
            found = _visit(graph, state, path, nxt)
            if found:
                return found
    state[node] = 2
    path.pop()
    return None


def semantic_issues(config: Config, base_dir: Path | None = None) -> list[Issue]:
    """Every cross-key problem in ``config``, each with the location it concerns."""
    from interlock.executors.registry import plugin_names

    issues: list[Issue] = []
    names: dict[str, int] = {}
    for i, env in enumerate(config.environments):
        if env.name in names:
            issues.append(
                (("environments", i, "name"), f"environment {env.name!r} is listed twice")
            )
        names.setdefault(env.name, i)
    plugins = set(plugin_names())
    for service_name, service in config.services.items():
        issues.extend(
            _check_steps(service.deploy, ("services", service_name, "deploy"), set(names), plugins)
        )
        if service.rollback is not None:
            issues.extend(
                _check_steps(
                    service.rollback, ("services", service_name, "rollback"), set(names), plugins
                )
            )
        for j, other in enumerate(service.depends_on):
            if other not in config.services:
                issues.append(
                    (("services", service_name, "depends_on", j), f"no service named {other!r}")
                )
            elif other == service_name:
                issues.append(
                    (
                        ("services", service_name, "depends_on", j),
                        "a service cannot depend on itself",
                    )
                )
    cycle = dependency_cycle({n: s.depends_on for n, s in config.services.items()})
    if cycle:
        issues.append(
            (("services", cycle[0], "depends_on"), "depends_on forms a cycle: " + " → ".join(cycle))
        )
    for name, runbook in config.runbooks.items():
        issues.extend(_check_steps(runbook.steps, ("runbooks", name, "steps"), set(names), plugins))
        for i, step in enumerate(runbook.steps):
            for where, text in step_templates(step, ("runbooks", name, "steps", i)):
                for param in PARAM.findall(text):
                    if param not in runbook.params:
                        issues.append((where, f"runbook {name!r} has no parameter {param!r}"))
    for loc, step in _all_steps(config):
        if step.runbook is not None:
            if step.runbook not in config.runbooks:
                issues.append((loc + ("runbook",), f"no runbook named {step.runbook!r}"))
            else:
                known = config.runbooks[step.runbook].params
                for key in step.with_:
                    if key not in known:
                        issues.append(
                            (
                                loc + ("with", key),
                                f"runbook {step.runbook!r} has no parameter {key!r}",
                            )
                        )
    issues.extend(_check_gates(config, base_dir))
    issues.extend(_check_permissions(config, set(names)))
    issues.extend(_check_templates(config, set(names), plugins))
    if not any(loc[0] == "services" and "extends" in loc for loc, _ in issues):
        issues.extend(vars_issues(config, [env.name for env in config.environments]))
    return issues


def _check_templates(config: Config, environments: set[str], plugins: set[str]) -> Iterator[Issue]:
    for name, template in config.templates.items():
        yield from _check_steps(
            template.deploy, ("templates", name, "deploy"), environments, plugins
        )
        if template.rollback is not None:
            yield from _check_steps(
                template.rollback, ("templates", name, "rollback"), environments, plugins
            )
        for phase in ("deploy", "rollback"):
            for i, step in enumerate(getattr(template, phase) or []):
                for where, text in step_templates(step, ("templates", name, phase, i)):
                    for param in PARAM.findall(text):
                        yield (
                            where,
                            f"{{{{ params.{param} }}}}: a template's parameters are "
                            f"{{{{ vars.{param} }}}} in its steps",
                        )
    for name, service in config.services.items():
        here: Loc = ("services", name)
        for env in service.overrides:
            if env not in environments:
                yield here + ("overrides", env), f"no environment named {env!r}"
        if service.extends is None:
            if not service.deploy:
                yield (
                    here + ("deploy",),
                    "missing required key 'deploy'"
                    if "deploy" not in service.model_fields_set
                    else "a service needs at least one deploy step (or `extends` a template)",
                )
            if service.params:
                yield (
                    here + ("params",),
                    "params are the values of a template's parameters: this service does not "
                    "`extends` a template (use `vars` for its own values)",
                )
            continue
        extended = config.templates.get(service.extends)
        if extended is None:
            known = ", ".join(sorted(config.templates)) or "none defined"
            yield here + ("extends",), f"no template named {service.extends!r} (known: {known})"
            continue
        for param in service.params:
            if param not in extended.params:
                known = ", ".join(sorted(extended.params)) or "none"
                yield (
                    here + ("params", param),
                    f"template {service.extends!r} has no parameter {param!r} (its parameters: "
                    f"{known})",
                )
        for param, spec in extended.params.items():
            if spec.required and param not in service.params:
                yield (
                    here + ("extends",),
                    f"template {service.extends!r} needs the parameter {param!r}: set it in "
                    f"`params:` of service {name!r}",
                )

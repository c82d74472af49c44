"""Templates services extend, and the values (``{{ vars.NAME }}``) each step gets.

A service that ``extends`` a template runs the template's steps; a step of its
own replaces the template's step of the same name, and its other steps come
after. Loading expands every service, so the planner and the engine see plain
step lists; :func:`service_steps` keeps where each step was written, for errors.

The values of ``{{ vars.NAME }}`` for a service in an environment, the closest
winning: the top-level ``vars``, the template's parameter defaults, the
environment's ``vars``, the service's ``params`` and ``vars``, and the service's
``overrides.ENV.vars``. They are filled in when the step runs, like every
placeholder, so they are shell-quoted and percent-encoded the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from interlock.spec.model import Config, Service, Step

Loc = tuple[str | int, ...]

VAR = re.compile(r"\{\{\s*vars\.([A-Za-z0-9_]+)\s*\}\}")
VAR_PREFIX = "vars."


def var_text(value: object) -> str:
    """A value as a step gets it: ``true``/``false`` for booleans, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def service_steps(config: Config, name: str, phase: str) -> list[tuple[Loc, Step]]:
    """The ``deploy`` (or ``rollback``) steps of a service, each with where it is written.

    For ``rollback``, an empty list means: none declared (the deploy steps run with
    the previous version)."""
    service = config.services[name]
    own = service.deploy if phase == "deploy" else (service.rollback or [])
    own_steps: list[tuple[Loc, Step]] = [
        (("services", name, phase, i), step) for i, step in enumerate(own)
    ]
    extends = service.extends
    template = config.templates.get(extends) if extends else None
    if extends is None or template is None:
        return own_steps
    base = template.deploy if phase == "deploy" else (template.rollback or [])
    if phase == "rollback" and not base:
        return own_steps
    mine = {step.name: (loc, step) for loc, step in own_steps}
    merged: list[tuple[Loc, Step]] = []
    for i, step in enumerate(base):
        merged.append(mine.pop(step.name, (("templates", extends, phase, i), step)))
    merged.extend(entry for entry in own_steps if entry[1].name in mine)
    return merged


def expand_templates(config: Config) -> Config:
    """``config`` with every service that extends a template holding its full step lists."""
    if not config.templates:
        return config
    services: dict[str, Service] = {}
    for name, service in config.services.items():
        if service.extends is None:
            services[name] = service
            continue
        deploy = [step for _, step in service_steps(config, name, "deploy")]
        rollback = [step for _, step in service_steps(config, name, "rollback")]
        services[name] = service.model_copy(update={"deploy": deploy, "rollback": rollback or None})
    return config.model_copy(update={"services": services})


def environment_vars(config: Config, environment: str) -> dict[str, str]:
    """The ``{{ vars.NAME }}`` values of an environment's gates: the top-level ``vars`` and
    the environment's."""
    values = {k: var_text(v) for k, v in config.vars.items()}
    for env in config.environments:
        if env.name == environment:
            values.update((k, var_text(v)) for k, v in env.vars.items())
    return values


def service_vars(config: Config, name: str, environment: str) -> dict[str, str]:
    """Every ``{{ vars.NAME }}`` value of service ``name`` in ``environment``."""
    service = config.services[name]
    values: dict[str, str] = {k: var_text(v) for k, v in config.vars.items()}
    template = config.templates.get(service.extends) if service.extends else None
    if template is not None:
        for param, spec in template.params.items():
            values[param] = var_text(spec.default) if spec.default is not None else ""
    for env in config.environments:
        if env.name == environment:
            values.update((k, var_text(v)) for k, v in env.vars.items())
    values.update((k, var_text(v)) for k, v in service.params.items())
    values.update((k, var_text(v)) for k, v in service.vars.items())
    override = service.overrides.get(environment)
    if override is not None:
        values.update((k, var_text(v)) for k, v in override.vars.items())
    return values


def used_vars(texts: Iterator[str]) -> list[str]:
    """The names of the ``{{ vars.NAME }}`` in ``texts``, each once, in order."""
    found: dict[str, None] = {}
    for text in texts:
        for match in VAR.finditer(text):
            found.setdefault(match.group(1), None)
    return list(found)

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
:func:`vars_issues` checks that each has a value wherever its step runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from interlock.domain.templating import ENV_REFERENCE
from interlock.spec.model import Config, Service, Step

Loc = tuple[str | int, ...]
Issue = tuple[Loc, str]

VAR = re.compile(r"\{\{\s*vars\.([A-Za-z0-9_]+)\s*\}\}")
VAR_PREFIX = "vars."
# ``${`` left over once every well-formed ``${NAME}`` is taken out: a reference
# that would reach the server as text (``${1BAD}``, an unclosed ``${``).
BROKEN_ENV = re.compile(r"\$\{")


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


def texts_at(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Every text in ``value`` (lists and mappings of it), with its location."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from texts_at(item, loc + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from texts_at(item, loc + (i,))


def step_templates(step: Step, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Every text of a step that may hold ``{{ placeholders }}``, with its location."""
    if step.run is not None:
        yield loc + ("run",), step.run
    if step.http is not None:
        yield loc + ("http", "url"), step.http.url
        yield from texts_at(step.http.headers, loc + ("http", "headers"))
        yield from texts_at(step.http.body, loc + ("http", "body"))
    yield from texts_at(step.with_, loc + ("with",))
    yield from texts_at(step.env, loc + ("env",))


def vars_issues(config: Config, environments: list[str]) -> Iterator[Issue]:
    """Every ``{{ vars.NAME }}`` has a value for each service in each environment it runs in;
    the error stands where the step is written (a template's step, for a service that
    extends it)."""
    missing: dict[tuple[Loc, str], list[str]] = {}
    defined: dict[tuple[Loc, str], set[str]] = {}
    for name in config.services:
        values = {env: service_vars(config, name, env) for env in environments}
        for phase in ("deploy", "rollback"):
            for loc, step in service_steps(config, name, phase):
                for where, text in step_templates(step, loc):
                    for var in VAR.findall(text):
                        for env in step.environments or environments:
                            if env in values and var not in values[env]:
                                key = (where, var)
                                missing.setdefault(key, []).append(f"{name} in {env}")
                                defined.setdefault(key, set()).update(values[env])
    yield from _var_values_issues(config)
    for (where, var), places in missing.items():
        known = ", ".join(sorted(defined[(where, var)])) or "none"
        shown = ", ".join(places[:4]) + (f" and {len(places) - 4} more" if len(places) > 4 else "")
        yield (
            where,
            f"unknown variable {{{{ vars.{var} }}}}: no value for {shown} (set it in the "
            f"environment's or the service's `vars`; defined: {known})",
        )
    for name, runbook in config.runbooks.items():
        for i, step in enumerate(runbook.steps):
            for where, text in step_templates(step, ("runbooks", name, "steps", i)):
                for var in VAR.findall(text):
                    yield (
                        where,
                        f"{{{{ vars.{var} }}}}: runbooks have no vars; pass the value as a "
                        "parameter ({{ params.NAME }})",
                    )


def _var_values_issues(config: Config) -> Iterator[Issue]:
    """A ``${`` in a value must be a well-formed ``${VAR}`` or ``${file:/path}``."""
    tables: list[tuple[Loc, dict[str, Any]]] = [(("vars",), dict(config.vars))]
    tables += [
        (("environments", i, "vars"), dict(e.vars)) for i, e in enumerate(config.environments)
    ]
    for name, service in config.services.items():
        tables += [(("services", name, "vars"), dict(service.vars))]
        tables += [(("services", name, "params"), dict(service.params))]
        tables += [
            (("services", name, "overrides", env, "vars"), dict(o.vars))
            for env, o in service.overrides.items()
        ]
    for loc, table in tables:
        for key, value in table.items():
            if isinstance(value, str) and BROKEN_ENV.search(ENV_REFERENCE.sub("", value)):
                yield (
                    loc + (key,),
                    "'${' starts a secret reference: write ${NAME} or ${file:/path} (write $${ "
                    "for a literal '${')",
                )

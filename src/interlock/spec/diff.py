"""What a new config changes against the active one: services, environments, gates, steps.

Compared after templates are expanded, so a changed template shows as the steps
it changes in every service that extends it (and as the template itself).
Each change says whether it touches a production environment and whether it
touches one of its protections (gates, promotion, the artifacts and rollback
rules), which is what ``config_changes.review`` asks a second person for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from interlock.spec.model import Config, Environment, Step

ChangeKind = Literal["added", "removed", "changed"]

# An environment's protection rules besides its gates.
PROTECTIONS = frozenset(
    {
        "gates",
        "production",
        "promotion",
        "require_artifacts",
        "rollback_during_freeze",
        "rollback_approvals",
    }
)
# Top-level sections compared as wholes, by name where they are mappings.
_NAMED = ("templates", "runbooks", "teams", "roles")
_WHOLE = (
    "vars",
    "defaults",
    "permissions",
    "tickets",
    "notifications",
    "secrets",
    "inherit_env",
    "config_changes",
    "include",
)


@dataclass(frozen=True)
class Change:
    """One difference: ``what`` (service, environment, gate, step, template, …) ``name``
    was added, removed or changed (``fields``: which of its keys)."""

    what: str
    name: str
    change: ChangeKind
    fields: tuple[str, ...] = ()
    production: bool = False  # in (or of) a production environment
    protection: bool = False  # a production environment's gates or protection rules

    def to_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "name": self.name,
            "change": self.change,
            "fields": list(self.fields),
            "production": self.production,
            "protection": self.protection,
        }

    def line(self) -> str:
        mark = {"added": "+", "removed": "-", "changed": "~"}[self.change]
        fields = f": {', '.join(self.fields)}" if self.fields else ""
        return f"{mark} {self.what} {self.name}{fields}"


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _changed_fields(old: Any, new: Any, skip: frozenset[str] = frozenset()) -> tuple[str, ...]:
    a, b = _dump(old), _dump(new)
    keys = sorted((set(a) | set(b)) - skip)
    return tuple(k for k in keys if a.get(k) != b.get(k))


def _by_name(
    what: str,
    old: dict[str, Any],
    new: dict[str, Any],
    production: bool = False,
    protection: bool = False,
) -> Iterator[Change]:
    flags = {"production": production, "protection": protection}
    for name in old:
        if name not in new:
            yield Change(what, name, "removed", (), **flags)
    for name, value in new.items():
        if name not in old:
            yield Change(what, name, "added", (), **flags)
        elif _dump(old[name]) != _dump(value):
            fields = _changed_fields(old[name], value) if isinstance(value, BaseModel) else ()
            yield Change(what, name, "changed", fields, **flags)


def _steps(service: str, phase: str, old: list[Step], new: list[Step]) -> Iterator[Change]:
    before = {s.name: s for s in old}
    after = {s.name: s for s in new}
    yield from _by_name(
        "step",
        {f"{service}/{phase}/{k}": v for k, v in before.items()},
        {f"{service}/{phase}/{k}": v for k, v in after.items()},
    )
    kept = [n for n in before if n in after]
    if kept != [n for n in after if n in before]:
        yield Change("service", service, "changed", (f"{phase} order",))


def _environment(old: Environment, new: Environment) -> Iterator[Change]:
    production = old.production or new.production
    fields = _changed_fields(old, new, frozenset({"gates"}))
    if fields:
        yield Change(
            "environment",
            new.name,
            "changed",
            fields,
            production=production,
            protection=production and bool(PROTECTIONS & set(fields)),
        )
    for phase in ("before", "after"):
        before = {g.name: g.spec for g in getattr(old.gates, phase)}
        after = {g.name: g.spec for g in getattr(new.gates, phase)}
        yield from _by_name(
            "gate",
            {f"{new.name}/{phase}/{k}": v for k, v in before.items()},
            {f"{new.name}/{phase}/{k}": v for k, v in after.items()},
            production=production,
            protection=production,
        )


def diff_configs(old: Config, new: Config) -> list[Change]:
    """Every difference between the active config ``old`` and ``new``, in a stable order."""
    changes: list[Change] = []
    envs_old = {e.name: e for e in old.environments}
    envs_new = {e.name: e for e in new.environments}
    for name, env in envs_old.items():
        if name not in envs_new:
            changes.append(
                Change(
                    "environment",
                    name,
                    "removed",
                    production=env.production,
                    protection=env.production,
                )
            )
    for name, env in envs_new.items():
        if name not in envs_old:
            changes.append(
                Change(
                    "environment",
                    name,
                    "added",
                    production=env.production,
                    protection=env.production,
                )
            )
        else:
            changes.extend(_environment(envs_old[name], env))
    if [n for n in envs_old if n in envs_new] != [n for n in envs_new if n in envs_old]:
        changes.append(
            Change(
                "setting",
                "environments",
                "changed",
                ("promotion order",),
                production=True,
                protection=True,
            )
        )
    for name in old.services:
        if name not in new.services:
            changes.append(Change("service", name, "removed"))
    for name, service in new.services.items():
        if name not in old.services:
            changes.append(Change("service", name, "added"))
            continue
        previous = old.services[name]
        fields = _changed_fields(previous, service, frozenset({"deploy", "rollback"}))
        if fields:
            changes.append(Change("service", name, "changed", fields))
        changes.extend(_steps(name, "deploy", previous.deploy, service.deploy))
        changes.extend(_steps(name, "rollback", previous.rollback or [], service.rollback or []))
    for section in _NAMED:
        changes.extend(_by_name(section[:-1], getattr(old, section), getattr(new, section)))
    for section in _WHOLE:
        if _dump(getattr(old, section)) != _dump(getattr(new, section)):
            changes.append(Change("setting", section, "changed"))
    return changes


def needs_review(config: Config, changes: list[Change]) -> list[Change]:
    """The changes that the active ``config``'s ``config_changes`` asks approval for.

    A change of the review rules themselves, or of who belongs to the approvers'
    role or team, is always reviewed: otherwise the review could be switched off
    without one."""
    rules = config.config_changes
    if rules.review == "none" or rules.approvers is None:
        return []
    approvers = rules.approvers
    guard = {("setting", "config_changes")}
    if approvers.role:
        guard.add(("role", approvers.role))
    if approvers.team:
        guard.add(("team", approvers.team))
    found = []
    for change in changes:
        if (change.what, change.name) in guard:
            found.append(change)
        elif rules.review == "all":
            found.append(change)
        elif rules.review == "production" and change.production:
            found.append(change)
        elif rules.review == "production_gates" and change.protection:
            found.append(change)
    return found


def diff_text(changes: list[Change]) -> str:
    """The changes, one per line (``+`` added, ``-`` removed, ``~`` changed)."""
    if not changes:
        return "no changes"
    return "\n".join(change.line() for change in changes)

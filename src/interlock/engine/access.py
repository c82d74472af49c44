"""Authorisation: default-deny, per action, environment and service.

Rules come from ``permissions:`` in interlock.yaml. Members of the built-in
role ``admin`` may do everything. A rule that allows an action on releases
also lets its subject read what it covers (``READ_IMPLYING``); runbook rules
show runbook runs instead. A request passes only when, for every service it
touches, some rule covers that service in that environment.
"""

from __future__ import annotations

from collections.abc import Iterable

from interlock.domain.records import Deployment
from interlock.engine.configs import Configs
from interlock.engine.identity import Principal
from interlock.errors import Forbidden, NotFound
from interlock.spec.gate_specs import Permission
from interlock.spec.model import Config

# Being allowed to act on releases of a service lets one see them too; being allowed
# to read the config or the audit log does not open every release, and neither does
# running or signing runbooks (rules usually written without `services:`, which would
# open every release there): a runbook's people see its runs (RUNBOOK_READERS).
READ_IMPLYING = frozenset(
    {
        "read",
        "all",
        "release.create",
        "release.cancel",
        "approve",
        "rollback",
        "freeze.override",
        "lock",
        "artifact.register",
        "incident.manage",
    }
)

# Actions on the whole server, not on some services: a rule scoped to services (say,
# `allow: [all], services: owned`) does not reach them.
SERVER_ACTIONS = frozenset(
    {"users.manage", "config.read", "config.reload", "audit.read", "webhooks.manage"}
)

# Who may see runbook runs (in the run's environment); who started one sees it anyway.
RUNBOOK_READERS = ("runbook.run", "runbook.sign", "audit.read")


class Access:
    def __init__(self, configs: Configs) -> None:
        self.configs = configs

    def _config(self) -> Config | None:
        try:
            return self.configs.active().config
        except NotFound:
            return None

    @staticmethod
    def _subject(rule: Permission, who: Principal) -> bool:
        return (
            rule.everyone
            or (rule.role is not None and rule.role in who.roles)
            or (rule.team is not None and rule.team in who.teams)
            or (rule.user is not None and rule.user == who.name)
        )

    def covered(self, who: Principal, action: str, environment: str | None) -> set[str] | None:
        """Services ``who`` may do ``action`` on in ``environment``; ``None`` means all."""
        if who.is_admin():
            return None
        config = self._config()
        if config is None:
            return set()
        found: set[str] = set()
        for rule in config.permissions:
            if not self._subject(rule, who):
                continue
            if action == "read":
                if not READ_IMPLYING & set(rule.allow):
                    continue
            elif action not in rule.allow and "all" not in rule.allow:
                continue
            if rule.environments is not None:
                # A rule scoped to environments covers an action without one (say, a
                # runbook run that names none) only for reading; otherwise leaving the
                # environment out would escape the scope.
                if environment is None and action != "read":
                    continue
                if environment is not None and environment not in rule.environments:
                    continue
            if rule.services is None:
                return None
            if rule.services == "owned":
                found |= {
                    name
                    for name, service in config.services.items()
                    if service.owner is not None and service.owner in who.teams
                }
            else:
                found |= set(rule.services)
        return found

    def allows(
        self,
        who: Principal,
        action: str,
        *,
        environment: str | None = None,
        services: Iterable[str] | None = None,
    ) -> bool:
        covered = self.covered(who, action, environment)
        if covered is None:
            return True
        if action in SERVER_ACTIONS:
            return False
        wanted = set(services or ())
        if not wanted:
            return bool(covered) or self._unscoped(who, action, environment)
        return wanted <= covered

    def _unscoped(self, who: Principal, action: str, environment: str | None) -> bool:
        config = self._config()
        return config is not None and any(
            self._subject(r, who)
            and (action in r.allow or "all" in r.allow)
            and (
                r.environments is None
                or (environment is not None and environment in r.environments)
            )
            for r in config.permissions
        )

    def require(
        self,
        who: Principal,
        action: str,
        *,
        environment: str | None = None,
        services: Iterable[str] | None = None,
    ) -> None:
        """Raise :class:`Forbidden` unless ``who`` may do ``action`` there."""
        wanted = sorted(set(services or ()))
        if self.allows(who, action, environment=environment, services=wanted):
            return
        where = f" in {environment}" if environment else ""
        what = f" for {', '.join(wanted)}" if wanted else ""
        raise Forbidden(
            f"{who.name} may not {action}{where}{what}: no permission rule allows it "
            "(an administrator grants it under `permissions:` in interlock.yaml)",
            action=action,
            environment=environment,
        )

    def require_everywhere(self, who: Principal, action: str, *, environment: str | None) -> None:
        """Raise :class:`Forbidden` unless a rule lets ``who`` do ``action`` on every service.

        What an object of no one service needs (an environment lock, an incident
        about no service): a rule scoped to some services must not reach it.
        """
        if self.covered(who, action, environment) is None:
            return
        where = f" in {environment}" if environment else ""
        raise Forbidden(
            f"{who.name} may not {action}{where} for every service: it touches no one "
            "service, so it needs a rule without `services:` (an administrator grants it "
            "under `permissions:` in interlock.yaml)",
            action=action,
            environment=environment,
        )

    def can_read_run(self, who: Principal, run: Deployment) -> bool:
        """A runbook run: for who started it, and who runs, signs or audits runbooks there."""
        return run.created_by == who.name or any(
            self.allows(who, action, environment=run.environment) for action in RUNBOOK_READERS
        )

    def can_read(self, who: Principal, services: Iterable[str]) -> bool:
        """Read access to an object touching ``services``: any one of them is enough."""
        covered = self.covered(who, "read", None)
        return covered is None or bool(covered & set(services))

    def readable_services(self, who: Principal) -> set[str] | None:
        return self.covered(who, "read", None)


# What a person may do, as the web UI asks it to show only the buttons that work.
PERSON_ACTIONS = (
    "release.create",
    "release.cancel",
    "approve",
    "rollback",
    "freeze.override",
    "lock",
    "artifact.register",
    "incident.manage",
    "runbook.run",
    "runbook.sign",
    "metrics.read",
)


def abilities(access: Access, who: Principal) -> dict[str, object]:
    """Every action ``who`` may take, per environment and service, by the same rules as
    :meth:`Access.require` (so a button shown is a call that passes the check).

    ``environments[E].services[S]``: actions on that service there;
    ``environments[E].everywhere``: actions on objects of no one service (a lock, an
    incident about no service); ``environments[E].unscoped``: actions that name no
    service (start a runbook there); ``unscoped``: actions naming no environment and
    no service; ``services[S]``: actions on that service in no one environment (block
    a version); ``server``: actions on the whole server.
    """
    config = access._config()
    if config is None:
        return {
            "user": who.name,
            "admin": who.is_admin(),
            "roles": sorted(who.roles),
            "teams": sorted(who.teams),
            "server": [],
            "unscoped": [],
            "services": {},
            "environments": {},
        }
    services = sorted(config.services)
    out: dict[str, object] = {}
    for env in config.environments:
        out[env.name] = {
            "services": {
                name: [
                    a
                    for a in PERSON_ACTIONS
                    if access.allows(who, a, environment=env.name, services=[name])
                ]
                for name in services
            },
            "everywhere": [a for a in PERSON_ACTIONS if access.covered(who, a, env.name) is None],
            "unscoped": [a for a in PERSON_ACTIONS if access.allows(who, a, environment=env.name)],
        }
    return {
        "user": who.name,
        "admin": who.is_admin(),
        "roles": sorted(who.roles),
        "teams": sorted(who.teams),
        "server": [a for a in sorted(SERVER_ACTIONS) if access.allows(who, a)],
        # Actions naming neither an environment nor a service (a runbook run with none).
        "unscoped": [a for a in PERSON_ACTIONS if access.allows(who, a)],
        # Actions on a service in no one environment (block or unblock a version).
        "services": {
            name: [a for a in PERSON_ACTIONS if access.allows(who, a, services=[name])]
            for name in services
        },
        "environments": out,
    }

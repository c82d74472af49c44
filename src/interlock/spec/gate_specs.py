"""The gates of an environment in interlock.yaml, and who may do what (permissions).

```yaml
environments:
  - name: production
    gates:
      before:                      # all must clear before the deploy steps start
        - approval:
            rules:
              - {role: release-managers, count: 2}
              - {role: sre}
            expires: 24h
        - window: {timezone: Europe/Berlin, allow: [{days: [mon, tue], from: "09:00", to: "16:00"}]}
        - check: {http: {method: GET, url: "https://status.example.com/ok"}, timeout: 5m}
      after:                       # all must clear after the deploy steps
        - soak: {duration: 10m, checks: [{metric: {...}}]}
```
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from interlock.domain.bounds import ApprovalCount
from interlock.spec.common import (
    STEP_NAME_PATTERN,
    Duration,
    HttpCall,
    Name,
    PositiveDuration,
    Strict,
    UserName,
)
from interlock.spec.metric_gate import MetricGateSpec
from interlock.spec.windows import WindowSpec

GateName = Annotated[str, Field(pattern=STEP_NAME_PATTERN)]


def _exactly_one(model: Any, keys: tuple[str, ...], what: str) -> None:
    chosen = [k for k in keys if getattr(model, k) not in (None, False)]
    if len(chosen) != 1:
        found = ", ".join(chosen) if chosen else "none"
        raise ValueError(f"{what} needs exactly one of {', '.join(keys)} (found {found})")


class ApprovalRule(Strict):
    """N distinct people from a role, a team, or the service's owning team."""

    role: Name | None = None
    team: Name | None = None
    owners: bool = Field(default=False, description="The team that owns each service.")
    count: ApprovalCount = Field(default=1, description="How many distinct people.")

    @model_validator(mode="after")
    def _one_source(self) -> ApprovalRule:
        _exactly_one(self, ("role", "team", "owners"), "an approval rule")
        return self

    def describe(self) -> str:
        source = (
            f"role {self.role}"
            if self.role
            else f"team {self.team}"
            if self.team
            else "the owning team"
        )
        return f"{self.count} from {source}"


class ApprovalGate(Strict):
    """Sign-off by people: every rule must hold; the release's authors never count."""

    name: GateName = "approval"
    rules: list[ApprovalRule] = Field(min_length=1)
    expires: Duration | None = Field(
        default=604800.0, description="An approval older than this no longer counts (7d)."
    )


class CheckProbe(Strict):
    """A command or an HTTP request that passes or fails (run once per poll)."""

    run: str | None = Field(default=None, description="Passes when it exits 0.")
    http: HttpCall | None = Field(default=None, description="Passes on the expected status.")
    attempt_timeout: PositiveDuration = Field(
        default=60.0, description="How long one try may take."
    )

    @model_validator(mode="after")
    def _one_probe(self) -> CheckProbe:
        _exactly_one(self, ("run", "http"), "a check")
        return self


class CheckGate(CheckProbe):
    """Poll a check until it passes; fail the gate when ``timeout`` passes first."""

    name: GateName = "check"
    interval: PositiveDuration = Field(default=10.0, description="Time between tries.")
    timeout: PositiveDuration = Field(
        default=300.0, description="Fail when it has not passed by then."
    )


class SoakCheck(Strict):
    """One check that must keep passing during a soak."""

    check: CheckProbe | None = None
    metric: MetricGateSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> SoakCheck:
        _exactly_one(self, ("check", "metric"), "a soak check")
        return self


class SoakGate(Strict):
    """Wait ``duration`` after deploying while the checks keep passing; one failure ends it."""

    name: GateName = "soak"
    duration: Duration
    interval: PositiveDuration = Field(
        default=30.0, description="Time between two rounds of checks."
    )
    checks: list[SoakCheck] = Field(default_factory=list)


class Gate(Strict):
    """One gate: exactly one of approval, check, metric, soak or window."""

    approval: ApprovalGate | None = None
    check: CheckGate | None = None
    metric: MetricGateSpec | None = None
    soak: SoakGate | None = None
    window: WindowSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Gate:
        _exactly_one(self, ("approval", "check", "metric", "soak", "window"), "a gate")
        return self

    @property
    def kind(self) -> str:
        for key in ("approval", "check", "metric", "soak", "window"):
            if getattr(self, key) is not None:
                return key
        raise AssertionError("validated")

    @property
    def spec(self) -> Any:
        return getattr(self, self.kind)

    @property
    def name(self) -> str:
        return str(getattr(self.spec, "name", self.kind))


class Gates(Strict):
    before: list[Gate] = Field(default_factory=list, description="Before the deploy steps.")
    after: list[Gate] = Field(default_factory=list, description="After the deploy steps.")


Action = Literal[
    "read",
    "release.create",
    "release.cancel",
    "approve",
    "rollback",
    "freeze.override",
    "lock",
    "config.read",
    "config.reload",
    "audit.read",
    "users.manage",
    "artifact.register",
    "incident.manage",
    "runbook.run",
    "runbook.sign",
    "metrics.read",
    "webhooks.manage",
    "all",
]
ACTIONS: tuple[str, ...] = get_args(Action)  # what `allow:` may name, in this order


class Permission(Strict):
    """Allow a role, a team, a user (or everyone signed in) some actions, optionally scoped."""

    role: Name | None = None
    team: Name | None = None
    user: UserName | None = None
    everyone: bool = Field(default=False, description="Every authenticated user.")
    allow: list[Action] = Field(min_length=1)
    environments: list[Name] | None = Field(
        default=None, description="Only in these environments (default: all)."
    )
    services: list[Name] | Literal["owned"] | None = Field(
        default=None,
        description="Only these services, or `owned`: those owned by the subject's teams.",
    )

    @model_validator(mode="after")
    def _one_subject(self) -> Permission:
        _exactly_one(self, ("role", "team", "user", "everyone"), "a permission")
        return self

"""The pydantic models of ``interlock.yaml``; the shipped JSON Schema is generated from them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from interlock.domain.bounds import Parallel, Retries
from interlock.spec.common import (
    NAME_PATTERN,
    STEP_NAME_PATTERN,
    Duration,
    HttpCall,
    Name,
    PositiveDuration,
    Strict,
    UserName,
)
from interlock.spec.config_changes import ConfigChanges
from interlock.spec.gate_specs import Gates, Permission
from interlock.spec.includes import INCLUDABLE
from interlock.spec.notifications import Notifications
from interlock.spec.sso import Sso
from interlock.spec.step_environment import INHERIT_ENV_FIELD, SECRETS_FIELD, EnvName, EnvPattern

__all__ = ["NAME_PATTERN", "STEP_NAME_PATTERN", "Duration", "HttpCall", "Name", "Strict"]


class ManualStep(Strict):
    """A checklist item a person signs off (`interlock runbook sign`)."""

    instructions: str = Field(min_length=1, description="What to do and check, for a person.")
    role: Name | None = Field(default=None, description="Who may sign it off.")
    team: Name | None = Field(default=None, description="Or: which team may sign it off.")

    @model_validator(mode="after")
    def _signer(self) -> ManualStep:
        if (self.role is None) == (self.team is None):
            raise ValueError("a manual step names exactly one of role or team to sign it off")
        return self


class Step(Strict):
    """One unit of work: exactly one of ``run``, ``http``, ``uses``, ``runbook`` or ``manual``."""

    name: Annotated[str, Field(pattern=STEP_NAME_PATTERN)]
    run: str | None = Field(
        default=None,
        description="A shell command; {{ placeholders }} are shell-quoted.",
    )
    http: HttpCall | None = None
    uses: str | None = Field(
        default=None, description="A plug-in executor from the interlock.executors entry points."
    )
    runbook: Name | None = Field(
        default=None, description="Run this runbook (its params in `with`) and wait for it."
    )
    manual: ManualStep | None = Field(
        default=None, description="A checklist item that a named role or team signs off."
    )
    with_: dict[str, Any] = Field(
        default_factory=dict, alias="with", description="Settings for the plug-in in `uses`."
    )
    timeout: PositiveDuration | None = Field(
        default=None, description="Default: defaults.timeout (10m)."
    )
    retries: Retries | None = None
    backoff: Duration | None = Field(
        default=None, description="Wait before the first retry; doubles each time (default 5s)."
    )
    idempotent: bool | None = Field(
        default=None,
        description="Safe to run twice. Only idempotent steps are re-run after a worker dies.",
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    cwd: str | None = Field(default=None, description="Working directory, relative to the config.")
    environments: list[Name] | None = Field(
        default=None, description="Run this step only in these environments."
    )

    @model_validator(mode="after")
    def _one_executor(self) -> Step:
        kinds = ("run", "http", "uses", "runbook", "manual")
        chosen = [k for k in kinds if getattr(self, k) is not None]
        if len(chosen) != 1:
            found = ", ".join(chosen) if chosen else "none"
            raise ValueError(
                f"a step needs exactly one of run, http, uses, runbook or manual (found {found})"
            )
        return self


VAR_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
VarName = Annotated[str, Field(pattern=VAR_NAME_PATTERN)]
# A value a step gets as ``{{ vars.NAME }}``: written as text, a number or a boolean.
VarValue = Annotated[
    str | int | float | bool,
    Field(description="Text (numbers and booleans are used as written: 6, true)."),
]
Vars = dict[VarName, VarValue]
VARS_DESCRIPTION = (
    "Values steps use as {{ vars.NAME }} (shell-quoted like every placeholder). A value may "
    "be a ${VAR} or ${file:/path} reference, read when the step runs and masked."
)


class Defaults(Strict):
    """Values a step gets when it does not set its own."""

    timeout: PositiveDuration = 600.0
    retries: Retries = 0
    backoff: Duration = 5.0
    idempotent: bool = False


class Environment(Strict):
    """A stage of the promotion chain; list order is the promotion order."""

    name: Name
    description: str | None = None
    production: bool = Field(default=False, description="Failures here open incidents.")
    vars: Vars = Field(default_factory=dict, description=VARS_DESCRIPTION)
    gates: Gates = Field(default_factory=Gates)
    on_failure: Literal["rollback", "rollback_service", "pause", "fail"] = Field(
        default="rollback",
        description="When a step or an after-gate fails: roll the whole release back (in "
        "reverse dependency order), roll back only the failed service, pause for a person, "
        "or just fail.",
    )
    deadline: PositiveDuration | None = Field(
        default=None,
        description="A deployment not finished by then (from its start) is aborted and "
        "handled as a failure.",
    )
    parallel: Parallel = Field(
        default=4, description="How many services of a train deploy at once."
    )
    require_artifacts: bool = Field(
        default=False, description="Only artifacts registered by CI may be released here."
    )
    rollback_during_freeze: bool = Field(
        default=True, description="Rollbacks ignore deploy windows and freezes."
    )
    rollback_approvals: bool = Field(
        default=False, description="Rollbacks need the approval gates too (default: no)."
    )
    promotion: bool = Field(
        default=True,
        description="A release enters only after the same artifacts succeeded in the "
        "previous environment (no skipping staging). Ignored for the first environment.",
    )
    concurrency: Literal["queue", "refuse"] = Field(
        default="queue",
        description="A second deployment of a service that is already deploying here "
        "waits its turn (queue) or fails at once (refuse).",
    )


class ServiceOverride(Strict):
    """What a service sets differently in one environment."""

    vars: Vars = Field(default_factory=dict, description=VARS_DESCRIPTION)


class TemplateParam(Strict):
    """A parameter of a template, used in its steps as {{ vars.NAME }}."""

    description: str | None = None
    required: bool = Field(default=False, description="A service that extends it must set it.")
    default: VarValue | None = None


class Template(Strict):
    """A shared step list services extend (``extends: NAME``), stating only what differs."""

    description: str | None = None
    params: dict[VarName, TemplateParam] = Field(
        default_factory=dict,
        description="Parameters services set in `params:`; steps use them as {{ vars.NAME }}.",
    )
    deploy: list[Step] = Field(min_length=1)
    rollback: list[Step] | None = None


class Service(Strict):
    """A deployable unit."""

    description: str | None = None
    owner: Name | None = Field(default=None, description="The team that owns the service.")
    repo: str | None = Field(
        default=None,
        description="Its git repository (a local path or clone) for release notes and diffs.",
    )
    depends_on: list[Name] = Field(
        default_factory=list,
        description="Services that deploy before this one when released together.",
    )
    extends: Name | None = Field(
        default=None,
        description="A template (under `templates:`) whose steps this service runs; its own "
        "`deploy`/`rollback` steps replace the template's steps of the same name, others are "
        "added at the end.",
    )
    params: Vars = Field(default_factory=dict, description="Values of the template's parameters.")
    vars: Vars = Field(
        default_factory=dict,
        description="Values for this service in every environment (over the environment's).",
    )
    overrides: dict[Name, ServiceOverride] = Field(
        default_factory=dict,
        description="Per environment (by name): what this service sets differently there.",
    )
    deploy: list[Step] = Field(
        default_factory=list, description="Its steps (at least one unless it `extends`)."
    )
    rollback: list[Step] | None = Field(
        default=None,
        description="How to go back to the previous version; default: the deploy steps run "
        "with the previous version.",
    )


class RunbookParam(Strict):
    description: str | None = None
    required: bool = False
    default: str | None = None


class Runbook(Strict):
    """A named procedure as code: automated steps and manual checklist items."""

    description: str | None = None
    params: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], RunbookParam] = Field(
        default_factory=dict, description="Parameters, used as {{ params.NAME }}."
    )
    steps: list[Step] = Field(min_length=1)


class Tickets(Strict):
    pattern: str = Field(
        default=r"\b[A-Z][A-Z0-9]+-\d+\b", description="What a ticket key looks like."
    )
    url: str | None = Field(
        default=None,
        description="Link for a ticket, with {ticket}, e.g. https://jira/browse/{ticket}.",
    )

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        import re

        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if compiled.search("") is not None:
            raise ValueError("matches an empty string, so it would find a ticket everywhere")
        return value


class Config(Strict):
    """The whole of interlock.yaml."""

    version: Literal[1] = Field(description="The format version of this file.")
    include: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="More files (paths or globs relative to this file: services/*.yaml, "
        "teams/*/interlock.yaml) adding services, templates, runbooks, teams, roles and "
        "permissions.",
    )
    defaults: Defaults = Field(default_factory=Defaults)
    vars: Vars = Field(
        default_factory=dict,
        description="Values every service has in every environment, unless set closer.",
    )
    environments: list[Environment] = Field(min_length=1)
    services: dict[Annotated[str, Field(pattern=NAME_PATTERN)], Service] = Field(min_length=1)
    teams: dict[Name, list[UserName]] = Field(
        default_factory=dict, description="Team name: its members (user names)."
    )
    roles: dict[Name, list[UserName]] = Field(
        default_factory=dict, description="Role name: its members (user names)."
    )
    runbooks: dict[Name, Runbook] = Field(default_factory=dict)
    templates: dict[Name, Template] = Field(
        default_factory=dict, description="Shared step lists services extend."
    )
    config_changes: ConfigChanges = Field(
        default_factory=ConfigChanges,
        description="How changes of this config are reviewed before a reload applies them.",
    )
    tickets: Tickets = Field(default_factory=Tickets)
    permissions: list[Permission] = Field(
        default_factory=list,
        description="Who may do what, where. Nothing is allowed unless a rule allows it "
        "(members of the built-in role `admin` may do everything).",
    )
    notifications: Notifications = Field(
        default_factory=Notifications,
        description="Events in and out: webhooks (CDEvents or audit events), signed sources.",
    )
    secrets: list[EnvName] = SECRETS_FIELD
    sso: Sso | None = Field(
        default=None,
        description="Sign-in to the web UI with an OpenID Connect provider (single sign-on).",
    )
    inherit_env: list[EnvPattern] = INHERIT_ENV_FIELD


def json_schema() -> dict[str, Any]:
    """The JSON Schema shipped as ``interlock.schema.json`` for editors."""
    schema = Config.model_json_schema(by_alias=True)
    # One schema for the main file and the files it includes: a file with `version`
    # is a main file and needs what one needs; a file without holds only what an
    # included file may.
    # A main file may leave its services to the files it includes.
    required = [k for k in schema.pop("required", []) if k != "services"]
    schema["if"] = {"required": ["version"]}
    schema["then"] = {
        "required": required,
        "anyOf": [{"required": ["services"]}, {"required": ["include"]}],
    }
    schema["else"] = {"propertyNames": {"enum": list(INCLUDABLE)}}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://interlock.dev/schemas/interlock.schema.json"
    schema["title"] = "interlock.yaml"
    return schema

"""What a release will do, fixed when the release is created.

A plan is computed from ``interlock.yaml`` and the release's content, then
stored with the release as JSON (its snapshot): later config changes never
alter a release in flight. Each environment's part is a graph of nodes; a node
is a step (run by an executor) or a gate (evaluated until it clears or fails).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReleaseItem:
    """One service artifact in a release, pinned by digest when known."""

    service: str
    version: str
    digest: str | None = None
    commit: str | None = None


@dataclass(frozen=True)
class NodePlan:
    """One node of a deployment graph.

    ``key`` is unique within the deployment (``api/migrate``); ``needs`` lists
    the keys that must succeed first. ``executor`` is ``shell``, ``http`` or a
    plug-in name for steps, and the gate type for gates.
    """

    key: str
    kind: str  # "step" | "gate"
    name: str
    executor: str
    spec: dict[str, Any]
    service: str | None = None
    phase: str = "deploy"  # "before" | "deploy" | "after" | "rollback"
    needs: tuple[str, ...] = ()
    timeout: float = 600.0
    retries: int = 0
    backoff: float = 5.0
    idempotent: bool = False

    def max_attempts(self) -> int:
        return self.retries + 1


@dataclass(frozen=True)
class EnvironmentSettings:
    """An environment's rules as a release planned them; its deployments keep a copy.

    Stored as JSON with the plan and on each deployment (``deployments.settings``);
    :meth:`from_json` is the one place that reads that JSON by key, and reads what
    older versions stored too: a key missing there takes the default here.
    """

    production: bool = False  # failures here open incidents
    concurrency: str = "queue"  # "queue" | "refuse": a second deployment of a service
    previous: str | None = None  # a release must have succeeded there first (promotion)
    on_failure: str = "fail"  # "rollback" | "rollback_service" | "pause" | "fail"
    deadline: float | None = None  # seconds from the start; then it is aborted
    parallel: int = 0  # services of a train deployed at once (0: no limit)
    services: int = 0  # services in the release
    depends: dict[str, list[str]] = field(default_factory=dict)  # a service's depends_on
    require_artifacts: bool = False
    rollback_during_freeze: bool = True
    rollback_approvals: bool = False

    @property
    def limits_parallel(self) -> bool:
        """Whether the train has more services than may deploy at once."""
        return bool(self.parallel) and self.services > self.parallel

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> EnvironmentSettings:
        data = data or {}
        deadline = data.get("deadline")
        return cls(
            production=bool(data.get("production", False)),
            concurrency=str(data.get("concurrency") or "queue"),
            previous=data.get("previous"),
            on_failure=str(data.get("on_failure") or "fail"),
            deadline=float(deadline) if deadline is not None else None,
            parallel=int(data.get("parallel") or 0),
            services=int(data.get("services") or 0),
            depends={k: list(v) for k, v in (data.get("depends") or {}).items()},
            require_artifacts=bool(data.get("require_artifacts", False)),
            rollback_during_freeze=bool(data.get("rollback_during_freeze", True)),
            rollback_approvals=bool(data.get("rollback_approvals", False)),
        )


@dataclass(frozen=True)
class EnvironmentPlan:
    """The graph a deployment to one environment runs, and that environment's rules."""

    name: str
    index: int
    nodes: tuple[NodePlan, ...]
    rollback: tuple[NodePlan, ...] = ()
    settings: EnvironmentSettings = field(default_factory=EnvironmentSettings)

    def node(self, key: str) -> NodePlan:
        for node in self.nodes + self.rollback:
            if node.key == key:
                return node
        raise KeyError(key)


@dataclass(frozen=True)
class ReleasePlan:
    """The whole route of a release: its content and every environment's graph."""

    config_version: int
    items: tuple[ReleaseItem, ...]
    environments: tuple[EnvironmentPlan, ...]

    def environment(self, name: str) -> EnvironmentPlan:
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(name)

    def item(self, service: str) -> ReleaseItem:
        for item in self.items:
            if item.service == service:
                return item
        raise KeyError(service)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` reads it back unchanged."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleasePlan:
        def node(d: dict[str, Any]) -> NodePlan:
            return NodePlan(**{**d, "needs": tuple(d.get("needs", ()))})

        return cls(
            config_version=data["config_version"],
            items=tuple(ReleaseItem(**i) for i in data["items"]),
            environments=tuple(
                EnvironmentPlan(
                    name=e["name"],
                    index=e["index"],
                    nodes=tuple(node(n) for n in e["nodes"]),
                    rollback=tuple(node(n) for n in e.get("rollback", ())),
                    settings=EnvironmentSettings.from_json(e.get("settings")),
                )
                for e in data["environments"]
            ),
        )


def ready_keys(nodes: tuple[NodePlan, ...], done: set[str]) -> list[str]:
    """Keys whose needs are all in ``done`` and that are not done themselves."""
    return [n.key for n in nodes if n.key not in done and all(k in done for k in n.needs)]

"""What a release will do, fixed when the release is created.

A plan is computed from ``interlock.yaml`` and the release's content, then
stored with the release as JSON (its snapshot): later config changes never
alter a release in flight. Each environment's part is a graph of nodes; a node
is a step (run by an executor) or a gate (evaluated until it clears or fails).
"""

from __future__ import annotations

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
class EnvironmentPlan:
    """The graph a deployment to one environment runs, and that environment's rules."""

    name: str
    index: int
    nodes: tuple[NodePlan, ...]
    rollback: tuple[NodePlan, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

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
                    settings=e.get("settings", {}),
                )
                for e in data["environments"]
            ),
        )


def ready_keys(nodes: tuple[NodePlan, ...], done: set[str]) -> list[str]:
    """Keys whose needs are all in ``done`` and that are not done themselves."""
    return [n.key for n in nodes if n.key not in done and all(k in done for k in n.needs)]

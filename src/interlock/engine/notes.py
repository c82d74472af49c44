"""Release notes and environment diffs: the commits and tickets between deployed versions.

A version becomes a commit through the release's pinned item or its registered
artifact (``--commit``), else through a git tag named ``v{version}`` or
``{version}``. Commits come from the service's ``repo:`` (a local clone, read
with :mod:`interlock.vcs`, relative to the config file). A problem with one
service (no repository, a commit the clone does not have) is told in that
service's part; the other services are still listed.

The database is read in one short transaction; git runs after it, outside any
transaction. The API serves the result as JSON; the CLI renders it as Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from interlock.domain.records import Artifact, Item
from interlock.engine.core import Engine
from interlock.errors import InterlockError, InvalidInput, NotFound
from interlock.spec.model import Config
from interlock.storage.tx import Tx
from interlock.vcs import (
    Commit,
    commits_between,
    count_between,
    find_tag,
    repository_root,
    resolve,
)

FIRST_LIMIT = 50
"""Commits listed when nothing ran in the environment before (the newest ones)."""
RANGE_LIMIT = 1000
"""Commits listed at most between two versions; ``total`` says how many there are."""


@dataclass(frozen=True)
class Ticket:
    """A ticket key found in commit messages, with its link when ``tickets.url`` is set."""

    key: str
    url: str | None


@dataclass(frozen=True)
class Version:
    """A deployed (or to be deployed) version and the commit it was built from."""

    version: str
    commit: str | None = None  # the full id once resolved in the repository
    source: str | None = None  # "release", "artifact" or "tag v1.4.2"


@dataclass(frozen=True)
class CommitRange:
    """The commits one version has and another lacks, newest ``limit`` of them, oldest first."""

    commits: tuple[Commit, ...] = ()
    total: int = 0
    tickets: tuple[Ticket, ...] = ()

    @property
    def truncated(self) -> bool:
        """True when only the newest of more commits are listed."""
        return self.total > len(self.commits)


@dataclass(frozen=True)
class ServiceNotes:
    """One service of a release: what ran in the environment, what comes, what changes."""

    service: str
    repo: str | None
    old: Version | None  # None: nothing of this service ran there before
    new: Version
    added: CommitRange
    removed: CommitRange  # commits that ran there and the new version lacks (a rollback)
    problem: str | None = None

    @property
    def first(self) -> bool:
        """Nothing ran there before: ``added`` is the history up to the new version, bounded."""
        return self.old is None


@dataclass(frozen=True)
class ReleaseNotes:
    release_id: int
    kind: str
    reason: str
    created_by: str
    environment: str
    route: tuple[str, ...]
    services: tuple[ServiceNotes, ...]

    @property
    def tickets(self) -> tuple[Ticket, ...]:
        """Every ticket the release brings, each once, in order of first mention."""
        return _unique(t for s in self.services for t in s.added.tickets)


@dataclass(frozen=True)
class ServiceDiff:
    """One service in two environments: its versions and the commits each has alone."""

    service: str
    repo: str | None
    a: Version | None
    b: Version | None
    only_in_a: CommitRange
    only_in_b: CommitRange
    problem: str | None = None

    @property
    def same(self) -> bool:
        """The same version runs in both environments (or the service is in neither)."""
        return (self.a.version if self.a else None) == (self.b.version if self.b else None)

    @property
    def diverged(self) -> bool:
        """Each environment has commits the other lacks."""
        return self.only_in_a.total > 0 and self.only_in_b.total > 0


@dataclass(frozen=True)
class EnvironmentDiff:
    a: str
    b: str
    services: tuple[ServiceDiff, ...]

    def ahead(self, diff: ServiceDiff) -> str | None:
        """The environment that has commits the other lacks, when only one does."""
        if diff.only_in_a.total and not diff.only_in_b.total:
            return self.a
        if diff.only_in_b.total and not diff.only_in_a.total:
            return self.b
        return None


class _Problem(Exception):
    """A reason this service's commits cannot be listed; told in its part of the notes."""


# -- what the database says ------------------------------------------------------------------


def release_notes(engine: Engine, release_id: int, environment: str | None = None) -> ReleaseNotes:
    """The commits and tickets each service of a release brings to ``environment``.

    ``environment`` defaults to the last one of the release's route. "Before" is
    what ran there when the release's deployment there started, or, when it has
    not started yet, what the inventory says runs there now.
    """
    active = engine.configs.active()
    config: Config = active.config
    with engine.db.read() as tx:
        release = tx.get_release(release_id, plan=False)
        if release is None:
            raise NotFound(f"no release {release_id}")
        route = release.route
        target = environment or (route[-1] if route else None)
        known = [e.name for e in config.environments]
        if target is None or (target not in route and target not in known):
            raise NotFound(
                f"no environment {target!r}: release {release_id} goes through "
                f"{', '.join(route) or 'no environment'} (configured: {', '.join(known)})"
            )
        started = [
            d
            for d in tx.list_deployments(release_id=release_id, environment=target)
            if d.started_at is not None
        ]
        before: dict[str, str | None] = {}
        for item in release.items:
            if started:  # what ran when this release arrived, even if it runs there now
                previous = min(started, key=lambda d: d.id).previous.get(item.service)
                before[item.service] = str(previous["version"]) if previous else None
            else:
                entry = tx.inventory_entry(item.service, target)
                before[item.service] = entry.version if entry else None
        artifacts = _artifacts(
            tx,
            [(i.service, i.version) for i in release.items]
            + [(s, v) for s, v in before.items() if v is not None],
        )
    services = []
    for item in release.items:
        old = before[item.service]
        services.append(
            _service_notes(
                config,
                active.base_dir,
                item,
                _known(item.service, old, artifacts) if old is not None else None,
                artifacts,
            )
        )
    return ReleaseNotes(
        release_id=release.id,
        kind=release.kind,
        reason=release.reason,
        created_by=release.created_by,
        environment=target,
        route=route,
        services=tuple(services),
    )


def environment_diff(
    engine: Engine, env_a: str, env_b: str, readable: set[str] | None = None
) -> EnvironmentDiff:
    """Which services differ between two environments, and the commits in between.

    Only services in ``readable`` are compared (``None``: all of them).
    """
    active = engine.configs.active()
    config: Config = active.config
    with engine.db.read() as tx:
        entries = [e for e in tx.all_inventory() if readable is None or e.service in readable]
        known = [e.name for e in config.environments]
        known += sorted({e.environment for e in entries} - set(known))
        for name in (env_a, env_b):
            if name not in known:
                raise NotFound(f"no environment {name!r}: known are {', '.join(known)}")
        if env_a == env_b:
            raise InvalidInput("name two different environments to compare", field="environment")
        a = {e.service: e.version for e in entries if e.environment == env_a}
        b = {e.service: e.version for e in entries if e.environment == env_b}
        artifacts = _artifacts(tx, list(a.items()) + list(b.items()))
    services = []
    for service in sorted(set(a) | set(b)):
        va = _known(service, a[service], artifacts) if service in a else None
        vb = _known(service, b[service], artifacts) if service in b else None
        services.append(_service_diff(config, active.base_dir, service, va, vb))
    return EnvironmentDiff(env_a, env_b, tuple(services))


def _artifacts(tx: Tx, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Artifact]:
    found: dict[tuple[str, str], Artifact] = {}
    for key in set(wanted):
        artifact = tx.get_artifact(*key)
        if artifact is not None:
            found[key] = artifact
    return found


def _known(service: str, version: str, artifacts: dict[tuple[str, str], Artifact]) -> Version:
    artifact = artifacts.get((service, version))
    if artifact is not None and artifact.commit_sha:
        return Version(version, artifact.commit_sha, "artifact")
    return Version(version)


# -- what git says ---------------------------------------------------------------------------


def _service_notes(
    config: Config,
    base_dir: Path,
    item: Item,
    old: Version | None,
    artifacts: dict[tuple[str, str], Artifact],
) -> ServiceNotes:
    new = (
        Version(item.version, item.commit, "release")
        if item.commit
        else _known(item.service, item.version, artifacts)
    )
    repo = config.services[item.service].repo if item.service in config.services else None
    try:
        path = _repository(config, base_dir, item.service)
        new = _resolved(path, item.service, new)
        if old is None:
            added = _range(config, path, None, new, FIRST_LIMIT)
            return ServiceNotes(item.service, repo, None, new, added, CommitRange())
        old = _resolved(path, item.service, old)
        added = _range(config, path, old, new, RANGE_LIMIT)
        removed = _range(config, path, new, old, RANGE_LIMIT)
        return ServiceNotes(item.service, repo, old, new, added, removed)
    except _Problem as problem:
        return ServiceNotes(
            item.service, repo, old, new, CommitRange(), CommitRange(), problem=str(problem)
        )


def _service_diff(
    config: Config, base_dir: Path, service: str, a: Version | None, b: Version | None
) -> ServiceDiff:
    repo = config.services[service].repo if service in config.services else None
    if a is None or b is None or a.version == b.version:
        return ServiceDiff(service, repo, a, b, CommitRange(), CommitRange())
    try:
        path = _repository(config, base_dir, service)
        a = _resolved(path, service, a)
        b = _resolved(path, service, b)
        only_a = _range(config, path, b, a, RANGE_LIMIT)
        only_b = _range(config, path, a, b, RANGE_LIMIT)
        return ServiceDiff(service, repo, a, b, only_a, only_b)
    except _Problem as problem:
        return ServiceDiff(service, repo, a, b, CommitRange(), CommitRange(), str(problem))


_REMOTE = re.compile(r"^[a-z][a-z0-9+.-]*://|^[^/\s]+@[^/\s]+:", re.IGNORECASE)


def _repository(config: Config, base_dir: Path, service: str) -> Path:
    """The local clone of a service, checked to be a git repository."""
    spec = config.services.get(service)
    if spec is None:
        raise _Problem(f"{service} is not in the active configuration, so it has no repository")
    if not spec.repo:
        raise _Problem(
            f"no repository configured for {service}: set `repo:` (a local clone) for the "
            "service in interlock.yaml"
        )
    if _REMOTE.match(spec.repo):
        raise _Problem(
            f"the repository of {service} is a remote URL ({spec.repo}); release notes read a "
            "local clone: set `repo:` to its path on the server"
        )
    path = Path(spec.repo).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_dir():
        raise _Problem(
            f"{service}: its repository {path} does not exist on the server; set `repo:` to "
            "the path of a local clone (relative to interlock.yaml, or absolute)"
        )
    try:
        repository_root(path)
    except InterlockError as exc:
        raise _Problem(f"{service}: {exc.detail}") from None
    return path


_ORIGINS = {"release": "pinned in the release", "artifact": "registered with its artifact"}


def _resolved(path: Path, service: str, version: Version) -> Version:
    """``version`` with the full id of its commit: the one given, else a tag's."""
    if version.commit:
        try:
            return Version(version.version, resolve(path, version.commit), version.source)
        except InterlockError:
            origin = _ORIGINS.get(version.source or "", version.source)
            raise _Problem(
                f"{service}: commit {version.commit} of version {version.version} ({origin}) "
                f"is not in the repository {path}; fetch it there (git fetch) or correct the "
                "commit registered for the artifact"
            ) from None
    names = [f"v{version.version}", version.version]
    try:
        tag = find_tag(path, names)
    except InterlockError as exc:
        raise _Problem(f"{service}: {exc.detail}") from None
    if tag is None:
        raise _Problem(
            f"{service}: no commit is known for version {version.version}: register its "
            f"artifact with --commit, or tag its commit {names[0]} or {names[1]} in {path}"
        )
    return Version(version.version, tag[1], f"tag {tag[0]}")


def _range(
    config: Config, path: Path, old: Version | None, new: Version, limit: int
) -> CommitRange:
    assert new.commit is not None and (old is None or old.commit is not None)
    old_sha = old.commit if old is not None else None
    try:
        commits = commits_between(
            path, old_sha, new.commit, ticket_pattern=config.tickets.pattern, limit=limit
        )
        total = count_between(path, old_sha, new.commit) if len(commits) >= limit else len(commits)
    except InterlockError as exc:
        raise _Problem(f"{path}: {exc.detail}") from None
    url = config.tickets.url
    tickets = _unique(
        Ticket(key, url.replace("{ticket}", quote(key, safe="")) if url else None)
        for commit in commits
        for key in commit.tickets
    )
    return CommitRange(tuple(commits), total, tickets)


def _unique(tickets: Iterable[Ticket]) -> tuple[Ticket, ...]:
    seen: dict[str, Ticket] = {}
    for ticket in tickets:
        seen.setdefault(ticket.key, ticket)
    return tuple(seen.values())


def short(sha: str | None) -> str:
    """The short form of a commit id shown to people."""
    return (sha or "")[:7]

"""The services a repository holds, read from its layout (``services/*``, ``apps/*``).

What ``interlock init --discover`` scaffolds from: each directory under one of
:data:`ROOTS` that git tracks files in is a service. Its name is the directory's,
made a valid service name; how it deploys is guessed from what it holds (a Helm
chart or a Dockerfile: Kubernetes; otherwise a script); its owner is the team
CODEOWNERS gives its directory, if any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from interlock.vcs.git import repository_root, tracked_files

ROOTS = ("services", "apps")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_CODEOWNERS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS")


@dataclass(frozen=True)
class Discovered:
    """A service found in the repository."""

    name: str
    path: str  # its directory, relative to the repository's top, with '/'
    kind: str  # "k8s" (a Helm chart or a Dockerfile) or "script"
    owner: str | None  # a team from CODEOWNERS, as a name


def service_name(directory: str) -> str | None:
    """A valid service name for ``directory`` (``Billing_API`` -> ``billing_api``)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", directory.lower()).strip("-._")
    return name[:63] if name and _NAME.match(name[:63]) else None


def discover(repo: Path) -> tuple[Path, list[Discovered]]:
    """The repository's top directory and the services in it, by name."""
    top = repository_root(repo)
    files = tracked_files(top)
    owners = _codeowners(top)
    found: dict[str, Discovered] = {}
    by_dir: dict[str, set[str]] = {}
    for file in files:
        parts = file.split("/")
        if len(parts) >= 3 and parts[0] in ROOTS and not parts[1].startswith("."):
            by_dir.setdefault(f"{parts[0]}/{parts[1]}", set()).add("/".join(parts[2:]))
    for directory in sorted(by_dir):
        name = service_name(directory.split("/", 1)[1])
        if name is None or name in found:
            continue
        inside = by_dir[directory]
        helm = any(p == "Chart.yaml" or p.endswith("/Chart.yaml") for p in inside)
        docker = any(p == "Dockerfile" or p.endswith("/Dockerfile") for p in inside)
        found[name] = Discovered(
            name, directory, "k8s" if helm or docker else "script", _owner(owners, directory)
        )
    return top, list(found.values())


def _codeowners(top: Path) -> list[tuple[str, str]]:
    """(pattern, first owner) of the repository's CODEOWNERS, last match wins."""
    for name in _CODEOWNERS:
        path = top / name
        if path.is_file():
            rules = []
            for line in path.read_text(errors="replace").splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) >= 2:
                    rules.append((words[0], words[1]))
            return rules
    return []


def _owner(rules: list[tuple[str, str]], directory: str) -> str | None:
    found = None
    for pattern, owner in rules:
        clean = pattern.strip("/").removesuffix("/**").removesuffix("/*")
        if clean and (directory == clean or directory.startswith(clean + "/")):
            found = owner
    if found is None:
        return None
    team = found.lstrip("@").rsplit("/", 1)[-1]  # @org/payments -> payments
    return service_name(team)

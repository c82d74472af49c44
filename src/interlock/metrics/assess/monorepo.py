"""Which services a commit belongs to in a monorepo: the ones whose paths it touched.

A service's paths are the globs given with ``--service-path NAME=GLOB``, else
the usual layouts: ``services/<name>/``, ``apps/<name>/``, ``packages/<name>/``
and ``components/<name>/``. A commit that touched no service's path belongs to
the repository as a whole; a service no path is known for takes every commit
of its releases.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from interlock.errors import InvalidInput
from interlock.vcs import Commit

LAYOUTS = ("services", "apps", "packages", "components")
_LAYOUT = re.compile(rf"^(?:{'|'.join(LAYOUTS)})/([^/]+)/")
REPOSITORY = "(repository)"
"""The service a commit touching no service's path is counted for, once."""


@dataclass(frozen=True)
class ServicePaths:
    """The paths of each service (names compared in lower case)."""

    globs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # --service-path
    detected: frozenset[str] = frozenset()  # names seen under a usual layout

    def knows(self, service: str) -> bool:
        """True when the paths of ``service`` are known: its commits can be told apart."""
        name = service.lower()
        return name in self.globs or name in self.detected

    def touched(self, commit: Commit) -> set[str]:
        """The services (lower case) whose paths ``commit`` changed."""
        found: set[str] = set()
        for path in commit.paths:
            for name, globs in self.globs.items():
                if any(fnmatch.fnmatchcase(path, g) for g in globs):
                    found.add(name)
            match = _LAYOUT.match(path)
            if match and match.group(1).lower() not in self.globs:
                found.add(match.group(1).lower())
        return found

    def describe(self) -> str:
        """How paths were assigned, in words for the report."""
        parts = [f"{n}: {', '.join(g)}" for n, g in sorted(self.globs.items())]
        if self.detected:
            parts.append(
                "found under "
                + ", ".join(f"{d}/<name>/" for d in LAYOUTS)
                + f": {', '.join(sorted(self.detected))}"
            )
        return "; ".join(parts) or "no service paths known"


def service_paths(pairs: Iterable[str], commits: Iterable[Commit]) -> ServicePaths:
    """``--service-path`` pairs (``cart=src/cart/*``) and the layouts the commits show."""
    globs: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, glob = pair.partition("=")
        if not sep or not name.strip() or not glob.strip():
            raise InvalidInput(
                f"--service-path {pair!r}: write it as 'NAME=GLOB' (cart=src/cart/*)"
            )
        pattern = glob.strip().rstrip("/")
        pattern = pattern if any(c in pattern for c in "*?[") else f"{pattern}/*"
        globs.setdefault(name.strip().lower(), []).append(pattern)
    detected = {m.group(1).lower() for c in commits for p in c.paths if (m := _LAYOUT.match(p))}
    return ServicePaths({n: tuple(g) for n, g in globs.items()}, frozenset(detected))

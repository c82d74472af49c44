"""Releases as git records them: tags, grouped into series, with the commits each brings.

A tag name is split into a *series* and a *version*: ``v1.4.0`` is series
``""``, ``payments-v1.4.0``, ``payments/1.4.0`` and ``payments@1.4.0`` are
series ``payments``. Within a series, tags in date order each bring the
commits since the previous tag. The first tag of a series brings the commits
made within a look-back before it (or since the start of the period the user
set). Each commit carries the files it changed, so that in a monorepo it can
be counted for the services whose paths it touched (see ``monorepo``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from interlock.vcs import Commit, Tag, commits_between, repository_root, tags

_TAG = re.compile(
    r"^(?P<series>.*?)[-/@_]?[vV]?(?P<version>\d+(?:\.\d+)*(?:[-+][A-Za-z][0-9A-Za-z.+-]*)?)$"
)
_SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_PRE_RELEASE = re.compile(r"[-+.](rc|alpha|beta|pre|preview|dev|snapshot|canary)(?![a-z])", re.I)


@dataclass(frozen=True)
class TaggedRelease:
    tag: Tag
    series: str
    version: str
    commits: tuple[Commit, ...]  # since the previous tag of the series (or the look-back)
    first: bool  # the first tag of its series: its commits are those of the look-back
    previous: str | None = None  # the commit id of the previous tag of the series


@dataclass(frozen=True)
class History:
    repo: Path
    pattern: str
    releases: list[TaggedRelease]
    lookback: timedelta = timedelta(days=30)
    since: datetime | None = None  # the first tag's commits start here when the user set a period
    pre_releases: tuple[str, ...] = ()  # tags left out: v2.0.0-rc1 never went to production
    ticket_pattern: str = r"\b[A-Z][A-Z0-9]+-\d+\b"
    _ranges: dict[tuple[str, str], tuple[Commit, ...]] = field(default_factory=dict)

    def by_name(self) -> dict[str, TaggedRelease]:
        """Tagged releases by lower-case tag name."""
        return {release.tag.name.lower(): release for release in self.releases}

    def brought(self, before: TaggedRelease, after: TaggedRelease) -> tuple[Commit, ...]:
        """The commits ``after`` holds and ``before`` does not (``git log before..after``)."""
        if after.previous == before.tag.sha:
            return after.commits  # read already: consecutive tags of one series
        key = (before.tag.sha, after.tag.sha)
        if key not in self._ranges:
            self._ranges[key] = tuple(
                commits_between(
                    self.repo,
                    before.tag.sha,
                    after.tag.sha,
                    ticket_pattern=self.ticket_pattern,
                    with_paths=True,
                )
            )
        return self._ranges[key]


def split_tag(name: str) -> tuple[str, str]:
    """``"payments-v1.4.0"`` -> ``("payments", "1.4.0")``.

    A name without a version is its own series and version.
    """
    match = _TAG.match(name)
    if not match:
        return name, name
    return match.group("series"), match.group("version")


def semver(version: str | None) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of the first ``X.Y.Z`` in ``version``, if any."""
    match = _SEMVER.search(version or "")
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def read_history(
    repo: Path,
    pattern: str,
    ticket_pattern: str,
    *,
    lookback: timedelta = timedelta(days=30),
    since: datetime | None = None,
) -> History:
    """Tags matching ``pattern`` and the commits between consecutive tags of each series.

    The first tag of a series brings the commits made from ``since`` (the
    start of the period), else within ``lookback`` before it was tagged.
    """
    root = repository_root(repo)
    series: dict[str, list[Tag]] = defaultdict(list)
    skipped: list[str] = []
    for tag in tags(root, pattern):
        name, version = split_tag(tag.name)
        if _PRE_RELEASE.search(version.lstrip("0123456789.")):
            skipped.append(tag.name)
            continue
        series[name].append(tag)
    releases: list[TaggedRelease] = []
    for name, tagged in series.items():
        previous: Tag | None = None
        for tag in tagged:  # already oldest first
            start = None if previous else (since or tag.tagged_at - lookback)
            commits = tuple(
                commits_between(
                    root,
                    previous.sha if previous else None,
                    tag.sha,
                    ticket_pattern=ticket_pattern,
                    with_paths=True,
                    since=start,
                )
            )
            releases.append(
                TaggedRelease(
                    tag,
                    name,
                    split_tag(tag.name)[1],
                    commits,
                    previous is None,
                    previous.sha if previous else None,
                )
            )
            previous = tag
    releases.sort(key=lambda r: (r.tag.tagged_at, r.tag.name))
    return History(root, pattern, releases, lookback, since, tuple(skipped), ticket_pattern)


def bare_version(version: str | None) -> str:
    """``"V2.14.0 "`` -> ``"2.14.0"``: how versions are compared."""
    text = (version or "").strip().lower()
    return text[1:] if text.startswith("v") and text[1:2].isdigit() else text


def tag_candidates(service: str, version: str) -> list[str]:
    """Tag names (lower case) a release of ``service`` at ``version`` may carry."""
    bare = bare_version(version)
    prefix = service.strip().lower()
    versions = [bare]
    if re.fullmatch(r"\d+\.\d+", bare):  # "2.14" in the sheet, v2.14.0 in git
        versions.append(f"{bare}.0")
    names = []
    for version in versions:
        for sep in ("-", "/", "@", "_"):  # a service's own tag first, then a repository-wide one
            names += [f"{prefix}{sep}{version}", f"{prefix}{sep}v{version}"]
    for version in versions:
        names += [version, f"v{version}"]
    return names


def match_tag(
    index: dict[str, TaggedRelease], service: str, version: str | None
) -> TaggedRelease | None:
    """The tagged release a spreadsheet row names, by service and version."""
    if not version:
        return None
    for name in tag_candidates(service, version):
        found = index.get(name)
        if found is not None:
            return found
    return None

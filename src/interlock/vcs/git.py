"""Read a git repository by running ``git`` with argument lists.

Nothing a user typed is ever pasted into a shell string: every call is an
argument list, refs are checked before use (no leading ``-``, so a ref can never
be read as an option) and resolved to a full commit id first, and the
repository's own configuration cannot start programs for the commands used here
(``core.fsmonitor`` is switched off; ``log``, ``rev-parse`` and
``for-each-ref`` run no hooks).

All datetimes returned are timezone-aware and in UTC; git keeps seconds.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from interlock.errors import InterlockError, InvalidInput

DEFAULT_TICKET_PATTERN = r"\b[A-Z][A-Z0-9]+-\d+\b"
"""Jira-style keys (``PAY-123``); pass another pattern for other trackers."""

GIT_TIMEOUT = 120.0  # seconds; a log of a very large history still fits

_FIELD = "\x00"
_RECORD = "\x1e"
_END = "\x1f"  # after a commit's fields: the names of the files it changed follow
_ENV_OVERRIDES = {
    "LC_ALL": "C",  # messages we match on are the English ones
    "GIT_TERMINAL_PROMPT": "0",  # never wait for a password
    "GIT_PAGER": "cat",
    "GIT_OPTIONAL_LOCKS": "0",  # reading must not take the index lock
}


@dataclass(frozen=True)
class Tag:
    """A tag and the commit it points at."""

    name: str
    sha: str  # full id of the commit the tag points at (peeled)
    tagged_at: datetime  # the tagger's date; a lightweight tag has the commit's date
    committed_at: datetime  # committer date of the tagged commit
    annotated: bool
    subject: str = ""  # first line of an annotated tag's message


@dataclass(frozen=True)
class Commit:
    """One commit, with the tickets its message mentions."""

    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    authored_at: datetime
    committed_at: datetime
    subject: str
    body: str
    tickets: tuple[str, ...]
    paths: tuple[str, ...] = ()  # files it changed, when asked for (``with_paths``)

    def is_merge(self) -> bool:
        """True when the commit joins two or more lines of history."""
        return len(self.parents) > 1


def _at(seconds: str) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def _git(repo: Path | str, args: list[str]) -> str:
    """Run ``git -C repo ARGS`` and return its standard output as text.

    Raises :class:`InvalidInput` when ``repo`` is not a git repository, and
    :class:`InterlockError` when git is missing or fails for another reason.
    """
    path = Path(repo)
    if not path.is_dir():
        raise InvalidInput(f"{path} is not a directory; pass the path of a git repository")
    command = ["git", "-c", "core.fsmonitor=false", "-c", "core.quotePath=false", "-C", str(path)]
    command += args
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            env={**os.environ, **_ENV_OVERRIDES},
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise InterlockError(
            "git is not installed or not on PATH; install git to read repositories"
        ) from None
    except subprocess.TimeoutExpired:
        raise InterlockError(
            f"git {args[0]} in {path} took longer than {GIT_TIMEOUT:.0f}s; try a smaller range"
        ) from None
    stderr = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        if "not a git repository" in stderr:
            raise InvalidInput(f"{path} is not a git repository (no .git found there or above)")
        if "dubious ownership" in stderr:
            raise InvalidInput(
                f"git refuses to read {path}: it belongs to another user; run "
                f"'git config --global --add safe.directory {path}' if you trust it"
            )
        raise InterlockError(f"git {args[0]} failed in {path}: {stderr or 'no message'}")
    return done.stdout.decode("utf-8", "replace")


def repository_root(repo: Path | str) -> Path:
    """The top directory of the work tree containing ``repo``, else its git directory.

    A bare repository, or a path inside ``.git``, has no work tree: its git
    directory is returned. Raises :class:`InvalidInput` when ``repo`` is not in
    a git repository.
    """
    out = _git(repo, ["rev-parse", "--is-inside-work-tree", "--absolute-git-dir"]).split("\n")
    if out[0].strip() != "true":
        return Path(out[1].strip())
    return Path(_git(repo, ["rev-parse", "--show-toplevel"]).strip())


def tracked_files(repo: Path | str) -> list[str]:
    """The paths git tracks in ``repo`` (relative to its top directory, with '/')."""
    return [f for f in _git(repository_root(repo), ["ls-files", "-z"]).split("\0") if f]


def _check_ref(ref: str) -> None:
    if not ref or ref.startswith("-") or any(ch in ref for ch in "\x00\n\r"):
        raise InvalidInput(f"{ref!r} is not a git ref; name a tag, branch or commit id")


def resolve(repo: Path | str, ref: str) -> str:
    """The full id of the commit ``ref`` names (a tag, a branch, ``HEAD~2``, an id).

    Raises :class:`InvalidInput` when the ref does not exist or is not a commit.
    """
    _check_ref(ref)
    path = Path(repo)
    try:
        out = _git(path, ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    except InvalidInput:
        raise
    except InterlockError:
        out = ""
    sha = out.strip()
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
        repository_root(path)  # says "not a git repository" when that is the problem
        raise InvalidInput(f"unknown ref {ref!r} in {path}: no commit has that name")
    return sha


def commit_time(repo: Path | str, ref: str, *, authored: bool = False) -> datetime:
    """When the commit ``ref`` names was committed (or authored), in UTC."""
    sha = resolve(repo, ref)
    out = _git(
        repo, ["log", "-1", "--no-show-signature", f"--format={'%at' if authored else '%ct'}", sha]
    )
    return _at(out.strip())


def tags(repo: Path | str, pattern: str = "*") -> list[Tag]:
    """Tags whose name matches the glob ``pattern``, oldest first.

    ``*`` matches any text including ``/``, ``?`` one character and ``[...]`` a
    set, as in :func:`fnmatch.fnmatchcase` (case matters). Tags of trees or
    blobs are skipped. Ties in date are ordered by name.
    """
    fields = [
        "%(refname)",
        "%(objecttype)",
        "%(objectname)",
        "%(*objecttype)",
        "%(*objectname)",
        "%(creatordate:unix)",
        "%(committerdate:unix)",
        "%(*committerdate:unix)",
        "%(contents:subject)",
    ]
    out = _git(repo, ["for-each-ref", f"--format={'%00'.join(fields)}", "refs/tags"])
    found: list[Tag] = []
    for line in out.splitlines():
        parts = line.split(_FIELD)
        if len(parts) != len(fields):
            continue
        ref, kind, obj, peeled_kind, peeled, created, committed, peeled_committed, subject = parts
        name = ref.removeprefix("refs/tags/")
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        if kind == "commit":
            found.append(Tag(name, obj, _at(created), _at(committed), annotated=False))
        elif kind == "tag" and peeled_kind == "commit":
            found.append(
                Tag(name, peeled, _at(created), _at(peeled_committed), True, subject.strip())
            )
        elif kind == "tag" and peeled_kind == "tag":  # a tag of a tag: peel all the way
            sha = resolve(repo, f"refs/tags/{name}")
            found.append(
                Tag(name, sha, _at(created), commit_time(repo, sha), True, subject.strip())
            )
    found.sort(key=lambda tag: (tag.tagged_at, tag.name))
    return found


def _compile(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidInput(
            f"ticket pattern {pattern!r} is not a regular expression: {exc}"
        ) from None


def tickets(text: str, pattern: str | re.Pattern[str] = DEFAULT_TICKET_PATTERN) -> tuple[str, ...]:
    """The ticket keys ``text`` mentions, each once, in order of first mention."""
    seen: dict[str, None] = {}
    for match in _compile(pattern).finditer(text):
        seen.setdefault(match.group(0), None)
    return tuple(seen)


def commits_between(
    repo: Path | str,
    old_ref: str | None,
    new_ref: str,
    *,
    ticket_pattern: str | re.Pattern[str] = DEFAULT_TICKET_PATTERN,
    merges: bool = True,
    limit: int | None = None,
    with_paths: bool = False,
    since: datetime | None = None,
) -> list[Commit]:
    """Commits reachable from ``new_ref`` but not from ``old_ref``, oldest first.

    This is what ``git log old..new`` lists: the changes a release of
    ``new_ref`` brings over one of ``old_ref``. With ``old_ref`` None it is the
    whole history up to ``new_ref``. ``merges=False`` leaves merge commits out.
    ``limit`` keeps only the newest ``limit`` of them (still oldest first);
    :func:`count_between` says how many there are in all. ``with_paths``
    also lists the files each commit changed (none for a merge); ``since``
    keeps the commits committed at or after that moment.
    """
    compiled = _compile(ticket_pattern)
    new_sha = resolve(repo, new_ref)
    revisions = [new_sha] if old_ref is None else [f"{resolve(repo, old_ref)}..{new_sha}"]
    fields = ["%H", "%P", "%an", "%ae", "%at", "%ct", "%s", "%b"]
    args = [
        "log",
        "--no-show-signature",
        "--no-color",
        "--encoding=UTF-8",
        "--topo-order",
        "--reverse",
        f"--format=%x1e{'%x00'.join(fields)}%x1f",
    ]
    if with_paths:
        args += ["--name-only", "--no-renames"]
    if since is not None:
        args.append(f"--since={since.astimezone(UTC).isoformat()}")
    if not merges:
        args.append("--no-merges")
    if limit is not None:
        args.append(f"--max-count={max(0, int(limit))}")  # applied before --reverse
    out = _git(repo, [*args, *revisions, "--"])
    commits: list[Commit] = []
    for record in out.split(_RECORD):
        record, _, names = record.partition(_END)
        parts = record.split(_FIELD)
        if len(parts) != len(fields):
            continue
        sha, parents, name, email, authored, committed, subject, body = parts
        body = body.strip("\n")
        commits.append(
            Commit(
                sha=sha,
                parents=tuple(parents.split()),
                author_name=name,
                author_email=email,
                authored_at=_at(authored),
                committed_at=_at(committed),
                subject=subject,
                body=body,
                tickets=tickets(f"{subject}\n{body}", compiled),
                paths=tuple(line for line in names.split("\n") if line.strip()),
            )
        )
    return commits


def count_between(
    repo: Path | str, old_ref: str | None, new_ref: str, *, merges: bool = True
) -> int:
    """How many commits :func:`commits_between` would list without a limit."""
    new_sha = resolve(repo, new_ref)
    revisions = [new_sha] if old_ref is None else [f"{resolve(repo, old_ref)}..{new_sha}"]
    args = ["rev-list", "--count"]
    if not merges:
        args.append("--no-merges")
    return int(_git(repo, [*args, *revisions, "--"]).strip() or 0)


def find_tag(repo: Path | str, names: Sequence[str]) -> tuple[str, str] | None:
    """The first of the tag ``names`` that exists, and the commit it points at; else None.

    Raises :class:`InvalidInput` when ``repo`` is not a git repository.
    """
    repository_root(repo)
    for name in names:
        if not name or name.startswith("-") or any(ch in name for ch in "\x00\n\r"):
            continue
        try:
            return name, resolve(repo, f"refs/tags/{name}")
        except InvalidInput:
            continue
    return None

"""Reading version control history: tags, commits and the tickets they mention.

Only git for now, read by running the ``git`` binary with argument lists. The
assessment uses it to find releases and their commits; release notes and
environment diffs use it to list the commits between two deployed versions.
"""

from __future__ import annotations

from interlock.vcs.git import (
    DEFAULT_TICKET_PATTERN,
    Commit,
    Tag,
    commit_time,
    commits_between,
    count_between,
    find_tag,
    repository_root,
    resolve,
    tags,
    tickets,
)

__all__ = [
    "DEFAULT_TICKET_PATTERN",
    "Commit",
    "Tag",
    "commit_time",
    "commits_between",
    "count_between",
    "find_tag",
    "repository_root",
    "resolve",
    "tags",
    "tickets",
]

"""The names people give the columns of release sheets and incident logs, per field.

A header is matched first by these usual names (see ``tables.find_columns``),
then by the keywords, and a time zone in brackets (``Deployed At (UTC)``) says
how that column's dates without a zone are read.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

RELEASE_FIELDS: dict[str, tuple[str, ...]] = {
    "date": (
        "deployed",
        "deployed at",
        "deploy date",
        "deployment date",
        "release date",
        "released",
        "released at",
        "production date",
        "actual date",
        "actual",
        "when",
        "released on",
        "deployed on",
        "went live",
        "live",
        "go live",
        "production",
        "timestamp",
    ),
    "service": (
        "services",
        "service s",
        "service name",
        "app",
        "apps",
        "application",
        "applications",
        "component",
        "components",
        "system",
        "systems",
        "project",
        "module",
        "modules",
    ),
    "version": ("tag", "release", "build", "release version"),
    "run_by": (
        "run by",
        "ran by",
        "who",
        "released by",
        "deployed by",
        "release manager",
        "release captain",
        "captain",
        "release owner",
        "driver",
        "operator",
        "owner",
        "by",
    ),
    "approver": (
        "approved by",
        "approval",
        "approvers",
        "sign off",
        "signoff",
        "signed off by",
        "sign off by",
    ),
    "planned_date": (
        "planned",
        "planned at",
        "planned for",
        "scheduled",
        "scheduled date",
        "scheduled for",
        "target",
        "target date",
    ),
    "notes": ("note", "comment", "comments", "remarks", "description", "details"),
    "outcome": ("status", "result"),
    "time": ("time of day", "deploy time", "release time", "deployed time", "start time"),
    "labels": ("label", "type", "kind", "category", "release type", "change type"),
}

RELEASE_KEYWORDS: dict[str, tuple[str, ...]] = {
    # for headers no usual name matched, in this order: "Planned date" is a plan, not a date
    "planned_date": ("plan", "schedul", "target"),
    "approver": ("approv", "sign"),
    "run_by": ("captain", "manager", "owner", "driver", "operator", "releaser", "deployer"),
    "notes": ("note", "comment", "remark", "descr", "detail"),
    "outcome": ("outcome", "status", "result"),
    "version": ("version", "tag", "build"),
    "service": ("service", "component", "app", "system", "module", "project"),
    "date": ("date", "deployed", "released", "live", "time", "when"),
}

FIELD_WORDS: dict[str, str] = {
    **{name: name for name in RELEASE_FIELDS},
    "who": "run_by",
    "ran_by": "run_by",
    "released_by": "run_by",
    "planned": "planned_date",
    "approved_by": "approver",
    "status": "outcome",
}

INCIDENT_FIELDS: dict[str, tuple[str, ...]] = {
    "opened": (
        "opened at",
        "opened on",
        "open",
        "start",
        "started",
        "start time",
        "began",
        "detected",
        "created",
        "created at",
        "reported",
        "triggered",
    ),
    "resolved": (
        "resolved at",
        "resolved on",
        "end",
        "ended",
        "end time",
        "closed",
        "closed at",
        "restored",
        "fixed",
        "mitigated",
        "recovered",
    ),
    "service": RELEASE_FIELDS["service"],
    "version": ("caused by", "cause version", "release", "tag"),
    "id": ("incident", "incident id", "key", "number", "ticket", "reference"),
    "summary": ("title", "description", "notes", "what happened", "cause"),
}

INCIDENT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "resolved": ("resolv", "close", "restor", "mitigat", "recover", "end"),
    "opened": ("open", "start", "detect", "creat", "report", "trigger", "began"),
    "version": ("version", "cause"),
    "service": RELEASE_KEYWORDS["service"],
}


# An offset in a header's brackets: UTC+1, GMT-05:00, +0530.
_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)
# A zone abbreviation (CET, CEST, EST, PDT, AEST): a name for several zones, or one that
# ignores summer time (tzdata's EST), so it is not guessed.
_ABBREVIATION = re.compile(r"[A-Z]{1,4}T|MSK")


def column_zone(header: str) -> tzinfo | None:
    """The time zone a header names in brackets: ``Deployed At (UTC)``, ``Date [Europe/Berlin]``,
    ``Opened (UTC+01:00)``. Raises ``ValueError`` naming a zone abbreviation (``(CET)``)."""
    for note in re.findall(r"[(\[]\s*([^)\]]+?)\s*[)\]]", header):
        if note.upper() in ("UTC", "GMT", "Z"):
            return UTC
        offset = _OFFSET.fullmatch(note)
        if offset and int(offset[2]) <= 14 and int(offset[3] or 0) < 60:
            sign = -1 if offset[1] == "-" else 1
            return timezone(sign * timedelta(hours=int(offset[2]), minutes=int(offset[3] or 0)))
        if _ABBREVIATION.fullmatch(note):
            raise ValueError(
                f"the column {header!r} names the time zone {note}, which is not guessed (an "
                "abbreviation stands for several zones, or ignores summer time): write a zone "
                "name (Europe/Berlin) or an offset (UTC+01:00) in the header, or give --timezone"
            )
        if "/" in note:
            try:
                return ZoneInfo(note)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return None

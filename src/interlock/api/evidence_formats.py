"""The evidence document (``GET /api/v1/audit/evidence``) as JSON, CSV and HTML.

JSON is the document itself. CSV has one row per change, every list joined
with ``; ``, and the chain head and checkpoint on each row, so a row taken
out of the file still says what it was verified against. HTML is one
self-contained page (inline style, no script, no external resource) that
prints well.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import datetime
from html import escape
from typing import Any

from interlock.engine.evidence import Change, Evidence

COLUMNS = (
    ("started_at", "Started"),
    ("finished_at", "Finished"),
    ("deployment", "Deployment"),
    ("release", "Release"),
    ("kind", "Kind"),
    ("environment", "Environment"),
    ("reason", "Reason"),
    ("tickets", "Tickets"),
    ("author", "Author"),
    ("artifacts", "Artifacts (version, digest, commit)"),
    ("gates", "Gates and checks"),
    ("approvals", "Approvals"),
    ("outcome", "Outcome"),
    ("rolled_back", "Rolled back"),
    ("overrides", "Break-glass overrides and review"),
    ("findings", "Findings"),
    ("events", "Audit events (seq:hash)"),
)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def document(evidence: Evidence) -> dict[str, Any]:
    """The evidence as JSON-ready data."""
    chain = evidence.chain
    published = evidence.published
    return {
        "environments": list(evidence.environments),
        "since": _time(evidence.since),
        "until": _time(evidence.until),
        "generated_at": _time(evidence.generated_at),
        "generated_by": evidence.generated_by,
        "chain": {
            "verified": chain.ok,
            "count": chain.count,
            "head": str(chain.head) if chain.head else None,
            "checkpoint": (
                {
                    "checkpoint": str(published.checkpoint),
                    "at": _time(published.at),
                    "instance": published.instance,
                    "file": str(published.path),
                    "line": published.line,
                }
                if published
                else None
            ),
            "problems": chain.problems[:20],
        },
        "findings": evidence.findings,
        "changes": [_change(c) for c in evidence.changes],
    }


def _change(change: Change) -> dict[str, Any]:
    data = asdict(change)
    for key in ("started_at", "finished_at"):
        data[key] = _time(data[key])
    for gate in data["gates"]:
        gate["at"] = _time(gate["at"])
    for approval in data["approvals"]:
        approval["at"] = _time(approval["at"])
    for override in data["overrides"]:
        override["at"] = _time(override["at"])
        override["reviewed_at"] = _time(override["reviewed_at"])
    return data


def _cells(change: dict[str, Any]) -> dict[str, str]:
    """One change as text cells, lists joined with ``; ``."""
    author = change["author"] or ""
    if change["on_behalf_of"]:
        author += f" (for {change['on_behalf_of']})"
    return {
        "started_at": change["started_at"] or "",
        "finished_at": change["finished_at"] or "",
        "deployment": str(change["deployment"]),
        "release": str(change["release"] or ""),
        "kind": change["kind"],
        "environment": change["environment"],
        "reason": change["reason"] or "",
        "tickets": "; ".join(change["tickets"]),
        "author": author,
        "artifacts": "; ".join(
            f"{a['service']} {a['version']} {a['digest'] or 'no digest'} "
            f"{a['commit'] or 'no commit'}"
            for a in change["artifacts"]
        ),
        "gates": "; ".join(f"{g['key']} ({g['kind']}): {g['state']}" for g in change["gates"]),
        "approvals": "; ".join(
            f"{a['decision']} by {a['by']} at {a['at']}"
            + (f" ({a['comment']})" if a["comment"] else "")
            for a in change["approvals"]
        ),
        "outcome": change["outcome"] + (f": {change['error']}" if change["error"] else ""),
        "rolled_back": "; ".join(change["rolled_back"]),
        "overrides": "; ".join(
            f"override {o['id']} by {o['by']} at {o['at']}: {o['reason']}; "
            + (
                f"reviewed by {o['reviewed_by']} at {o['reviewed_at']}: {o['review']}"
                if o["reviewed_by"]
                else "NOT REVIEWED"
            )
            for o in change["overrides"]
        ),
        "findings": "; ".join(change["findings"]),
        "events": " ".join(f"{e['seq']}:{e['hash']}" for e in change["events"]),
    }


def as_csv(doc: dict[str, Any]) -> str:
    """One row per change, with the chain head and checkpoint it was verified against."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([key for key, _ in COLUMNS] + ["chain_verified", "chain_head", "checkpoint"])
    chain = doc["chain"]
    checkpoint = chain["checkpoint"]["checkpoint"] if chain["checkpoint"] else ""
    for change in doc["changes"]:
        cells = _cells(change)
        writer.writerow(
            [_spreadsheet_safe(cells[key]) for key, _ in COLUMNS]
            + [str(chain["verified"]).lower(), chain["head"] or "", checkpoint]
        )
    return out.getvalue()


def _spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (a reason may start with ``=``)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}
h1{font-size:1.4em}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #bbb;padding:4px 6px;vertical-align:top;text-align:left}
th{background:#eee}td.events{font:11px monospace;word-break:break-all}
.bad{color:#a00;font-weight:bold}.ok{color:#060;font-weight:bold}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}
@media print{body{margin:0}}
"""


def as_html(doc: dict[str, Any]) -> str:
    """One self-contained page: the period, the chain's verification, one row per change."""
    chain = doc["chain"]
    checkpoint = chain["checkpoint"]
    verified = (
        '<span class="ok">verified</span>'
        if chain["verified"]
        else '<span class="bad">BROKEN: '
        + escape("; ".join(p["message"] for p in chain["problems"][:5]))
        + "</span>"
    )
    against = (
        escape(
            f"{checkpoint['checkpoint']} (published {checkpoint['at']} by "
            f"{checkpoint['instance']}, {checkpoint['file']}:{checkpoint['line']})"
        )
        if checkpoint
        else '<span class="bad">no published checkpoint</span>'
    )
    facts = [
        ("Environments", escape(", ".join(doc["environments"]))),
        ("Period", escape(f"{doc['since']} to {doc['until']} (end excluded)")),
        ("Changes", str(len(doc["changes"]))),
        (
            "Findings",
            f'<span class="{"bad" if doc["findings"] else "ok"}">{doc["findings"]}</span>',
        ),
        ("Audit chain", f"{verified}, {chain['count']} events, head {escape(chain['head'] or '')}"),
        ("Checked against", against),
        ("Generated", escape(f"{doc['generated_at']} by {doc['generated_by']}")),
    ]
    rows = []
    for change in doc["changes"]:
        cells = _cells(change)
        tds = []
        for key, _ in COLUMNS:
            text = escape(cells[key]).replace("; ", "<br>")
            css = ' class="events"' if key == "events" else ""
            if key == "findings" and cells[key]:
                css = ' class="bad"'
            tds.append(f"<td{css}>{text}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    head = "".join(f"<th>{escape(title)}</th>" for _, title in COLUMNS)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Interlock change evidence</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Change evidence</h1><dl>"
        + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
        + f"</dl><table><thead><tr>{head}</tr></thead><tbody>"
        + ("".join(rows) or f'<tr><td colspan="{len(COLUMNS)}">no changes</td></tr>')
        + "</tbody></table></body></html>\n"
    )

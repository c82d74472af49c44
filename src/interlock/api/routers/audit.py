"""The audit trail: list, verify, checkpoint (read and publish), evidence, export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from interlock.api import evidence_formats
from interlock.api.deps import AppDep, PrincipalDep
from interlock.api.paging import limit_query, page_of
from interlock.api.problems import PROBLEM
from interlock.api.schemas import AuditEventOut, CheckpointOut, Page, PublishedOut, VerifyOut
from interlock.api.text import Line
from interlock.audit.chain import Checkpoint
from interlock.audit.published import Published
from interlock.domain.bounds import RecordId, SequenceNumber
from interlock.engine import views
from interlock.engine.checkpoints import latest_published, publish
from interlock.engine.evidence import gather
from interlock.engine.metrics import measured_environments, parse_instant
from interlock.errors import InvalidInput

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=Page[AuditEventOut])
def list_(
    app: AppDep,
    who: PrincipalDep,
    after: Annotated[
        SequenceNumber | None, Query(description="Events after this sequence.")
    ] = None,
    cursor: Annotated[
        RecordId | None,
        Query(description="The `next_cursor` of the page before, asked in the same order."),
    ] = None,
    object_type: Line | None = None,
    object_id: Line | None = None,
    actor: Line | None = None,
    action: Annotated[list[Line] | None, Query()] = None,
    newest_first: bool = False,
    limit: int = limit_query(100, 1000),
) -> Page[AuditEventOut]:
    """Events in sequence order (or newest first), filtered; follow `next_cursor` for more."""
    app.access.require(who, "audit.read")

    def fetch(past: int | None, n: int) -> list[Any]:
        found: list[Any] = views.audit_events(
            app.engine,
            after=max(after or 0, past) if past is not None and not newest_first else after,
            before=past if newest_first else None,
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            actions=action,
            limit=n,
            newest_first=newest_first,
        )
        return found

    return page_of(fetch, key=lambda e: e.seq, cursor=cursor, limit=limit, out=AuditEventOut.of)


def _checkpoint(c: Checkpoint | None) -> CheckpointOut | None:
    return CheckpointOut(seq=c.seq, hash=c.hash, count=c.seq, checkpoint=str(c)) if c else None


def _published(found: Published) -> PublishedOut:
    return PublishedOut(
        seq=found.seq,
        hash=found.hash,
        checkpoint=str(found.checkpoint),
        at=found.at,
        instance=found.instance,
        file=str(found.path),
        line=found.line,
    )


_UNPROCESSABLE: dict[int | str, dict[str, Any]] = {
    "422": {"description": "A malformed parameter.", "content": {PROBLEM: {}}},
}
_PUBLISH_REFUSED: dict[int | str, dict[str, Any]] = {
    "409": {
        "description": "No checkpoint file is configured, the log is empty, or the chain no "
        "longer holds the last published checkpoint.",
        "content": {PROBLEM: {}},
    },
    "503": {"description": "The checkpoint file cannot be written.", "content": {PROBLEM: {}}},
}


@router.get("/audit/verify", response_model=VerifyOut, responses=_UNPROCESSABLE)
def verify(
    app: AppDep,
    who: PrincipalDep,
    checkpoint: Annotated[list[Line] | None, Query(description="SEQ:HASH kept outside")] = None,
    published: bool = Query(
        default=True,
        description="Also check against the newest checkpoint this server published "
        "(--audit-checkpoints); `false` checks the chain alone.",
    ),
) -> VerifyOut:
    """Walk the whole hash chain; report the first event where it breaks."""
    app.access.require(who, "audit.read")
    try:
        kept = [Checkpoint.parse(c) for c in checkpoint or []]
    except ValueError as exc:
        raise InvalidInput(str(exc), field="checkpoint") from None
    latest = None
    unreadable: list[dict[str, Any]] = []
    if published:
        try:
            latest = latest_published(app.engine)
        except InvalidInput as exc:  # the file outside was changed: that is a finding
            unreadable.append({"seq": 0, "kind": "checkpoint-file", "message": exc.detail})
    if latest is not None:
        kept.append(latest.checkpoint)
    result = views.audit_verify(app.engine, kept)
    problems = unreadable + result.problems
    return VerifyOut(
        ok=not problems,
        count=result.count,
        head=_checkpoint(result.head),
        problems=problems,
        published=_published(latest) if latest else None,
    )


@router.post(
    "/audit/checkpoint", response_model=PublishedOut, status_code=201, responses=_PUBLISH_REFUSED
)
def publish_checkpoint(app: AppDep, who: PrincipalDep) -> PublishedOut:
    """Publish the head now: append it to the server's checkpoint file (--audit-checkpoints).

    Refused (409) when no file is configured or the chain no longer holds the
    last published checkpoint; 503 when the file cannot be written.
    """
    app.access.require(who, "audit.read")
    return _published(publish(app.engine, actor=who.name))


@router.get("/audit/checkpoint", response_model=CheckpointOut)
def checkpoint(app: AppDep, who: PrincipalDep) -> CheckpointOut:
    """The head of the chain (sequence and hash), to keep outside the database."""
    app.access.require(who, "audit.read")
    head = views.audit_checkpoint(app.engine)
    return _checkpoint(head) or CheckpointOut(
        seq=0, hash="0" * 64, count=0, checkpoint="0:" + "0" * 64
    )


def _instant(value: str, now: datetime, *, end: bool, what: str) -> datetime:
    try:
        return parse_instant(value, now=now, end=end, what=what)
    except OverflowError:  # "99999999999d" ago is before the year 1
        raise InvalidInput(f"--{what} {value!r} is out of range", field=what) from None


@router.get(
    "/audit/evidence",
    responses={
        200: {
            "description": "Every change in the period: JSON, CSV or a self-contained HTML page.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {},
                "text/html": {},
            },
        },
        "422": {"description": "A bad date or environment.", "content": {PROBLEM: {}}},
    },
)
def evidence(
    app: AppDep,
    who: PrincipalDep,
    since: Annotated[
        str, Query(description="Start: 2024-05-01, an ISO time, or how long ago (90d).")
    ] = "90d",
    until: Annotated[
        str, Query(description="End (exclusive; a bare date includes that day), or now.")
    ] = "now",
    env: Annotated[
        str | None, Query(description="The environment (default: the production ones).")
    ] = None,
    format: Annotated[Literal["json", "csv", "html"], Query()] = "json",
) -> Response:
    """Evidence for auditors: every change with its reason, artifacts, gates, approvers,
    outcome and overrides, each citing its audit events; verified against the chain."""
    app.access.require(who, "audit.read")
    now = app.engine.clock.now()
    config = app.configs.active().config
    environments, _ = measured_environments(config, env)
    try:
        latest = latest_published(app.engine)
    except InvalidInput:
        latest = None  # the chain is then checked alone; `audit verify` names the file's problem
    found = gather(
        app.engine,
        environments=environments,
        since=_instant(since, now, end=False, what="since"),
        until=_instant(until, now, end=True, what="until"),
        actor=who.name,
        published=latest,
    )
    doc = evidence_formats.document(found)
    headers = {  # the summary the CLI prints, whatever the format
        "X-Interlock-Chain-Verified": str(found.chain.ok).lower(),
        "X-Interlock-Changes": str(len(found.changes)),
        "X-Interlock-Findings": str(found.findings),
    }
    if format == "csv":
        text = evidence_formats.as_csv(doc)
        return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
    if format == "html":
        text = evidence_formats.as_html(doc)
        return Response(text, media_type="text/html; charset=utf-8", headers=headers)
    return JSONResponse(doc, headers=headers)


@router.get(
    "/audit/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "JSON lines."}},
)
def export(app: AppDep, who: PrincipalDep) -> StreamingResponse:
    """Every event as JSON lines, with its hashes: verifiable offline (`audit verify --file`)."""
    app.access.require(who, "audit.read")

    def lines() -> Iterator[bytes]:
        after = 0
        while True:
            batch = views.audit_events(app.engine, after=after, limit=1000)
            if not batch:
                return
            for event in batch:
                yield (
                    json.dumps(
                        {
                            "seq": event.seq,
                            "at": event.at.isoformat(),
                            "ts": event.at.timestamp(),
                            "actor": event.actor,
                            "action": event.action,
                            "object_type": event.object_type,
                            "object_id": event.object_id,
                            "body": event.body,
                            "prev_hash": event.prev_hash,
                            "hash": event.hash,
                        }
                    )
                    + "\n"
                ).encode()
            after = batch[-1].seq

    return StreamingResponse(lines(), media_type="application/x-ndjson")

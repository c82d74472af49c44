"""The audit trail: list, verify, checkpoint, export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from interlock.api.deps import AppDep, PrincipalDep
from interlock.api.schemas import AuditEventOut, CheckpointOut, Page, VerifyOut
from interlock.audit.chain import Checkpoint
from interlock.engine import views
from interlock.errors import InvalidInput

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=Page[AuditEventOut])
def list_(
    app: AppDep,
    who: PrincipalDep,
    after: int | None = Query(
        default=None, ge=0, le=2**62, description="Events after this sequence."
    ),
    cursor: int | None = Query(
        default=None,
        ge=1,
        le=2**62,
        description="The `next_cursor` of the page before, asked in the same order.",
    ),
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    action: Annotated[list[str] | None, Query()] = None,
    newest_first: bool = False,
    limit: int = Query(default=100, ge=1, le=1000),
) -> Page[AuditEventOut]:
    """Events in sequence order (or newest first), filtered; follow `next_cursor` for more."""
    app.access.require(who, "audit.read")
    before = None
    if cursor is not None and newest_first:
        before = cursor
    elif cursor is not None:
        after = max(after or 0, cursor)
    found = views.audit_events(
        app.engine,
        after=after,
        before=before,
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        actions=action,
        limit=limit + 1,
        newest_first=newest_first,
    )
    page = found[:limit]
    more = len(found) > limit
    return Page(
        items=[AuditEventOut.of(e) for e in page],
        next_cursor=page[-1].seq if more and page else None,
    )


def _checkpoint(c: Checkpoint | None) -> CheckpointOut | None:
    return CheckpointOut(seq=c.seq, hash=c.hash, count=c.seq, checkpoint=str(c)) if c else None


@router.get("/audit/verify", response_model=VerifyOut)
def verify(
    app: AppDep,
    who: PrincipalDep,
    checkpoint: Annotated[list[str] | None, Query(description="SEQ:HASH kept outside")] = None,
) -> VerifyOut:
    """Walk the whole hash chain; report the first event where it breaks."""
    app.access.require(who, "audit.read")
    try:
        kept = [Checkpoint.parse(c) for c in checkpoint or []]
    except ValueError as exc:
        raise InvalidInput(str(exc), field="checkpoint") from None
    result = views.audit_verify(app.engine, kept)
    return VerifyOut(
        ok=result.ok, count=result.count, head=_checkpoint(result.head), problems=result.problems
    )


@router.get("/audit/checkpoint", response_model=CheckpointOut)
def checkpoint(app: AppDep, who: PrincipalDep) -> CheckpointOut:
    """The head of the chain (sequence and hash), to keep outside the database."""
    app.access.require(who, "audit.read")
    head = views.audit_checkpoint(app.engine)
    return _checkpoint(head) or CheckpointOut(
        seq=0, hash="0" * 64, count=0, checkpoint="0:" + "0" * 64
    )


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

"""``/changes``: one long-poll that says when anything changed (what the web UI follows)."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Query

from interlock.api.changes import ChangeWatch
from interlock.api.deps import AppDep, AppState, PrincipalDep
from interlock.domain.bounds import MAX_ID

router = APIRouter(tags=["events"])
_lock = threading.Lock()


def watch_of(app: AppState) -> ChangeWatch:
    """The application's one watch, made on first use and hooked to its commits."""
    with _lock:
        found: ChangeWatch | None = getattr(app, "change_watch", None)
        if found is None:

            def head() -> int:
                with app.engine.db.read() as tx:
                    checkpoint = tx.audit_head()
                return checkpoint.seq if checkpoint is not None else 0

            found = ChangeWatch(head)
            found.detach = app.engine.db.on_release_change(found.changed)
            app.change_watch = found  # type: ignore[attr-defined]
    return found


@router.get("/changes")
async def changes(
    app: AppDep,
    who: PrincipalDep,
    since: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="The `seq` of the answer before.")
    ] = None,
    wait: Annotated[float, Query(ge=0, le=60, description="Long-poll at most this long.")] = 0,
) -> dict[str, int]:
    """A number that grows with every change: ask again with it as `since`.

    Answers at once without `since`; else once something changed after it, or after
    `wait` seconds with the same number. What changed, and whether you may see it, is
    for the calls that follow: this says only that asking again is worth it.
    """
    del who  # any signed-in caller: the number says no more than that something changed
    return {"seq": await watch_of(app).wait(since, wait)}

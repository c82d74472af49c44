"""Releases and their items."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Unpack

from sqlalchemy import bindparam, func, literal_column, select, update

from interlock.domain.plan import ReleasePlan
from interlock.domain.records import Deployment, Item, Release
from interlock.domain.states import ReleaseState
from interlock.storage.base import Prepared, QueryBase, found, prepared_update, update_params
from interlock.storage.changes import ReleaseChanges
from interlock.storage.schema import release_items, release_plans, releases
from interlock.storage.types import Timestamp

# A release with its plan (a row of its own: see ``release_plans``; a release that
# somehow has none is still found, with an empty plan).
_WITH_PLAN = select(releases, release_plans.c.plan).outerjoin(
    release_plans, release_plans.c.release_id == releases.c.id
)
_GET = {
    True: _WITH_PLAN.where(releases.c.id == bindparam("id")),
    False: select(releases).where(releases.c.id == bindparam("id")),
}
_GET_LOCKED = {k: v.with_for_update(of=releases) for k, v in _GET.items()}
_ITEMS_OF_ONE = (
    select(release_items)
    .where(release_items.c.release_id == bindparam("id"))
    .order_by(release_items.c.position)
)
_REVISIONS = select(releases.c.id, releases.c.revision).where(
    releases.c.id.in_(bindparam("ids", expanding=True))
)
_TOUCH = (
    update(releases)
    .where(releases.c.id == bindparam("w_id"))
    .values(
        updated_at=bindparam("b_now", type_=Timestamp()),
        revision=releases.c.revision + 1,
    )
)


def _release(row: Any, items: Iterable[Item]) -> Release:
    return _release_from(dict(row._mapping), items)


def _release_from(data: dict[str, Any], items: Iterable[Item]) -> Release:
    data["state"] = ReleaseState(data["state"])
    data["route"] = tuple(data["route"])
    data["plan"] = data.get("plan") or {}
    return Release(**data, items=tuple(items))


# Read whenever a deployment starts or ends (see base.Prepared).
_GET_RUN = {k: Prepared(v) for k, v in _GET.items()}
_GET_LOCKED_RUN = {k: Prepared(v) for k, v in _GET_LOCKED.items()}
_ITEMS_OF_ONE_RUN = Prepared(_ITEMS_OF_ONE)
_TOUCH_RUN = Prepared(_TOUCH)  # once per release and commit (see base.Prepared)
# The same for any number of releases in one statement, on SQLite: their ids as one
# JSON array (``id IN (SELECT value FROM json_each(...))``, each looked up by its key).
_TOUCH_MANY = Prepared(
    update(releases)
    .where(
        releases.c.id.in_(
            select(literal_column("value")).select_from(func.json_each(bindparam("w_ids")))
        )
    )
    .values(
        updated_at=bindparam("b_now", type_=Timestamp()),
        revision=releases.c.revision + 1,
    )
)


class ReleaseQueries(QueryBase):
    def insert_release(
        self,
        *,
        reason: str,
        created_by: str,
        at: datetime,
        state: ReleaseState,
        config_version: int,
        plan: ReleasePlan,
        items: Sequence[Item],
        scheduled_at: datetime | None = None,
        on_behalf_of: str | None = None,
        kind: str = "deploy",
    ) -> int:
        """Store a new release and its items; return its id."""
        release_id = self.conn.execute(
            releases.insert()
            .values(
                reason=reason,
                created_by=created_by,
                on_behalf_of=on_behalf_of,
                kind=kind,
                created_at=at,
                state=state.value,
                updated_at=at,
                scheduled_at=scheduled_at,
                config_version=config_version,
                revision=0,
                route=[e.name for e in plan.environments],
            )
            .returning(releases.c.id)
        ).scalar_one()
        self.conn.execute(release_plans.insert().values(release_id=release_id, plan=plan.to_json()))
        self.conn.execute(
            release_items.insert(),
            [
                {
                    "release_id": release_id,
                    "position": i,
                    "service": item.service,
                    "version": item.version,
                    "digest": item.digest,
                    "commit_sha": item.commit,
                }
                for i, item in enumerate(items)
            ],
        )
        return int(release_id)

    def _items(self, release_ids: Sequence[int]) -> dict[int, list[Item]]:
        found: dict[int, list[Item]] = defaultdict(list)
        if not release_ids:
            return found
        rows = self.conn.execute(
            select(release_items)
            .where(release_items.c.release_id.in_(release_ids))
            .order_by(release_items.c.release_id, release_items.c.position)
        )
        for row in rows:
            found[row.release_id].append(Item(row.service, row.version, row.digest, row.commit_sha))
        return found

    def get_release(
        self, release_id: int, *, lock: bool = False, plan: bool = True
    ) -> Release | None:
        """One release with its items; ``plan=False`` leaves its (large) plan out as ``{}``."""
        query = (_GET_LOCKED_RUN if lock and self.for_update() else _GET_RUN)[plan]
        row = query.run(self.conn, {"id": release_id}).first()
        if row is None:
            return None
        found = _ITEMS_OF_ONE_RUN.run(self.conn, {"id": release_id})
        at = {name: found.keys.index(name) for name in ("service", "version", "digest")}
        sha = found.keys.index("commit_sha")
        items = [
            Item(r[at["service"]], r[at["version"]], r[at["digest"]], r[sha]) for r in found.rows
        ]
        return _release_from(row, items)

    def require_release(self, release_id: int, *, lock: bool = False, plan: bool = True) -> Release:
        """:meth:`get_release` of a release assumed to exist; :class:`NotFound` if it does not."""
        return found(self.get_release(release_id, lock=lock, plan=plan), f"release {release_id}")

    def require_release_of(
        self, deployment: Deployment, *, lock: bool = False, plan: bool = True
    ) -> Release:
        """The release ``deployment`` belongs to; :class:`NotFound` for a runbook run (none)."""
        if deployment.release_id is None:
            return found(None, f"release of deployment {deployment.id} (it is a runbook run)")
        return self.require_release(deployment.release_id, lock=lock, plan=plan)

    def list_releases(
        self,
        *,
        states: Sequence[str] | None = None,
        service: str | None = None,
        created_by: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
        services_in: Sequence[str] | None = None,
    ) -> list[Release]:
        """Newest first, without their plans; ``before_id`` is the cursor of the next page.

        ``services_in`` keeps only releases touching one of those services.
        """
        query = select(releases).order_by(releases.c.id.desc()).limit(limit)
        if states:
            query = query.where(releases.c.state.in_(list(states)))
        if created_by:
            query = query.where(releases.c.created_by == created_by)
        if before_id is not None:
            query = query.where(releases.c.id < before_id)
        if service:
            query = query.where(
                releases.c.id.in_(
                    select(release_items.c.release_id).where(release_items.c.service == service)
                )
            )
        if services_in is not None:
            query = query.where(
                releases.c.id.in_(
                    select(release_items.c.release_id).where(
                        release_items.c.service.in_(list(services_in))
                    )
                )
            )
        rows = list(self.conn.execute(query))
        items = self._items([r.id for r in rows])
        return [_release(r, items.get(r.id, [])) for r in rows]

    def update_release(
        self,
        release_id: int,
        expected: ReleaseState,
        at: datetime,
        **values: Unpack[ReleaseChanges],
    ) -> bool:
        """Change a release only if it is still in ``expected``; bump its revision."""
        if isinstance(state := values.get("state"), ReleaseState):
            values["state"] = state.value
        guard = {"id": release_id, "state": expected.value}
        result = prepared_update(releases, guard, values).run(
            self.conn, update_params(values, guard)
        )
        if result.rowcount:
            self.touch_release(release_id, at)
        return bool(result.rowcount)

    def touch_release(self, release_id: int, at: datetime) -> None:
        """Mark that something in the release changed; the revision moves once per commit."""
        self._touched.add(release_id)

    def flush_touched(self, at: datetime) -> None:
        touched = sorted(self._touched)
        if len(touched) > 1 and not self.for_update():
            # SQLite (one writer, no row locks to order): one statement for all of them,
            # as when a step of one release ends and the same commit claims another's,
            # or a group commit records the steps of several.
            _TOUCH_MANY.run(self.conn, {"w_ids": json.dumps(touched), "b_now": at})
            touched = []
        for release_id in touched:  # (PostgreSQL: with the facts' lock or the audit chain)
            self.send_later(_TOUCH_RUN, {"w_id": release_id, "b_now": at})
        self.changed_releases = frozenset(self._touched)
        self._touched = set()

    def release_revisions(self, release_ids: Iterable[int]) -> dict[int, int]:
        """The revision of each of these releases that exists."""
        ids = sorted(set(release_ids))
        found: dict[int, int] = {}
        for start in range(0, len(ids), 500):
            rows = self.conn.execute(_REVISIONS, {"ids": ids[start : start + 500]})
            found.update((int(r.id), int(r.revision)) for r in rows)
        return found

    def due_scheduled_releases(self, now: datetime, limit: int = 100) -> list[int]:
        rows = self.conn.execute(
            select(releases.c.id)
            .where(
                releases.c.state == ReleaseState.SCHEDULED.value,
                releases.c.scheduled_at <= now,
            )
            .order_by(releases.c.scheduled_at)
            .limit(limit)
        )
        return [int(r.id) for r in rows]

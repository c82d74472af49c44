"""The inventory: one row per (service, environment), replaced by an upsert."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from interlock.domain.records import InventoryEntry
from interlock.storage.db import Database
from tests.contract.conftest import NOW, seed_release


@pytest.fixture
def sent(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", listen)
    yield statements
    event.remove(db.engine, "before_cursor_execute", listen)


def _entry(release_id: int, version: str, digest: str | None, minutes: int) -> InventoryEntry:
    return InventoryEntry(
        service="api",
        environment="staging",
        version=version,
        digest=digest,
        release_id=release_id,
        deployment_id=None,
        deployed_at=NOW + timedelta(minutes=minutes),
        deployed_by="ann",
    )


def test_set_inventory_returns_what_ran_and_replaces_it_in_two_statements(
    db: Database, sent: list[str]
) -> None:
    with db.transaction() as tx:
        release_id = seed_release(tx)
    first = _entry(release_id, "1.0", "sha256:" + "a" * 64, 0)
    second = _entry(release_id, "1.1", None, 5)
    sent.clear()
    with db.transaction() as tx:
        assert tx.set_inventory(first) is None
    assert [s for s in sent if s != "BEGIN"] == ["SELECT", "INSERT"]
    sent.clear()
    with db.transaction() as tx:
        assert tx.set_inventory(second) == first
    # The entry before (for the audit event), then one upsert: no DELETE.
    assert [s for s in sent if s != "BEGIN"] == ["SELECT", "INSERT"]
    with db.read() as tx:
        assert tx.inventory_entry("api", "staging") == second
        assert tx.all_inventory() == [second]
        assert tx.inventory_entry("api", "production") is None


def test_open_incidents_of_is_list_incidents_of_that_service_and_environment(
    db: Database, sent: list[str]
) -> None:
    with db.transaction() as tx:
        made = {
            (service, environment): tx.open_incident(
                service=service,
                environment=environment,
                summary="down",
                at=NOW + timedelta(minutes=n),
                by="ann",
                deployment_id=None,
                release_id=None,
            )
            for n, (service, environment) in enumerate(
                [("api", "prod"), ("web", "prod"), ("api", "staging"), ("api", "prod")]
            )
        }
        first = tx.list_incidents(state="open", service="api", environment="prod")[-1]
        tx.resolve_incident(first.id, resolved_at=NOW, resolved_by="ann", resolution="fix")
    sent.clear()
    with db.read() as tx:
        found = tx.open_incidents_of("api", "prod")
        assert found == tx.list_incidents(
            state="open", service="api", environment="prod", limit=None
        )
    assert [i.id for i in found] == [made["api", "prod"].id]
    assert found[0].opened_at == NOW + timedelta(minutes=3)
    with db.read() as tx:
        assert tx.open_incidents_of("db", "prod") == []

"""Inbound event receipts: an event is acted on once, by key or by its signed body."""

from __future__ import annotations

from interlock.storage.db import Database
from interlock.storage.tx import Tx
from tests.contract.conftest import NOW, in_threads


def _claim(tx: Tx, key: str, *, source: str = "ci", digest: str | None = None) -> bool:
    return tx.claim_event_receipt(
        key=key,
        source=source,
        event_id=key,
        type="dev.cdevents.artifact.published.0.2.0",
        subject_key=None,
        at=NOW,
        by="ci-bot",
        body_digest=digest,
    )


def test_a_receipt_is_claimed_once_by_key_or_by_body(db: Database) -> None:
    with db.transaction() as tx:
        assert _claim(tx, "k1", digest="d1")
        assert not _claim(tx, "k1", digest="d9")  # the same key
        assert not _claim(tx, "k2", digest="d1")  # the same body from the same source
        assert _claim(tx, "k3", source="other", digest="d1")  # another source may send it
        assert _claim(tx, "k4")  # no digest: the key alone decides
    with db.read() as tx:
        found = tx.event_receipt("k2", source="ci", body_digest="d1")
        assert found is not None and found.key == "k1"
        assert tx.event_receipt("k9") is None


def test_concurrent_claims_of_one_event_succeed_exactly_once(db: Database) -> None:
    for round_ in range(5):
        key = f"race-{round_}"
        won = in_threads(3, lambda _i, key=key: db.run(lambda tx: _claim(tx, key, digest=key)))
        assert sorted(won) == [False, False, True], won

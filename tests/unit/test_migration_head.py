"""The head revision read from the migration files is Alembic's head."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory

from interlock.storage import migrate


def test_the_head_read_from_the_files_is_alembics():
    assert migrate.head_revision() == ScriptDirectory(str(migrate.MIGRATIONS)).get_current_head()


@pytest.mark.parametrize(
    ("files", "head"),
    [
        ({"a.py": 'revision = "0001"\ndown_revision = None\n'}, "0001"),
        (
            {
                "a.py": 'revision = "0001"\ndown_revision = None\n',
                "b.py": 'revision: str = "0002"\ndown_revision: str | None = "0001"\n',
            },
            "0002",
        ),
        (  # a merge of two branches
            {
                "a.py": 'revision = "0001"\ndown_revision = None\n',
                "b.py": 'revision = "0002"\ndown_revision = "0001"\n',
                "c.py": 'revision = "0003"\ndown_revision = "0001"\n',
                "d.py": 'revision = "0004"\ndown_revision = ("0002", "0003")\n',
            },
            "0004",
        ),
        (  # two heads: unsure, Alembic decides (and says what is wrong)
            {
                "a.py": 'revision = "0001"\ndown_revision = None\n',
                "b.py": 'revision = "0002"\ndown_revision = "0001"\n',
                "c.py": 'revision = "0003"\ndown_revision = "0001"\n',
            },
            None,
        ),
        ({"a.py": "revision = make_id()\ndown_revision = None\n"}, None),
    ],
)
def test_reading_the_head_from_the_files(tmp_path, monkeypatch, files, head):
    (tmp_path / "versions").mkdir()
    for name, text in files.items():
        (tmp_path / "versions" / name).write_text(f'"""A migration."""\n\n{text}')
    (tmp_path / "versions" / "__init__.py").write_text("")
    monkeypatch.setattr(migrate, "MIGRATIONS", tmp_path)
    assert migrate._head_from_sources() == head

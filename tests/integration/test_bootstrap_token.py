"""The first start writes admin.token; a second database in the same home never loses it."""

from __future__ import annotations

import stat

from interlock.engine.core import Engine
from interlock.engine.identity import Identity
from interlock.storage.db import Database
from tests.conftest import fresh_database_url


def test_a_second_database_keeps_the_first_ones_admin_token(engine, backend, tmp_path, request):
    home = tmp_path / "home"
    first = Identity(engine).bootstrap(home)
    assert first and (home / "admin.token").read_text().strip() == first
    assert Identity(engine).bootstrap(home) is None  # the same database: nothing new

    (tmp_path / "other").mkdir()
    other_db = Database(fresh_database_url(backend, tmp_path / "other", request))
    try:
        identity = Identity(Engine(other_db))
        second = identity.bootstrap(home)
    finally:
        other_db.dispose()
    assert second and second != first
    assert (home / "admin.token").read_text().strip() == second
    assert identity.kept_token is not None and identity.kept_token.parent == home
    assert identity.kept_token.read_text().strip() == first  # the first one is not lost
    assert stat.S_IMODE(identity.kept_token.stat().st_mode) == 0o600
    # and it still opens the first database
    user, _ = Identity(engine).authenticate(first)
    assert user.name == "admin"

"""Users, API tokens and group memberships."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text, update

from interlock.domain.records import Token, User
from interlock.storage.base import Prepared, QueryBase, found
from interlock.storage.schema import memberships, tokens, users

# The PostgreSQL advisory lock under which a change that could remove the last
# administrator is checked and made (the others: storage/leader.py).
ADMINS_LOCK = 727006

_TOKEN_COLUMNS = [c for c in tokens.c if c.name != "hash"]
_BY_HASH = (
    select(users, *[c.label(f"t_{c.name}") for c in _TOKEN_COLUMNS])
    .join(tokens, tokens.c.user_id == users.c.id)
    .where(tokens.c.hash == bindparam("h"))
)

# Read by every approval (who may approve, and who did).
_USER_RUN = Prepared(select(users).where(users.c.name == bindparam("name")))
_MEMBERSHIPS_OF_RUN = Prepared(
    select(memberships.c.kind, memberships.c.group_name).where(
        memberships.c.user_name == bindparam("user")
    )
)
_MEMBERS_RUN = Prepared(
    select(memberships.c.user_name).where(
        memberships.c.kind == bindparam("kind"), memberships.c.group_name == bindparam("group")
    )
)


def _token(row: Any, prefix: str = "") -> Token:
    data = dict(row._mapping)
    if prefix:
        data = {k[len(prefix) :]: v for k, v in data.items() if k.startswith(prefix)}
    data.pop("hash", None)
    return Token(**data)


class IdentityQueries(QueryBase):
    def lock_admins(self) -> None:
        """Check and make changes that may remove an administrator one at a time.

        Two admins revoking each other's last token at once would each see the
        other still able to sign in, and both would commit. On PostgreSQL the
        second waits here until the first commits, then reads what it did
        (READ COMMITTED reads each statement afresh); SQLite has one writer anyway.
        """
        if self.dialect == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADMINS_LOCK})

    def add_user(
        self,
        *,
        name: str,
        kind: str,
        at: datetime,
        by: str,
        display_name: str | None = None,
        email: str | None = None,
    ) -> User:
        user_id = self.conn.execute(
            users.insert()
            .values(
                name=name,
                kind=kind,
                display_name=display_name,
                email=email,
                disabled=False,
                created_at=at,
                created_by=by,
            )
            .returning(users.c.id)
        ).scalar_one()
        user = self.require_user(name)
        assert user.id == user_id
        return user

    def get_user(self, name: str) -> User | None:
        row = _USER_RUN.run(self.conn, {"name": name}).first()
        return User(**row) if row else None

    def require_user(self, name: str) -> User:
        """:meth:`get_user` of a user assumed to exist; :class:`NotFound` if there is none."""
        return found(self.get_user(name), f"user {name!r}")

    def find_user(self, name: str) -> User | None:
        """The user whose name is ``name`` regardless of case (names are unique so)."""
        row = self.conn.execute(
            select(users).where(func.lower(users.c.name) == name.lower())
        ).first()
        return User(**row._mapping) if row else None

    def list_users(self, limit: int | None = None, after_id: int | None = None) -> list[User]:
        """Users by name (``limit``: in the order they were added, after ``after_id``)."""
        query = select(users).order_by(users.c.name)
        if limit is not None:
            query = select(users).order_by(users.c.id).limit(limit)
            query = query.where(users.c.id > (after_id or 0))
        return [User(**r._mapping) for r in self.conn.execute(query)]

    def count_users(self) -> int:
        return len(self.conn.execute(select(users.c.id).limit(1)).all())

    def set_user_disabled(self, name: str, disabled: bool) -> bool:
        result = self.conn.execute(
            update(users).where(users.c.name == name).values(disabled=disabled)
        )
        return bool(result.rowcount)

    # -- tokens ------------------------------------------------------------------
    def add_token(
        self,
        *,
        user: User,
        name: str,
        prefix: str,
        digest: str,
        at: datetime,
        by: str,
        expires_at: datetime | None,
    ) -> Token:
        token_id = self.conn.execute(
            tokens.insert()
            .values(
                user_id=user.id,
                name=name,
                prefix=prefix,
                hash=digest,
                created_at=at,
                created_by=by,
                expires_at=expires_at,
            )
            .returning(tokens.c.id)
        ).scalar_one()
        return self.require_token(int(token_id))

    def get_token(self, token_id: int) -> Token | None:
        row = self.conn.execute(select(*_TOKEN_COLUMNS).where(tokens.c.id == token_id)).first()
        return _token(row) if row else None

    def require_token(self, token_id: int) -> Token:
        """:meth:`get_token` of one assumed to exist; :class:`NotFound` if it does not."""
        return found(self.get_token(token_id), f"token {token_id}")

    def token_by_hash(self, digest: str) -> tuple[User, Token] | None:
        row = self.conn.execute(_BY_HASH, {"h": digest}).first()
        if row is None:
            return None
        data = dict(row._mapping)
        user = User(**{k: v for k, v in data.items() if not k.startswith("t_")})
        return user, _token(row, "t_")

    def tokens_of(
        self, user_id: int, limit: int | None = None, after_id: int | None = None
    ) -> list[Token]:
        """A user's tokens, oldest first; at most ``limit`` after ``after_id``."""
        rows = self.conn.execute(
            select(*_TOKEN_COLUMNS)
            .where(tokens.c.user_id == user_id, tokens.c.id > (after_id or 0))
            .order_by(tokens.c.id)
            .limit(limit)
        )
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: int, at: datetime, by: str) -> bool:
        result = self.conn.execute(
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=at, revoked_by=by)
        )
        return bool(result.rowcount)

    def token_used(self, token_id: int, at: datetime) -> None:
        self.conn.execute(update(tokens).where(tokens.c.id == token_id).values(last_used_at=at))

    # -- memberships ---------------------------------------------------------------
    def memberships_of(self, user: str) -> list[tuple[str, str]]:
        """``(kind, group)`` pairs stored for ``user`` (the config adds its own)."""
        rows = _MEMBERSHIPS_OF_RUN.run(self.conn, {"user": user}).rows
        return [(str(r[0]), str(r[1])) for r in rows]

    def all_memberships(self) -> list[tuple[str, str, str]]:
        rows = self.conn.execute(
            select(memberships.c.kind, memberships.c.group_name, memberships.c.user_name).order_by(
                memberships.c.kind, memberships.c.group_name, memberships.c.user_name
            )
        )
        return [(r.kind, r.group_name, r.user_name) for r in rows]

    def members(self, kind: str, group: str) -> set[str]:
        rows = _MEMBERS_RUN.run(self.conn, {"kind": kind, "group": group}).rows
        return {str(r[0]) for r in rows}

    def add_membership(self, kind: str, group: str, user: str, at: datetime, by: str) -> bool:
        exists = self.conn.execute(
            select(memberships.c.user_name).where(
                memberships.c.kind == kind,
                memberships.c.group_name == group,
                memberships.c.user_name == user,
            )
        ).first()
        if exists:
            return False
        self.conn.execute(
            memberships.insert().values(
                kind=kind, group_name=group, user_name=user, added_by=by, added_at=at
            )
        )
        return True

    def remove_membership(self, kind: str, group: str, user: str) -> bool:
        result = self.conn.execute(
            delete(memberships).where(
                memberships.c.kind == kind,
                memberships.c.group_name == group,
                memberships.c.user_name == user,
            )
        )
        return bool(result.rowcount)

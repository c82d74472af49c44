"""Browser sessions of people signed in with single sign-on, and sign-ins under way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from interlock.domain.records import CliGrant, SsoLogin, User, WebSession
from interlock.storage.base import QueryBase
from interlock.storage.schema import cli_grants, memberships, sso_logins, users, web_sessions

_SESSION_COLUMNS = [c for c in web_sessions.c if c.name != "hash"]
_BY_HASH = select(users, *[c.label(f"s_{c.name}") for c in _SESSION_COLUMNS]).join(
    web_sessions, web_sessions.c.user_id == users.c.id
)


def _session(data: dict[str, Any]) -> WebSession:
    return WebSession(**{k[2:]: v for k, v in data.items() if k.startswith("s_")})


class WebSessionQueries(QueryBase):
    def add_web_session(
        self,
        *,
        digest: str,
        user_id: int,
        at: datetime,
        expires_at: datetime,
    ) -> int:
        """Store a new session by the SHA-256 of its cookie secret; its id."""
        inserted = self.conn.execute(
            web_sessions.insert()
            .values(
                hash=digest,
                user_id=user_id,
                created_at=at,
                expires_at=expires_at,
            )
            .returning(web_sessions.c.id)
        )
        return int(inserted.scalar_one())

    def web_session_by_hash(self, digest: str) -> tuple[User, WebSession] | None:
        """The session whose cookie secret has this SHA-256, and its user (ended or not)."""
        row = self.conn.execute(_BY_HASH.where(web_sessions.c.hash == digest)).first()
        if row is None:
            return None
        data = dict(row._mapping)
        user = User(**{k: v for k, v in data.items() if not k.startswith("s_")})
        return user, _session(data)

    def end_web_session(self, session_id: int, at: datetime) -> bool:
        """End a session (sign-out); False when it had ended already."""
        result = self.conn.execute(
            update(web_sessions)
            .where(web_sessions.c.id == session_id, web_sessions.c.ended_at.is_(None))
            .values(ended_at=at)
        )
        return bool(result.rowcount)

    def drop_old_web_sessions(self, before: datetime) -> None:
        """Forget sessions that expired before ``before`` and sign-ins never completed."""
        self.conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < before))
        self.conn.execute(delete(sso_logins).where(sso_logins.c.expires_at < before))
        self.conn.execute(delete(cli_grants).where(cli_grants.c.expires_at < before))

    def memberships_added_by(self, user: str, by: str) -> set[tuple[str, str]]:
        """The ``(kind, group)`` memberships of ``user`` that ``by`` added."""
        rows = self.conn.execute(
            select(memberships.c.kind, memberships.c.group_name).where(
                memberships.c.user_name == user, memberships.c.added_by == by
            )
        )
        return {(r.kind, r.group_name) for r in rows}

    def add_sso_login(self, *, state_digest: str, login: SsoLogin) -> None:
        """Keep what a sign-in needs when the provider sends the browser back."""
        self.conn.execute(
            sso_logins.insert().values(
                state_hash=state_digest,
                nonce=login.nonce,
                verifier=login.verifier,
                return_to=login.return_to,
                redirect_url=login.redirect_url,
                expires_at=login.expires_at,
            )
        )

    def take_sso_login(self, state_digest: str) -> SsoLogin | None:
        """The sign-in begun with this state, removed: a state is good for one return."""
        row = self.conn.execute(
            delete(sso_logins)
            .where(sso_logins.c.state_hash == state_digest)
            .returning(*[c for c in sso_logins.c if c.name != "state_hash"])
        ).first()
        return None if row is None else SsoLogin(**dict(row._mapping))

    def add_cli_grant(self, *, code_digest: str, grant: CliGrant) -> None:
        """Keep a grant of ``interlock login`` until the command trades its code."""
        self.conn.execute(
            cli_grants.insert().values(
                code_hash=code_digest,
                user_id=grant.user_id,
                challenge=grant.challenge,
                token_name=grant.token_name,
                expires_at=grant.expires_at,
            )
        )

    def take_cli_grant(self, code_digest: str) -> tuple[User, CliGrant] | None:
        """The grant of this code and its user, removed: a code is good for one trade."""
        row = self.conn.execute(
            delete(cli_grants)
            .where(cli_grants.c.code_hash == code_digest)
            .returning(*[c for c in cli_grants.c if c.name != "code_hash"])
        ).first()
        if row is None:
            return None
        grant = CliGrant(**dict(row._mapping))
        user = self.conn.execute(select(users).where(users.c.id == grant.user_id)).one()
        return User(**dict(user._mapping)), grant

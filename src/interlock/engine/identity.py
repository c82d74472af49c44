"""Who is calling: users, service accounts, API tokens, and the first admin.

Tokens are random (``ilk_`` + 32 bytes), shown once, and stored only as their
SHA-256 (a fast hash is right for secrets with that much entropy). A failed
authentication is audited without the secret.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from interlock.domain.names import USER_NAME, check_group_name
from interlock.domain.records import Token, User
from interlock.engine.admins import ADMIN, keep_an_admin
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from interlock.storage.tx import Tx

log = logging.getLogger(__name__)

TOKEN_PREFIX = "ilk_"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller and the groups it belongs to (config and API)."""

    name: str
    kind: str  # user | service
    roles: frozenset[str]
    teams: frozenset[str]
    token_id: int | None = None

    def is_admin(self) -> bool:
        return ADMIN in self.roles

    def is_person(self) -> bool:
        return self.kind == "user"


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _shown_prefix(secret: str) -> str:
    return secret[: len(TOKEN_PREFIX) + 6]


def principal_of(
    tx: Tx,
    user: User,
    config_roles: dict[str, list[str]],
    config_teams: dict[str, list[str]],
    token_id: int | None = None,
) -> Principal:
    """``user`` with its roles and teams from the config and from the database (in ``tx``)."""
    stored = tx.memberships_of(user.name)
    roles = {r for r, members in config_roles.items() if user.name in members}
    teams = {t for t, members in config_teams.items() if user.name in members}
    roles |= {group for kind, group in stored if kind == "role"}
    teams |= {group for kind, group in stored if kind == "team"}
    return Principal(user.name, user.kind, frozenset(roles), frozenset(teams), token_id)


class Identity:
    """Authentication and user/token management on top of the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._last_used: dict[int, float] = {}
        self._failures: dict[tuple[str, str, str | None], float] = {}
        self._lock = threading.Lock()
        self.kept_token: Path | None = None  # where bootstrap moved an older admin.token

    # -- authentication --------------------------------------------------------------
    def authenticate(self, secret: str | None, *, source: str = "") -> tuple[User, Token]:
        """The user and token behind ``secret``; 401 (audited) for anything else."""
        now = self.engine.clock.now()
        if not secret:
            self._refuse("no token", None, source, now)
        assert secret is not None
        found = None
        if secret.startswith(TOKEN_PREFIX):
            with self.engine.db.read() as tx:
                found = tx.token_by_hash(digest(secret))
        if found is None:
            self._refuse("unknown token", secret, source, now)
        assert found is not None
        user, token = found
        if token.revoked_at is not None:
            self._refuse("revoked token", secret, source, now, user.name)
        if token.expires_at is not None and token.expires_at <= now:
            self._refuse("expired token", secret, source, now, user.name)
        if user.disabled:
            self._refuse("disabled user", secret, source, now, user.name)
        self._note_use(token.id, now)
        return user, token

    def _refuse(
        self, why: str, secret: str | None, source: str, now: datetime, user: str | None = None
    ) -> None:
        host = source.split(" ", 1)[0]
        with self._lock:
            last = self._failures.get((host, why, user), 0.0)
            audit = time.monotonic() - last >= 60
            if audit:
                self._failures[(host, why, user)] = time.monotonic()
                if len(self._failures) > 10_000:
                    self._failures.clear()

        def work(tx: Tx) -> None:
            tx.audit(
                at=now,
                actor=user or "anonymous",
                action="auth.failed",
                object_type="token",
                object_id=_shown_prefix(secret) if secret else "-",
                reason=why,
                data={"source": source},
            )

        # One audit event per caller, reason and minute; a scanner or a misconfigured
        # scraper hammering the API must not write to the chain on every request.
        if audit:
            self.engine.db.run(work)
        else:
            log.warning("authentication failed (%s) from %s; already audited", why, host)
        hint = {
            "no token": "send `Authorization: Bearer <token>` (the CLI reads INTERLOCK_TOKEN)",
            "unknown token": "check INTERLOCK_TOKEN; create one with `interlock token create`",
            "revoked token": "this token was revoked; create a new one",
            "expired token": "this token expired; create a new one with `interlock token create`",
            "disabled user": "this user is disabled; ask an administrator",
        }[why]
        raise Unauthenticated(f"authentication failed: {why}; {hint}")

    def _note_use(self, token_id: int, now: datetime) -> None:
        """Record ``last_used_at`` at most once a minute per token (not a write per call)."""
        with self._lock:
            last = self._last_used.get(token_id, 0.0)
            if time.monotonic() - last < 60:
                return
            self._last_used[token_id] = time.monotonic()
        self.engine.db.run(lambda tx: tx.token_used(token_id, now))

    def principal(
        self,
        user: User,
        config_roles: dict[str, list[str]],
        config_teams: dict[str, list[str]],
        token_id: int | None = None,
    ) -> Principal:
        """``user`` with its roles and teams from the config and from the database."""
        with self.engine.db.read() as tx:
            return principal_of(tx, user, config_roles, config_teams, token_id)

    # -- management --------------------------------------------------------------------
    def add_user(
        self,
        *,
        actor: str,
        name: str,
        kind: str = "user",
        display_name: str | None = None,
        email: str | None = None,
    ) -> User:
        if not USER_NAME.match(name):
            raise InvalidInput(
                f"{name!r} is not a valid user name: letters, digits, '.', '_', '@', '-'",
                field="name",
            )
        if kind not in ("user", "service"):
            raise InvalidInput("kind is `user` or `service`", field="kind")
        now = self.engine.clock.now()

        def work(tx: Tx) -> User:
            existing = tx.find_user(name)
            if existing is not None:
                raise Conflict(
                    f"a user named {existing.name!r} already exists (names are the same "
                    "regardless of case)"
                )
            user: User = tx.add_user(
                name=name, kind=kind, at=now, by=actor, display_name=display_name, email=email
            )
            tx.audit(
                at=now,
                actor=actor,
                action="user.created",
                object_type="user",
                object_id=name,
                after={"kind": kind},
            )
            return user

        result: User = self.engine.db.run(work)
        return result

    def user(self, name: str) -> User:
        with self.engine.db.read() as tx:
            found: User | None = tx.get_user(name)
        if found is None:
            raise NotFound(f"no user named {name!r}; add one with `interlock user add`")
        return found

    def person(self, name: str, *, field: str) -> User:
        """The person ``name`` names, spelt as stored; 422 on ``field`` if there is none.

        For a name that other checks compare (``on_behalf_of``: the release's author,
        whom four-eyes keeps from approving it), so it must be exactly a person's.
        """
        with self.engine.db.read() as tx:
            found: User | None = tx.find_user(name)
        if found is None or found.kind != "user":
            raise InvalidInput(
                f"{name!r} is not a person known here: {field} names the user a service "
                "account acts for (add them with `interlock user add NAME`)",
                field=field,
            )
        return found

    def users(self, limit: int | None = None, after: int | None = None) -> list[User]:
        """Every user by name; with ``limit``, a page of them by id, after ``after``."""
        with self.engine.db.read() as tx:
            found: list[User] = tx.list_users(limit=limit, after_id=after)
        return found

    def create_token(
        self,
        *,
        actor: str,
        user: str,
        name: str,
        expires_in: float | None,
    ) -> tuple[Token, str]:
        """A new token for ``user``; the secret is returned once and never stored."""
        now = self.engine.clock.now()
        secret = new_secret()
        expires_at = now + timedelta(seconds=expires_in) if expires_in is not None else None

        def work(tx: Tx) -> Token:
            owner = tx.get_user(user)
            if owner is None:
                raise NotFound(f"no user named {user!r}")
            token: Token = tx.add_token(
                user=owner,
                name=name,
                prefix=_shown_prefix(secret),
                digest=digest(secret),
                at=now,
                by=actor,
                expires_at=expires_at,
            )
            tx.audit(
                at=now,
                actor=actor,
                action="token.created",
                object_type="token",
                object_id=token.id,
                data={
                    "user": user,
                    "name": name,
                    "prefix": token.prefix,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
            return token

        return self.engine.db.run(work), secret

    def token(self, token_id: int) -> Token | None:
        with self.engine.db.read() as tx:
            found: Token | None = tx.get_token(token_id)
        return found

    def tokens(self, user: str, limit: int | None = None, after: int | None = None) -> list[Token]:
        """A user's tokens, oldest first (at most ``limit``, after the token ``after``)."""
        owner = self.user(user)
        with self.engine.db.read() as tx:
            found: list[Token] = tx.tokens_of(owner.id, limit=limit, after_id=after)
        return found

    def token_owner(self, token_id: int) -> str:
        with self.engine.db.read() as tx:
            token = tx.get_token(token_id)
            if token is None:
                raise NotFound(f"no token {token_id}")
            for user in tx.list_users():
                if user.id == token.user_id:
                    return str(user.name)
        raise NotFound(f"no token {token_id}")

    def revoke_token(self, *, actor: str, token_id: int) -> None:
        now = self.engine.clock.now()

        def work(tx: Tx) -> None:
            if tx.get_token(token_id) is None:
                raise NotFound(f"no token {token_id}")
            keep_an_admin(tx, self.engine.configs, now, without_token=token_id)
            if not tx.revoke_token(token_id, now, actor):
                raise Conflict(f"token {token_id} is already revoked")
            tx.audit(
                at=now, actor=actor, action="token.revoked", object_type="token", object_id=token_id
            )

        self.engine.db.run(work)

    def set_membership(self, *, actor: str, kind: str, group: str, user: str, member: bool) -> bool:
        if kind not in ("role", "team"):
            raise InvalidInput("kind is `role` or `team`", field="kind")
        now = self.engine.clock.now()

        if member:
            check_group_name(group, kind)

        def work(tx: Tx) -> bool:
            name = user
            if member:
                found = tx.find_user(user)
                if found is None:
                    raise NotFound(f"no user named {user!r}")
                name = found.name  # as stored: memberships are compared exactly
            elif kind == "role" and group == ADMIN:
                keep_an_admin(tx, self.engine.configs, now, without_member=user)
            changed = (
                tx.add_membership(kind, group, name, now, actor)
                if member
                else tx.remove_membership(kind, group, user)
            )
            if changed:
                tx.audit(
                    at=now,
                    actor=actor,
                    action=f"{kind}.member_{'added' if member else 'removed'}",
                    object_type=kind,
                    object_id=group,
                    data={"user": name},
                )
            return bool(changed)

        result: bool = self.engine.db.run(work)
        return result

    def memberships(self) -> list[tuple[str, str, str]]:
        with self.engine.db.read() as tx:
            found: list[tuple[str, str, str]] = tx.all_memberships()
        return found

    # -- the first start ---------------------------------------------------------------
    def bootstrap(self, home: Path) -> str | None:
        """Create the admin user and token when there are no users; return the secret once.

        The secret is also written to ``home/admin.token``, readable only by its
        owner, so a local pilot's CLI finds it without any set-up.
        """
        now = self.engine.clock.now()
        secret = new_secret()

        def work(tx: Tx) -> bool:
            if tx.count_users():
                return False
            user = tx.add_user(
                name=ADMIN, kind="user", at=now, by=SYSTEM_ACTOR, display_name="Administrator"
            )
            tx.add_membership("role", ADMIN, ADMIN, now, SYSTEM_ACTOR)
            token = tx.add_token(
                user=user,
                name="bootstrap",
                prefix=_shown_prefix(secret),
                digest=digest(secret),
                at=now,
                by=SYSTEM_ACTOR,
                expires_at=None,
            )
            tx.audit(
                at=now,
                actor=SYSTEM_ACTOR,
                action="user.created",
                object_type="user",
                object_id=ADMIN,
                reason="first start: the administrator",
                after={"kind": "user", "roles": [ADMIN]},
            )
            tx.audit(
                at=now,
                actor=SYSTEM_ACTOR,
                action="token.created",
                object_type="token",
                object_id=token.id,
                data={"user": ADMIN, "name": "bootstrap", "prefix": token.prefix},
            )
            return True

        try:
            created = self.engine.db.run(work)
        except Exception:  # another server created it at the same moment (unique name)
            with self.engine.db.read() as tx:
                if tx.get_user(ADMIN) is None:
                    raise
            return None
        if not created:
            return None
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = home / "admin.token"
        if path.exists():  # another database's admin token (--database-url): keep it
            kept = home / f"admin.token.{now:%Y%m%dT%H%M%S}"
            os.replace(path, kept)
            self.kept_token = kept
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        os.chmod(path, 0o600)
        return secret

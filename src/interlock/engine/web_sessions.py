"""Browser sessions begun with single sign-on, and the sign-ins that lead to them.

A session's cookie holds a random secret; the database holds only its SHA-256,
so a copy of the database signs nobody in. The roles and teams the provider's
claims give are stored as the person's memberships, added by ``sso`` and made
to match the claims again at each sign-in (those an administrator added stay),
so approval gates, "who can clear" and permissions see them like any other.
The CSRF token of a session is derived from its secret: a page that cannot
read the cookie cannot make it up.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from interlock.domain.names import USER_NAME
from interlock.domain.records import CliGrant, SsoLogin, User, WebSession
from interlock.engine.admins import ADMIN, keep_an_admin
from interlock.engine.core import Engine
from interlock.errors import Conflict, Forbidden, InvalidInput, Unauthenticated
from interlock.spec.sso import Sso
from interlock.storage.tx import Tx

# How long a person may take at the provider's sign-in page.
SIGN_IN_TTL = timedelta(minutes=10)
# How long `interlock login` has to trade the code the browser handed it.
CLI_GRANT_TTL = timedelta(minutes=2)
SSO_ACTOR = "sso"  # who adds the user a first sign-in creates


@dataclass(frozen=True)
class SignedIn:
    """Who the provider says signed in, and what its claims give them here."""

    name: str
    email: str | None
    display_name: str | None
    roles: frozenset[str]
    teams: frozenset[str]
    subject: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(secret: str) -> str:
    """The CSRF token of the session whose cookie holds ``secret``."""
    return hmac.new(secret.encode(), b"interlock csrf", hashlib.sha256).hexdigest()


def csrf_matches(secret: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(secret), sent or "")


def _groups(claims: Mapping[str, Any], claim: str) -> list[str]:
    value = claims.get(claim)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [g for g in value if isinstance(g, str)]
    return []


def signed_in(sso: Sso, claims: Mapping[str, Any]) -> SignedIn:
    """Map the provider's claims to a user name, roles and teams (``sso:`` of the config).

    The e-mail domain counts only when the provider does not say the address is
    unverified (Entra ID sends no ``email_verified``; Keycloak and Okta do).
    """
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    raw = claims.get(sso.username_claim)
    name = raw if isinstance(raw, str) and raw else email
    if not name:
        raise InvalidInput(
            f"the provider sent no {sso.username_claim!r} claim and no e-mail address to name "
            "you by; ask for the scope that carries it (sso.scopes) or set sso.username_claim",
            field="sso.username_claim",
        )
    if not USER_NAME.match(name):
        raise InvalidInput(
            f"the provider's {sso.username_claim} {name!r} is not a valid Interlock user name "
            "(letters, digits, '.', '_', '@', '-'); set sso.username_claim to another claim",
            field="sso.username_claim",
        )
    roles: set[str] = set()
    teams: set[str] = set()
    for group in _groups(claims, sso.groups_claim):
        grant = sso.groups.get(group)
        if grant is not None:
            roles.update(grant.roles)
            teams.update(grant.teams)
    if email and "@" in email and claims.get("email_verified") is not False:
        grant = sso.email_domains.get(email.rsplit("@", 1)[1].lower())
        if grant is not None:
            roles.update(grant.roles)
            teams.update(grant.teams)
    shown = claims.get("name")
    return SignedIn(
        name=name,
        email=email,
        display_name=shown if isinstance(shown, str) and shown else None,
        roles=frozenset(roles),
        teams=frozenset(teams),
        subject=str(claims.get("sub", "")),
    )


class WebSessions:
    """Sign-ins under way, sessions begun, found and ended; each change audited."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- a sign-in under way -------------------------------------------------------
    def begin_sign_in(self, *, return_to: str, redirect_url: str) -> tuple[str, SsoLogin]:
        """A new state (the key the provider sends back) and what waits for it."""
        state = secrets.token_urlsafe(32)
        login = SsoLogin(
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),  # 64 characters (RFC 7636: 43 to 128)
            return_to=return_to,
            redirect_url=redirect_url,
            expires_at=self.engine.clock.now() + SIGN_IN_TTL,
        )
        now = self.engine.clock.now()

        def work(tx: Tx) -> None:
            tx.drop_old_web_sessions(now)
            tx.add_sso_login(state_digest=_digest(state), login=login)

        self.engine.db.run(work)
        return state, login

    def take_sign_in(self, state: str) -> SsoLogin:
        """The sign-in begun with ``state``; each state is good for one return only."""
        found: SsoLogin | None = self.engine.db.run(lambda tx: tx.take_sso_login(_digest(state)))
        if found is None or found.expires_at <= self.engine.clock.now():
            raise Unauthenticated(
                "this sign-in is unknown, used already or older than 10 minutes; "
                "start again from the sign-in page"
            )
        return found

    # -- sessions --------------------------------------------------------------------
    def begin(self, who: SignedIn, sso: Sso) -> tuple[str, WebSession]:
        """Sign ``who`` in: their user (added at the first sign-in) and a new session.

        Returns the cookie's secret (shown to nobody else) and the session.
        """
        now = self.engine.clock.now()
        secret = secrets.token_urlsafe(32)

        def work(tx: Tx) -> tuple[str, WebSession]:
            user: User | None = tx.find_user(who.name)
            if user is None:
                user = tx.add_user(
                    name=who.name,
                    kind="user",
                    at=now,
                    by=SSO_ACTOR,
                    display_name=who.display_name,
                    email=who.email,
                )
                tx.audit(
                    at=now,
                    actor=SSO_ACTOR,
                    action="user.created",
                    object_type="user",
                    object_id=user.name,
                    after={"kind": "user"},
                    data={"via": "sso", "subject": who.subject},
                )
            if user.kind != "user":
                raise Forbidden(
                    f"{user.name!r} is a service account; service accounts sign in with "
                    "API tokens, not single sign-on"
                )
            if user.disabled:
                raise Forbidden(f"the user {user.name!r} is disabled; ask an administrator")
            self._match_claims(tx, user.name, who, now)
            session_id = tx.add_web_session(
                digest=_digest(secret),
                user_id=user.id,
                at=now,
                expires_at=now + timedelta(seconds=sso.session),
            )
            tx.audit(
                at=now,
                actor=user.name,
                action="session.signed_in",
                object_type="session",
                object_id=session_id,
                data={
                    "via": "sso",
                    "issuer": sso.issuer,
                    "subject": who.subject,
                    "roles": sorted(who.roles),
                    "teams": sorted(who.teams),
                },
            )
            found = tx.web_session_by_hash(_digest(secret))
            assert found is not None
            return secret, found[1]

        result: tuple[str, WebSession] = self.engine.db.run(work)
        return result

    def authenticate(self, secret: str) -> tuple[User, WebSession]:
        """The user and live session behind a cookie's secret; 401 for anything else."""
        with self.engine.db.read() as tx:
            found = tx.web_session_by_hash(_digest(secret))
        why = None
        if found is None:
            why = "unknown session"
        elif found[1].ended_at is not None:
            why = "you signed out of this session"
        elif found[1].expires_at <= self.engine.clock.now():
            why = "the session expired"
        elif found[0].disabled:
            why = "this user is disabled"
        if why is not None or found is None:
            raise Unauthenticated(f"authentication failed: {why}; sign in again")
        return found

    def _match_claims(self, tx: Tx, name: str, who: SignedIn, now: datetime) -> None:
        """Make the memberships ``sso`` added for ``name`` those the claims give now."""
        wanted = {("role", r) for r in who.roles} | {("team", t) for t in who.teams}
        held = set(tx.memberships_of(name))
        changes = [(kind, group, True) for kind, group in sorted(wanted - held)]
        gone = tx.memberships_added_by(name, SSO_ACTOR) - wanted
        changes += [(kind, group, False) for kind, group in sorted(gone)]
        for kind, group, member in changes:
            if not member and (kind, group) == ("role", ADMIN):
                try:
                    keep_an_admin(tx, self.engine.configs, now, without_member=name)
                except Conflict:
                    continue  # the last administrator stays one; an administrator decides
            if member:
                tx.add_membership(kind, group, name, now, SSO_ACTOR)
            else:
                tx.remove_membership(kind, group, name)
            tx.audit(
                at=now,
                actor=SSO_ACTOR,
                action=f"{kind}.member_{'added' if member else 'removed'}",
                object_type=kind,
                object_id=group,
                data={"user": name, "via": "sso"},
            )

    def end(self, secret: str) -> bool:
        """Sign out: end the session behind ``secret`` (audited); False if none was live."""
        now = self.engine.clock.now()

        def work(tx: Tx) -> bool:
            found = tx.web_session_by_hash(_digest(secret))
            if found is None or not tx.end_web_session(found[1].id, now):
                return False
            tx.audit(
                at=now,
                actor=found[0].name,
                action="session.signed_out",
                object_type="session",
                object_id=found[1].id,
            )
            return True

        ended: bool = self.engine.db.run(work)
        return ended

    # -- `interlock login` -----------------------------------------------------------
    def grant_cli(self, secret: str, *, challenge: str, token_name: str) -> str:
        """The signed-in person allowed the command line: a one-time code for it."""
        user, _ = self.authenticate(secret)
        code = secrets.token_urlsafe(32)
        now = self.engine.clock.now()
        grant = CliGrant(user.id, challenge, token_name, now + CLI_GRANT_TTL)

        def work(tx: Tx) -> None:
            tx.drop_old_web_sessions(now)
            tx.add_cli_grant(code_digest=_digest(code), grant=grant)

        self.engine.db.run(work)
        return code

    def take_cli_grant(self, code: str, challenge: str) -> tuple[User, str]:
        """Whose grant ``code`` is, and the token's name, when ``challenge`` (of the
        command's verifier) matches."""
        found = self.engine.db.run(lambda tx: tx.take_cli_grant(_digest(code)))
        if found is None or found[1].expires_at <= self.engine.clock.now():
            raise Unauthenticated(
                "this login code is unknown, used already or older than 2 minutes; "
                "run `interlock login` again"
            )
        user, grant = found
        if not hmac.compare_digest(grant.challenge, challenge):
            raise Unauthenticated("the login code was not given to this command; run it again")
        if user.disabled:
            raise Forbidden(f"the user {user.name!r} is disabled; ask an administrator")
        assert isinstance(user, User)
        return user, grant.token_name

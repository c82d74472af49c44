"""Browser sessions of single sign-on on SQLite and PostgreSQL: memberships from the
claims, expiry on a manual clock, a sign-in's state used once, who may not sign in."""

from __future__ import annotations

import pytest

from interlock.engine.clock import ManualClock
from interlock.engine.identity import Identity
from interlock.engine.web_sessions import SignedIn, WebSessions, csrf_matches, csrf_token
from interlock.errors import Forbidden, Unauthenticated
from interlock.spec.sso import Grant, Sso

CONFIG = """\
version: 1
environments: [{name: dev}]
services: {api: {deploy: [{name: roll-out, run: "true"}]}}
"""
SSO = Sso(
    issuer="https://login.example.com",
    client_id="interlock",
    session="1h",
    groups={"rm": Grant(roles=["release-managers"])},
)


def person(roles: set[str] = frozenset(), teams: set[str] = frozenset()) -> SignedIn:
    return SignedIn("alice", "alice@example.com", "Alice", frozenset(roles), frozenset(teams), "s1")


def held(pilot, name: str = "alice") -> set[tuple[str, str]]:
    with pilot.read() as tx:
        return set(tx.memberships_of(name))


def test_claims_become_memberships_and_follow_the_provider_at_each_sign_in(pilot):
    pilot.config(CONFIG)
    sessions, identity = WebSessions(pilot.engine), Identity(pilot.engine)
    sessions.begin(person({"release-managers"}, {"qa"}), SSO)
    assert held(pilot) == {("role", "release-managers"), ("team", "qa")}
    # An administrator's own grant is not the provider's to take away.
    identity.set_membership(actor="admin", kind="role", group="oncall", user="alice", member=True)

    sessions.begin(person(teams={"qa"}), SSO)  # left the group at the provider
    assert held(pilot) == {("team", "qa"), ("role", "oncall")}
    with pilot.read() as tx:
        events = [(e.actor, e.action, e.object_id) for e in tx.list_audit(limit=1000)]
    assert ("sso", "user.created", "alice") in events
    assert ("sso", "role.member_added", "release-managers") in events
    assert ("sso", "role.member_removed", "release-managers") in events
    assert [a for _, a, _ in events].count("session.signed_in") == 2


def test_a_session_expires_and_a_signed_out_one_is_refused(pilot):
    pilot.config(CONFIG)
    clock = pilot.engine.clock = ManualClock()
    sessions = WebSessions(pilot.engine)
    secret, session = sessions.begin(person(), SSO)
    assert (session.expires_at - session.created_at).total_seconds() == 3600
    user, _ = sessions.authenticate(secret)
    assert user.name == "alice"
    clock.advance(3601)
    with pytest.raises(Unauthenticated, match="the session expired"):
        sessions.authenticate(secret)

    other, _ = sessions.begin(person(), SSO)
    assert sessions.end(other) is True
    assert sessions.end(other) is False  # once
    with pytest.raises(Unauthenticated, match="you signed out"):
        sessions.authenticate(other)
    with pytest.raises(Unauthenticated, match="unknown session"):
        sessions.authenticate("made-up")


def test_the_state_of_a_sign_in_is_good_once_and_for_ten_minutes(pilot):
    pilot.config(CONFIG)
    clock = pilot.engine.clock = ManualClock()
    sessions = WebSessions(pilot.engine)
    state, login = sessions.begin_sign_in(return_to="/ui/releases/1", redirect_url="http://x/cb")
    assert sessions.take_sign_in(state) == login
    with pytest.raises(Unauthenticated, match="used already"):
        sessions.take_sign_in(state)
    late, _ = sessions.begin_sign_in(return_to="/ui/releases", redirect_url="http://x/cb")
    clock.advance(601)
    with pytest.raises(Unauthenticated, match="older than 10 minutes"):
        sessions.take_sign_in(late)


def test_disabled_people_and_service_accounts_do_not_sign_in(pilot):
    pilot.config(CONFIG)
    sessions, identity = WebSessions(pilot.engine), Identity(pilot.engine)
    secret, _ = sessions.begin(person(), SSO)
    identity.add_user(actor="admin", name="deployer", kind="service")
    with pytest.raises(Forbidden, match="service account"):
        sessions.begin(SignedIn("deployer", None, None, frozenset(), frozenset(), "s2"), SSO)
    pilot.engine.db.run(lambda tx: tx.set_user_disabled("alice", True))
    with pytest.raises(Forbidden, match="disabled"):
        sessions.begin(person(), SSO)
    with pytest.raises(Unauthenticated, match="disabled"):
        sessions.authenticate(secret)  # a live session ends with the user


def test_the_csrf_token_belongs_to_its_session():
    assert csrf_matches("secret-a", csrf_token("secret-a"))
    assert not csrf_matches("secret-b", csrf_token("secret-a"))
    assert not csrf_matches("secret-a", None)
    assert not csrf_matches("secret-a", "")

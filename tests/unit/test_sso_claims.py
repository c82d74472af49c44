"""``sso:`` in interlock.yaml, and what the provider's claims make of who signs in."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlock.api.sso import _safe_return
from interlock.engine.web_sessions import signed_in
from interlock.errors import ConfigError, InvalidInput
from interlock.spec.loader import parse_config
from interlock.spec.sso import Grant, Sso

BASE = """\
version: 1
environments: [{name: dev}]
services: {api: {deploy: [{name: roll-out, run: "true"}]}}
"""
SSO = Sso(
    issuer="https://login.example.com/realms/acme/",
    client_id="interlock",
    groups={
        "release-managers": Grant(roles=["release-managers"]),
        "payments-devs": Grant(teams=["payments"]),
    },
    email_domains={"Example.com": Grant(teams=["staff"])},
)


def test_the_issuer_loses_its_trailing_slash_and_the_defaults_are_openid_email_profile():
    assert list(SSO.email_domains) == ["example.com"]  # one spelling: lower case
    assert SSO.issuer == "https://login.example.com/realms/acme"
    assert SSO.scopes == ["openid", "email", "profile"]
    assert SSO.session == 8 * 3600


def test_groups_and_a_verified_email_domain_give_roles_and_teams():
    who = signed_in(
        SSO,
        {
            "sub": "248289761001",
            "preferred_username": "alice",
            "email": "alice@Example.com",
            "email_verified": True,
            "groups": ["release-managers", "payments-devs", "unmapped"],
            "name": "Alice A.",
        },
    )
    assert (who.name, who.email, who.display_name) == ("alice", "alice@Example.com", "Alice A.")
    assert who.roles == {"release-managers"}
    assert who.teams == {"payments", "staff"}


def test_an_unverified_email_gives_nothing_and_a_single_group_is_a_list_of_one():
    who = signed_in(
        SSO,
        {
            "sub": "1",
            "email": "mallory@example.com",
            "email_verified": False,
            "groups": "payments-devs",
        },
    )
    assert who.name == "mallory@example.com"  # no preferred_username: the e-mail names them
    assert who.teams == {"payments"}
    assert who.roles == frozenset()


def test_a_name_interlock_cannot_use_is_refused_naming_the_setting():
    with pytest.raises(InvalidInput, match="not a valid Interlock user name") as raised:
        signed_in(SSO, {"sub": "1", "preferred_username": "Alice Smith"})
    assert raised.value.extra["field"] == "sso.username_claim"
    with pytest.raises(InvalidInput, match="no 'preferred_username' claim and no e-mail"):
        signed_in(SSO, {"sub": "1"})


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "{issuer: https://idp, client_id: x, client_secret: hunter2}",
            "write the secret as a ${VAR} reference",
        ),
        ("{issuer: idp.example.com, client_id: x}", "is not an http:// or https:// URL"),
        (
            "{issuer: https://idp, client_id: x, redirect_url: https://interlock/callback}",
            "/auth/sso/callback",
        ),
        (
            "{issuer: https://idp, client_id: x, email_domains: {'@example.com': {}}}",
            "'@example.com' is not a domain name like example.com",
        ),
        ("{issuer: https://idp, client_id: x, groups: {g: {roles: [Bad Role]}}}", "lower-case"),
        ("{issuer: https://idp, client_id: x, scopes: [openid], scope: [x]}", "scope"),
    ],
)
def test_a_wrong_sso_section_is_refused_with_its_place(section, message):
    with pytest.raises(ConfigError) as raised:
        parse_config(BASE + f"sso: {section}\n", Path("interlock.yaml"))
    text = str(raised.value)
    assert "interlock.yaml:4:" in text, text
    assert message in text, text


def test_a_good_sso_section_loads():
    config = parse_config(
        BASE
        + "sso:\n  issuer: https://idp.example.com\n  client_id: interlock\n"
        + "  client_secret: ${OIDC_SECRET}\n  groups: {ops: {roles: [release-managers]}}\n",
        Path("interlock.yaml"),
    )
    assert config.sso is not None
    assert config.sso.client_secret == "${OIDC_SECRET}"
    assert config.sso.groups["ops"].roles == ["release-managers"]


@pytest.mark.parametrize(
    ("asked", "returned"),
    [
        ("/ui/releases/7", "/ui/releases/7"),
        ("/auth/cli?port=5000&state=s", "/auth/cli?port=5000&state=s"),
        ("https://evil.test/", "/ui/releases"),
        ("//evil.test/ui/", "/ui/releases"),
        ("/ui//evil.test", "/ui/releases"),
        ("/ui/\\evil.test", "/ui/releases"),
        ("/auth/sso/login", "/ui/releases"),
        (None, "/ui/releases"),
    ],
)
def test_a_sign_in_returns_only_to_a_page_of_this_server(asked, returned):
    assert _safe_return(asked) == returned

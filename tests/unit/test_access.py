"""Default-deny permissions: subjects, actions, environments, services, ownership."""

from __future__ import annotations

import textwrap
from pathlib import Path

from interlock.engine.access import Access
from interlock.engine.identity import Principal
from interlock.spec.loader import parse_config

CONFIG = textwrap.dedent("""\
    version: 1
    permissions:
      - {team: payments, allow: [release.create], services: owned}
      - {role: sre, allow: [lock, rollback], environments: [production]}
      - {user: ci, allow: [release.create], environments: [staging]}
      - {everyone: true, allow: [config.read]}
      - {role: oncall, allow: [runbook.run, runbook.sign]}
    environments: [{name: staging}, {name: production}]
    services:
      api: {owner: payments, deploy: [{name: a, run: "true"}]}
      web: {owner: web, deploy: [{name: a, run: "true"}]}
    """)


class Holder:
    def __init__(self) -> None:
        config = parse_config(CONFIG, Path("interlock.yaml"))
        self.config = config

    def active(self):
        return self


ACCESS = Access(Holder())  # type: ignore[arg-type]


def who(name: str, roles=(), teams=(), kind="user") -> Principal:
    return Principal(name, kind, frozenset(roles), frozenset(teams))


def test_nothing_is_allowed_without_a_rule():
    nobody = who("nobody")
    assert not ACCESS.allows(nobody, "release.create", environment="staging", services=["api"])
    assert not ACCESS.can_read(nobody, ["api"])
    assert ACCESS.allows(nobody, "config.read")  # `everyone` rule


def test_admins_may_do_everything():
    assert ACCESS.allows(who("root", roles=["admin"]), "users.manage")


def test_owned_services_only():
    dave = who("dave", teams=["payments"])
    assert ACCESS.allows(dave, "release.create", environment="production", services=["api"])
    assert not ACCESS.allows(
        dave, "release.create", environment="production", services=["api", "web"]
    )
    assert ACCESS.can_read(dave, ["api", "web"]) and not ACCESS.can_read(dave, ["web"])


def test_environment_scope():
    carol = who("carol", roles=["sre"])
    assert ACCESS.allows(carol, "lock", environment="production")
    assert not ACCESS.allows(carol, "lock", environment="staging")
    ci = who("ci", kind="service")
    assert ACCESS.allows(ci, "release.create", environment="staging", services=["web"])
    assert not ACCESS.allows(ci, "release.create", environment="production", services=["web"])


def test_refusal_names_what_is_missing():
    try:
        ACCESS.require(who("eve"), "rollback", environment="production", services=["api"])
    except Exception as exc:  # noqa: BLE001
        assert "eve may not rollback in production for api" in str(exc)
        assert exc.http_status == 403  # type: ignore[attr-defined]
    else:
        raise AssertionError("allowed")


def test_running_and_signing_runbooks_reads_runs_not_releases():
    olga = who("olga", roles=["oncall"])
    assert ACCESS.readable_services(olga) == set()
    assert not ACCESS.can_read(olga, ["api"])
    assert ACCESS.allows(olga, "runbook.sign", environment="production")

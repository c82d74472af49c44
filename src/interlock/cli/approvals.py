"""``interlock approve``, ``reject``, ``approvals`` and break-glass ``override``."""

from __future__ import annotations

import click

from interlock.cli.client import Client
from interlock.cli.output import FORMAT_OPTION, emit_json, table
from interlock.cli.paging import listed, page_options


def _decide(
    release_id: int, decision: str, env: str | None, gate: str | None, comment: str | None, fmt: str
) -> None:
    found = Client().post(
        f"/api/v1/releases/{release_id}/approvals",
        {"decision": decision, "environment": env, "gate": gate, "comment": comment},
    )
    if fmt == "json":
        emit_json(found)
        return
    verb = "approved" if decision == "approve" else "rejected"
    note = "" if found["recorded"] else " (you had already done so)"
    click.echo(
        f"{verb} release {release_id} in {found['environment']} "
        f"(gate {found['gate']}: {found['gate_state']}){note}"
    )


@click.command()
@click.argument("release_id", type=int)
@click.option("--env", "env", metavar="ENV", help="Default: where the release waits now.")
@click.option("--gate", help="The approval gate, when the environment has several.")
@click.option("--comment", help="What you checked.")
@FORMAT_OPTION
def approve(
    release_id: int, env: str | None, gate: str | None, comment: str | None, fmt: str
) -> None:
    """Approve a release in an environment (ahead of time with --env)."""
    _decide(release_id, "approve", env, gate, comment, fmt)


@click.command()
@click.argument("release_id", type=int)
@click.option("--comment", required=True, help="Why: mandatory.")
@click.option("--env", "env", metavar="ENV", help="Default: where the release waits now.")
@click.option("--gate", help="The approval gate, when the environment has several.")
@FORMAT_OPTION
def reject(release_id: int, comment: str, env: str | None, gate: str | None, fmt: str) -> None:
    """Reject a release: its deployment in that environment ends."""
    _decide(release_id, "reject", env, gate, comment, fmt)


@click.command()
@page_options
@FORMAT_OPTION
def approvals(cursor: int | None, every: bool, limit: int | None, fmt: str) -> None:
    """What waits on me: approvals where mine is one of those still needed, and manual
    steps I can sign off."""
    with Client() as client:
        found = listed(client, "/api/v1/approvals/pending", cursor=cursor, every=every, limit=limit)
    if fmt == "json":
        emit_json(found)
        return
    rows = [
        {
            "release": p["release"] or f"run {p['run']}",
            "env": p["environment"] or "",
            "gate": p.get("gate") or p.get("step"),
            "items": " ".join(p["items"]),
            "by": p["created_by"],
            "since": p["waiting_since"],
            "needs": (
                f"sign-off by {p['signer']}: {p['sign']}"
                if p.get("kind") == "manual"
                else "; ".join(f"{r['rule']} ({r['missing']} more)" for r in p["rules"])
            ),
            "reason": p["reason"][:50],
        }
        for p in found
    ]
    table(
        rows,
        [
            ("release", "RELEASE"),
            ("env", "ENV"),
            ("gate", "GATE/STEP"),
            ("items", "SERVICES"),
            ("by", "BY"),
            ("needs", "NEEDS"),
            ("reason", "REASON"),
        ],
        empty="nothing waits on you",
    )


@click.group()
def override() -> None:
    """Break-glass overrides of deploy windows and freezes (audited, reviewed after)."""


@override.command("create")
@click.argument("release_id", type=int)
@click.option("--env", "env", required=True, metavar="ENV")
@click.option("--reason", required=True, help="Why the window must be broken: mandatory.")
@FORMAT_OPTION
def create(release_id: int, env: str, reason: str, fmt: str) -> None:
    """Let a release through a closed window or a freeze in ENV."""
    found = Client().post(
        f"/api/v1/releases/{release_id}/overrides", {"environment": env, "reason": reason}
    )
    if fmt == "json":
        emit_json(found)
        return
    click.echo(
        f"override {found['id']}: release {release_id} may enter {env} outside its "
        "window; flagged for review"
    )


@override.command("list")
@click.option("--unreviewed", is_flag=True, help="Only those not reviewed yet.")
@page_options
@FORMAT_OPTION
def list_(unreviewed: bool, cursor: int | None, every: bool, limit: int | None, fmt: str) -> None:
    """Overrides, newest first."""
    with Client() as client:
        found = listed(
            client,
            "/api/v1/overrides",
            cursor=cursor,
            every=every,
            limit=limit,
            unreviewed=str(unreviewed).lower(),
        )
    if fmt == "json":
        emit_json(found)
        return
    rows = [
        {
            "id": o["id"],
            "release": o["release_id"],
            "env": o["environment"],
            "by": o["actor"],
            "at": o["created_at"],
            "reason": o["reason"][:60],
            "reviewed": o["reviewed_by"] or "NOT REVIEWED",
        }
        for o in found
    ]
    table(
        rows,
        [
            ("id", "ID"),
            ("release", "RELEASE"),
            ("env", "ENV"),
            ("by", "BY"),
            ("at", "AT"),
            ("reason", "REASON"),
            ("reviewed", "REVIEWED BY"),
        ],
        empty="no overrides",
    )


@override.command("review")
@click.argument("override_id", type=int)
@click.option("--comment", required=True)
def review(override_id: int, comment: str) -> None:
    """Record your review of an override (not your own)."""
    Client().post(f"/api/v1/overrides/{override_id}/review", {"comment": comment})
    click.echo(f"override {override_id} reviewed")


@click.command()
@click.argument("environment")
@click.option("--reason", required=True)
def lock(environment: str, reason: str) -> None:
    """Stop every deploy to ENVIRONMENT until it is unlocked."""
    Client().post(f"/api/v1/environments/{environment}/lock", {"reason": reason})
    click.echo(
        f"{environment} locked: deployments there wait until `interlock unlock {environment}`"
    )


@click.command()
@click.argument("environment")
def unlock(environment: str) -> None:
    """Let deploys to ENVIRONMENT start again."""
    Client().delete(f"/api/v1/environments/{environment}/lock")
    click.echo(f"{environment} unlocked")

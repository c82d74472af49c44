"""Entry point of the ``interlock`` command.

Sub-commands are imported only when run, so ``interlock --help`` stays fast:
the table below holds each command's module and its one-line help.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

import click

from interlock import __version__

# name: (module:attribute, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("interlock.cli.offline:init", "Write a commented interlock.yaml to start from."),
    "validate": ("interlock.cli.offline:validate", "Check interlock.yaml; no server needed."),
    "plan": ("interlock.cli.offline:plan", "Show exactly what a release would do."),
    "schema": ("interlock.cli.offline:schema", "Print the JSON Schema of interlock.yaml."),
    "server": ("interlock.cli.serve:server", "Run the API, the scheduler and workers."),
    "worker": ("interlock.cli.serve:worker", "Run extra workers against PostgreSQL."),
    "db": ("interlock.cli.database:db", "Database schema: upgrade, current revision."),
    "config": ("interlock.cli.configs:config", "Show, diff, reload or review the server's config."),
    "release": ("interlock.cli.releases:release", "Create, watch, show, list, cancel releases."),
    "status": ("interlock.cli.status:status", "Which version runs where, since when, from what."),
    "diff": ("interlock.cli.insight:diff", "Which services and commits differ between two envs."),
    "calendar": ("interlock.cli.insight:calendar", "Scheduled releases and freezes (and a feed)."),
    "audit": (
        "interlock.cli.audit:audit",
        "Read, verify, checkpoint and export the audit log; evidence for auditors.",
    ),
    "assess": ("interlock.cli.assess:assess", "Diagnose manual release coordination offline."),
    "metrics": ("interlock.cli.metrics:metrics", "Delivery metrics from the records, defined."),
    "approve": ("interlock.cli.approvals:approve", "Approve a release in an environment."),
    "reject": ("interlock.cli.approvals:reject", "Reject a release (a comment is mandatory)."),
    "approvals": ("interlock.cli.approvals:approvals", "What waits on me: approvals, sign-offs."),
    "override": ("interlock.cli.approvals:override", "Break-glass overrides of windows."),
    "lock": ("interlock.cli.approvals:lock", "Stop every deploy to an environment."),
    "unlock": ("interlock.cli.approvals:unlock", "Let deploys to an environment start again."),
    "artifact": ("interlock.cli.artifacts:artifact", "Builds registered by CI, by digest."),
    "rollback": ("interlock.cli.recovery:rollback", "Put a service back on a good version."),
    "resolve": ("interlock.cli.recovery:resolve", "Decide about a step that needs attention."),
    "incident": ("interlock.cli.recovery:incident", "Open, resolve and list incidents."),
    "webhook": ("interlock.cli.events:webhook", "Outbound webhooks: status, skip, retry."),
    "notify": ("interlock.cli.notify:notify", "Messages to people: channels, delivery log, test."),
    "runbook": ("interlock.cli.recovery:runbook", "Runbooks: list, run, show, sign."),
    "user": ("interlock.cli.identity:user", "People and service accounts."),
    "token": ("interlock.cli.identity:token", "API tokens: create, list, revoke."),
    "login": ("interlock.cli.login:login", "Sign in through the browser (single sign-on)."),
    "logout": ("interlock.cli.login:logout", "Revoke and forget the token of `login`."),
    "role": ("interlock.cli.identity:role", "Members of a role."),
    "team": ("interlock.cli.identity:team", "Members of a team."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        module_name, attribute = target.split(":")
        # An import makes many objects and few cycles: the collector, run hundreds of
        # times while `server` imports its modules, finds next to nothing (~8% of them).
        collecting = gc.isenabled()
        gc.disable()
        try:
            module = importlib.import_module(module_name)
        finally:
            if collecting:
                gc.enable()
        command: click.Command = getattr(module, attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="interlock")
def cli() -> None:
    """Interlock: declare, gate, run, verify and audit releases.

    Set INTERLOCK_URL (default http://127.0.0.1:8520) and INTERLOCK_TOKEN to
    talk to a server. Exit codes: 0 ok, 1 failed, 2 invalid input, 3 server
    unreachable, 4 not allowed, 5 not found, 6 conflict, 7 needs attention,
    8 timed out.
    """


def main(argv: list[str] | None = None) -> Any:
    from interlock.cli.output import run

    return run(cli, argv if argv is not None else sys.argv[1:])

"""The tables. Alembic migrations under ``migrations/`` create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.expression import type_coerce

from interlock.storage.types import Json, Timestamp

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

config_versions = Table(
    "config_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("loaded_at", Timestamp, nullable=False),
    Column("loaded_by", String(128), nullable=False),
)

# A reload waiting for approval (config_changes.review): the bundle it would store, the
# diff against the version it was compared with, who asked and why, who approved.
config_changes = Table(
    "config_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("base_version", Integer, ForeignKey("config_versions.version"), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("diff", Json, nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_by", String(128), nullable=False),
    Column("requested_at", Timestamp, nullable=False),
    Column("state", String(16), nullable=False),  # pending, applied, rejected, superseded
    Column("approvals", Json, nullable=False),  # [{by, at, comment}]
    Column("decided_by", String(128)),
    Column("decided_at", Timestamp),
    Column("version", Integer),  # the config version it became, once applied
    Index("ix_config_changes_state", "state"),
)

releases = Table(
    "releases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("created_by", String(128), nullable=False),
    # A service account (CI) creating a release for a person names that person:
    # they count as an author too, for separation of duties.
    Column("on_behalf_of", String(128)),
    Column("created_at", Timestamp, nullable=False),
    Column("state", String(32), nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    Column("scheduled_at", Timestamp),
    Column("config_version", Integer, ForeignKey("config_versions.version"), nullable=False),
    Column("environment", String(64)),  # where it is now (the latest deployment's)
    Column("error", Text),
    Column("revision", Integer, nullable=False, server_default=text("0")),
    Column("kind", String(16), nullable=False, server_default=text("'deploy'")),  # or rollback
    # Its environments in order, the plan's route: what lists show, without the plan.
    Column("route", Json, nullable=False, server_default=text("'[]'")),
    Index("ix_releases_state_id", "state", "id"),
    Index("ix_releases_scheduled_at", "scheduled_at"),  # metrics: schedule slip
)

# A release's plan, written once. Kept out of the releases row, which every step
# of the release updates (its revision): with the plan in the row, each update
# went through the plan again (1 MB for 2,000 steps, which ran at half the speed).
release_plans = Table(
    "release_plans",
    metadata,
    Column("release_id", Integer, ForeignKey("releases.id"), primary_key=True),
    Column("plan", Json, nullable=False),
)

release_items = Table(
    "release_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("release_id", Integer, ForeignKey("releases.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("service", String(64), nullable=False),
    Column("version", String(128), nullable=False),
    Column("digest", String(71)),
    Column("commit_sha", String(64)),
    UniqueConstraint("release_id", "service"),
    Index("ix_release_items_service_version", "service", "version"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("release_id", Integer, ForeignKey("releases.id")),
    Column("kind", String(16), nullable=False),  # deploy | rollback | runbook
    Column("environment", String(64)),
    Column("env_index", Integer, nullable=False, server_default=text("0")),
    Column("state", String(32), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("started_at", Timestamp),
    Column("finished_at", Timestamp),
    Column("error", Text),
    # What ran in the environment when the deployment started: {service: {version, digest}}.
    Column("previous", Json, nullable=False),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    # Why the deployment is being stopped as a failure (deadline, blocked artifact); it
    # then takes the environment's on_failure path (roll back, pause or fail).
    Column("abort_reason", Text),
    # The environment's rules as planned (on_failure, parallel, deadline, …).
    Column("settings", Json),
    Column("runbook", String(64)),  # kind runbook: which one, with what, for which incident
    Column("params", Json),
    Column("incident_id", Integer),
    Column("parent_node_id", Integer),  # a runbook run started by a pipeline step
    Index("ix_deployments_release_id", "release_id"),
    Index("ix_deployments_environment_state", "environment", "state"),
    # metrics (migration 0004): what finished in a period, counted inside the index
    Index(
        "ix_deployments_kind_finished_at",
        "kind",
        "finished_at",
        "environment",
        "state",
        "release_id",
        "started_at",
    ),
)

nodes = Table(
    "nodes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment_id", Integer, ForeignKey("deployments.id"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # step | gate
    Column("service", String(64)),
    Column("name", String(128), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("position", Integer, nullable=False),
    Column("needs", Json, nullable=False),
    # Graph bookkeeping kept on the rows so finishing a node costs the same
    # whatever the size of the graph: how many needs are still open, and
    # which nodes wait on this one.
    Column("unmet", Integer, nullable=False, server_default=text("0")),
    Column("dependents", Json, nullable=False),
    Column("executor", String(64), nullable=False),
    Column("spec", Json, nullable=False),
    Column("timeout", Float, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("backoff", Float, nullable=False),
    Column("idempotent", Boolean, nullable=False),
    Column("state", String(32), nullable=False),
    Column("attempt", Integer, nullable=False, server_default=text("0")),
    Column("not_before", Timestamp),
    Column("lease_owner", String(128)),
    Column("lease_expires", Timestamp),
    Column("fence", Integer, nullable=False, server_default=text("0")),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    Column("started_at", Timestamp),
    Column("finished_at", Timestamp),
    Column("error", Text),
    Column("result", Json),
    UniqueConstraint("deployment_id", "key"),
    # Covers a deployment's count of nodes per (phase, state), read at every step:
    # without the phase, a 2,000-node deployment read 2,000 rows each time.
    Index("ix_nodes_deployment_id_state_phase", "deployment_id", "state", "phase"),
    # Claims and lease recovery only ever look at open nodes: partial indexes keep
    # them fast however much history piles up.
    Index(
        "ix_nodes_ready",
        "not_before",
        "id",
        sqlite_where=text("state = 'ready'"),
        postgresql_where=text("state = 'ready'"),
    ),
    Index(
        "ix_nodes_waiting",
        "executor",
        sqlite_where=text("state = 'waiting'"),
        postgresql_where=text("state = 'waiting'"),
    ),
    Index(
        "ix_nodes_leased",
        "lease_expires",
        sqlite_where=text("state = 'running'"),
        postgresql_where=text("state = 'running'"),
    ),
    # metrics (migration 0004): approval waits and step runs that finished in a period
    Index(
        "ix_nodes_kind_finished_at",
        "kind",
        "finished_at",
        "executor",
        "deployment_id",
        "started_at",
        "state",  # (migration 0006) step runs by outcome stay in the index
    ),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("node_id", Integer, ForeignKey("nodes.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker", String(128), nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    Column("outcome", String(32)),
    Column("exit_code", Integer),
    Column("error", Text),
    Column("log", Text, nullable=False, server_default=text("''")),
    Column("log_size", Integer, nullable=False, server_default=text("0")),
    Column("log_truncated", Boolean, nullable=False, server_default=text("false")),
    # A step's durable identity, and its idempotency key: (deployment, step, attempt).
    UniqueConstraint("node_id", "attempt"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", Timestamp, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(255), nullable=False),
    Column("body", Text, nullable=False),  # the canonical JSON that is hashed
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_object", "object_type", "object_id"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

inventory = Table(
    "inventory",
    metadata,
    Column("service", String(64), primary_key=True),
    Column("environment", String(64), primary_key=True),
    Column("version", String(128), nullable=False),
    Column("digest", String(71)),
    Column("release_id", Integer, ForeignKey("releases.id")),
    Column("deployment_id", Integer, ForeignKey("deployments.id")),
    Column("deployed_at", Timestamp, nullable=False),
    Column("deployed_by", String(128), nullable=False),
)

# -- identity, approvals and locks (migration 0002) -------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # user | service
    Column("display_name", String(200)),
    Column("email", String(200)),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", Timestamp, nullable=False),
    Column("created_by", String(128), nullable=False),
)
# Unique regardless of case: Alice and alice are one person (migration 0009).
Index("ix_users_name_lower", func.lower(users.c.name), unique=True)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("prefix", String(16), nullable=False),  # shown in lists; not a secret
    Column("hash", String(64), nullable=False, unique=True),  # sha256 of the secret
    Column("created_at", Timestamp, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("expires_at", Timestamp),
    Column("revoked_at", Timestamp),
    Column("revoked_by", String(128)),
    Column("last_used_at", Timestamp),
    Index("ix_tokens_user_id", "user_id"),
)

# Browser sessions of people signed in with single sign-on (migration 0014): the
# cookie holds a random secret, the table only its SHA-256.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("ended_at", Timestamp),
    Index("ix_web_sessions_user_id", "user_id"),
)

# A sign-in under way: the browser went to the provider with this state (its
# SHA-256 is the key); the nonce and the PKCE verifier wait here for its return.
sso_logins = Table(
    "sso_logins",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("nonce", String(128), nullable=False),
    Column("verifier", String(128), nullable=False),
    Column("return_to", Text, nullable=False),
    Column("redirect_url", Text, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)

# `interlock login`: a person allowed the command line in the browser; the CLI
# trades the code (its SHA-256 is the key) and its PKCE verifier for an API token.
cli_grants = Table(
    "cli_grants",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("challenge", String(64), nullable=False),
    Column("token_name", String(128), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("kind", String(8), primary_key=True),  # role | team
    Column("group_name", String(64), primary_key=True),
    Column("user_name", String(128), primary_key=True),
    Column("added_by", String(128), nullable=False),
    Column("added_at", Timestamp, nullable=False),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("release_id", Integer, ForeignKey("releases.id"), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("gate", String(200), nullable=False),
    Column("approver", String(128), nullable=False),
    Column("decision", String(16), nullable=False),  # approve | reject
    Column("comment", Text),
    Column("content_hash", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp),
    UniqueConstraint("release_id", "environment", "gate", "approver", "content_hash", "decision"),
    Index("ix_approvals_release_id_environment", "release_id", "environment"),
)

overrides = Table(
    "overrides",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("release_id", Integer, ForeignKey("releases.id"), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("gate", String(200), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("reviewed_by", String(128)),
    Column("reviewed_at", Timestamp),
    Column("review_comment", Text),
    Index("ix_overrides_release_id", "release_id"),
)

environment_locks = Table(
    "environment_locks",
    metadata,
    Column("environment", String(64), primary_key=True),
    Column("locked_by", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("locked_at", Timestamp, nullable=False),
)

# -- artifacts, trains, recovery, runbooks (migration 0003) -------------------------

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("service", String(64), nullable=False),
    Column("version", String(128), nullable=False),
    Column("digest", String(71)),  # none only for a version blocked before it was registered
    Column("commit_sha", String(64)),
    Column("repo", Text),
    Column("build_url", Text),
    Column("committed_at", Timestamp),
    Column("registered_at", Timestamp, nullable=False),
    Column("registered_by", String(128), nullable=False),
    Column("blocked_at", Timestamp),
    Column("blocked_by", String(128)),
    Column("block_reason", Text),
    UniqueConstraint("service", "version"),
)

observations = Table(
    "observations",
    metadata,
    Column("service", String(64), primary_key=True),
    Column("environment", String(64), primary_key=True),
    Column("version", String(128), nullable=False),
    Column("observed_at", Timestamp, nullable=False),
    Column("observed_by", String(128), nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("service", String(64)),
    Column("environment", String(64), nullable=False),
    Column("summary", Text, nullable=False),
    Column("state", String(16), nullable=False),  # open | resolved
    Column("opened_at", Timestamp, nullable=False),
    Column("opened_by", String(128), nullable=False),
    Column("deployment_id", Integer, ForeignKey("deployments.id")),
    Column("release_id", Integer, ForeignKey("releases.id")),
    Column("resolved_at", Timestamp),
    Column("resolved_by", String(128)),
    Column("resolution", String(16)),  # manual | rollback | fix
    Column("resolved_by_deployment", Integer, ForeignKey("deployments.id")),
    Column("resolution_note", Text),
    Index("ix_incidents_state", "state", "environment"),
    # metrics (migration 0004): change failures, time to restore, rework
    Index("ix_incidents_deployment_id", "deployment_id"),
    Index(
        "ix_incidents_environment_opened_at",
        "environment",
        "opened_at",
        "service",
        "resolved_at",
        "deployment_id",  # (migration 0006) incident counts stay in the index
    ),
    # delivery facts (migration 0006): was an incident of this service open at a time
    Index(
        "ix_incidents_service_environment_opened_at",
        "service",
        "environment",
        "opened_at",
        "resolved_at",
    ),
    # /metrics sums the restores since its mark (migration 0022)
    Index("ix_incidents_resolved_at", "resolved_at", "environment", "opened_at"),
)


def restore_seconds() -> ColumnElement[float]:
    """An incident's time to restore in seconds (NULL while open), as its index spells it."""
    return type_coerce(incidents.c.resolved_at, Float()) - type_coerce(
        incidents.c.opened_at, Float()
    )


# time to restore in value order (migration 0006): a quantile walks it, nothing sorts
Index(
    "ix_incidents_restore",
    incidents.c.environment,
    restore_seconds(),
    incidents.c.opened_at,
    incidents.c.service,
)

signoffs = Table(
    "signoffs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("node_id", Integer, ForeignKey("nodes.id"), nullable=False),
    Column("signer", String(128), nullable=False),
    Column("comment", Text),
    Column("signed_at", Timestamp, nullable=False),
    UniqueConstraint("node_id", "signer"),
)

# -- events in and out (migration 0005) ----------------------------------------------

webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    # The audit log is the outbox: every event up to this sequence number was delivered
    # (answered 2xx) or is not for this webhook.
    Column("delivered_seq", Integer, nullable=False),
    Column("started_seq", Integer, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("last_success_at", Timestamp),
    Column("last_error", Text),
    Column("last_error_at", Timestamp),
    Column("failures", Integer, nullable=False, server_default=text("0")),  # in a row
    Column("next_attempt_at", Timestamp),  # backing off until then
)

event_receipts = Table(
    "event_receipts",
    metadata,
    # sha256 of (source, id, type): a sender's retry of the same event is recognised.
    Column("key", String(64), primary_key=True),
    Column("source", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("type", String(128), nullable=False),
    Column("subject_key", String(64)),  # sha256 of (subject source, subject id)
    Column("received_at", Timestamp, nullable=False),
    Column("received_by", String(128), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text),
    Column("incident_id", Integer),  # the incident an event opened (matched on resolve)
    # sha256 of the signed raw body (migration 0008): a replay under a new delivery id.
    Column("body_digest", String(64)),
    Index("ix_event_receipts_subject_key", "subject_key"),
    Index("ix_event_receipts_source_body_digest", "source", "body_digest", unique=True),
)

# -- delivery facts (migration 0006) ------------------------------------------------
# What the delivery metrics measure, derived from the tables above and kept in step
# with them in the transaction that changes them (interlock.storage.facts.delivery): one
# narrow row per finished deployment and service, per decided approval gate and per
# deployment's step runs, and per-day sums of those rows. Times are epoch seconds;
# ``day`` is the UTC day number (seconds // 86400). The metrics read the sums for the
# whole days of a period and the rows for its partial first and last day.
delivery_facts = Table(
    "delivery_facts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment_id", Integer, nullable=False),
    Column("release_id", Integer),
    Column("position", Integer, nullable=False),  # 0: the row that stands for the deployment
    Column("service", String(64), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # deploy | rollback
    Column("state", String(32), nullable=False),
    Column("person", String(128)),  # who ran the release (on whose behalf, for CI)
    Column("started_at", Float(precision=53)),
    Column("finished_at", Float(precision=53), nullable=False),
    Column("day", Integer, nullable=False),
    Column("commit_key", String(128), nullable=False),
    Column("committed_at", Float(precision=53)),
    # the first successful deploy of this commit of this service to this environment
    Column("first", Integer, nullable=False, server_default=text("0")),
    Column("lead", Float(precision=53)),  # first only: finished_at - committed_at
    Column("rework", Integer, nullable=False, server_default=text("0")),  # this service's
    Column("rework_any", Integer, nullable=False, server_default=text("0")),  # any service's
    Column("named", Integer, nullable=False, server_default=text("0")),  # an incident names it
    Column("prev_started", Float(precision=53)),  # the pipeline's run before this one
    # the first failing deployment of an episode (failing until the next good one of
    # the service there) and how long until that good one (NULL: not yet restored)
    Column("episode", Integer, nullable=False, server_default=text("0")),
    Column("restored", Float(precision=53)),
    Index("ix_delivery_facts_deployment_id", "deployment_id"),
    Index(
        "ix_delivery_facts_scan",
        "environment",
        "finished_at",
        "kind",
        "state",
        "position",
        "service",
        "deployment_id",
        "release_id",
        "person",
    ),
    Index("ix_delivery_facts_lead", "environment", "first", "lead", "finished_at", "service"),
    Index("ix_delivery_facts_commit", "service", "environment", "commit_key"),
    Index("ix_delivery_facts_pipeline", "service", "environment", "kind", "started_at"),
    Index("ix_delivery_facts_day", "environment", "day"),
    Index(
        "ix_delivery_facts_episode", "environment", "episode", "restored", "finished_at", "service"
    ),
    Index("ix_delivery_facts_stream", "service", "environment", "finished_at"),
)

delivery_gates = Table(
    "delivery_gates",
    metadata,
    Column("node_id", Integer, primary_key=True),  # a decided approval gate
    Column("deployment_id", Integer, nullable=False),
    Column("release_id", Integer),
    Column("environment", String(64), nullable=False),  # '' for a runbook run with none
    Column("finished_at", Float(precision=53), nullable=False),
    Column("wait", Float(precision=53), nullable=False),  # finished_at - started_at
    Index("ix_delivery_gates_deployment_id", "deployment_id"),
    Index("ix_delivery_gates_wait", "environment", "wait", "finished_at", "release_id"),
    # /metrics sums what was decided since its mark (migration 0022)
    Index("ix_delivery_gates_finished_at", "finished_at", "environment", "wait"),
)

delivery_steps = Table(
    "delivery_steps",
    metadata,
    Column("deployment_id", Integer, primary_key=True),
    Column("environment", String(64), primary_key=True),  # '' for a runbook run with none
    Column("day", Integer, primary_key=True),
    Column("service", String(64), primary_key=True),  # '' for a step of no service
    Column("manual", Integer, primary_key=True),  # 1: signed off by a person
    Column("runs", Integer, nullable=False),
    Index("ix_delivery_steps_day", "environment", "day"),
)

# A manual step run of a finished deployment (or runbook run), for the manual-step
# ranking (migration 0024): its sign-off time in value order per step, so a median
# walks an index and the runs of the history are never joined or sorted.
delivery_manual = Table(
    "delivery_manual",
    metadata,
    Column("node_id", Integer, primary_key=True),
    Column("deployment_id", Integer, nullable=False),
    Column("environment", String(64), nullable=False),  # '' for a runbook run with none
    Column("runbook", String(64), nullable=False),  # '' for a pipeline's step
    Column("service", String(64), nullable=False),  # '' for a step of no service
    Column("name", String(128), nullable=False),
    Column("finished_at", Float(precision=53), nullable=False),
    # finished_at - started_at (0 if negative) of a step signed off; NULL otherwise
    Column("wait", Float(precision=53)),
    Index("ix_delivery_manual_deployment_id", "deployment_id"),
    Index(
        "ix_delivery_manual_step",
        "environment",
        "runbook",
        "service",
        "name",
        "wait",
        "finished_at",
    ),
)

delivery_days = Table(
    "delivery_days",
    metadata,
    Column("environment", String(64), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("service", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),
    # deployments (counted once, on their position-0 row)
    Column("attempted", Integer, nullable=False),
    Column("succeeded", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("rollbacks", Integer, nullable=False),
    Column("rework", Integer, nullable=False),
    Column("named", Integer, nullable=False),
    Column("named_good", Integer, nullable=False),
    # pipeline runs (every row that started) and the gaps before them
    Column("runs", Integer, nullable=False),
    Column("run_failures", Integer, nullable=False),
    Column("gaps", Integer, nullable=False),
    Column("gap_sum", Float(precision=53), nullable=False),
    Column("gap_square", Float(precision=53), nullable=False),
    # lead times of the commits first deployed here
    Column("leads", Integer, nullable=False),
    Column("lead_sum", Float(precision=53), nullable=False),
    Column("lead_skewed", Integer, nullable=False),
    Column("lead_unknown", Integer, nullable=False),
)

delivery_people = Table(
    "delivery_people",
    metadata,
    Column("environment", String(64), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("person", String(128), primary_key=True),  # '' for nobody recorded
    Column("releases", Integer, nullable=False),
)

delivery_step_days = Table(
    "delivery_step_days",
    metadata,
    Column("environment", String(64), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("service", String(64), primary_key=True),
    Column("manual", Integer, primary_key=True),
    Column("runs", Integer, nullable=False),
)

delivery_slips = Table(
    "delivery_slips",
    metadata,
    Column("release_id", Integer, primary_key=True),  # a scheduled release that started
    Column("scheduled_at", Float(precision=53), nullable=False),
    Column("slip", Float(precision=53), nullable=False),  # first deployment start - scheduled
    Index("ix_delivery_slips_scheduled_at", "scheduled_at", "slip"),
    Index("ix_delivery_slips_slip", "slip", "scheduled_at", "release_id"),
)

# The Prometheus exposition's totals over the history up to ``mark`` (one row per
# set of histogram bounds), saved by a server once summed so that the next process
# starts from them. ``generation`` grows each time a change behind the mark (or a
# rebuild of the delivery facts) makes the saved totals stale (docs/metrics.md).
metric_marks = Table(
    "metric_marks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("mark", Float(precision=53), nullable=True),
    Column("totals", Json, nullable=True),
    Column("saved_at", Float(precision=53), nullable=True),
)

# Per-day counts of what the Prometheus exposition sums over the history, kept by
# triggers on the tables they count (interlock.storage.metric_days, migration 0020).
metric_days = Table(
    "metric_days",
    metadata,
    Column("family", String(16), primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("a", String(128), primary_key=True),
    Column("b", String(128), primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("events", Integer, nullable=False),
    Column("total", Float(precision=53), nullable=False),
)

# The per-day counts of whole blocks of ``BLOCK`` (28) days, moved out of metric_days
# once the block is past (interlock.storage.metric_days, migration 0022): a day's
# count is in one table or the other, and summing the history reads a few rows per
# block instead of per day.
metric_blocks = Table(
    "metric_blocks",
    metadata,
    Column("family", String(16), primary_key=True),
    Column("block", Integer, primary_key=True),  # day // BLOCK
    Column("a", String(128), primary_key=True),
    Column("b", String(128), primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("events", Integer, nullable=False),
    Column("total", Float(precision=53), nullable=False),
)

# -- notifications to people (docs/notifications.md) ---------------------------------
notify_outbox = Table(
    "notify_outbox",
    metadata,
    # Written in the transaction of the event it tells of; delivered in id order per channel.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    Column("event", String(64), nullable=False),
    Column("recipient", String(320)),  # an e-mail address, for personal messages
    Column("subject", String(128), nullable=False),  # what it is about: release:5
    Column("payload", Json, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", Timestamp),  # backing off until then
    Column("claimed_until", Timestamp),  # a sender holds it until then
    Column("delivered_at", Timestamp),
    Column("last_error", Text),
    Index("ix_notify_outbox_channel_state_id", "channel", "state", "id"),
)

approval_links = Table(
    "approval_links",
    metadata,
    Column("id", String(32), primary_key=True),  # random; the link carries it, signed
    Column("release_id", Integer, nullable=False),
    Column("environment", String(64), nullable=False),
    Column("gate", String(128), nullable=False),
    Column("approver", String(128), nullable=False),
    Column("content_hash", String(64), nullable=False),  # the release's content
    Column("gate_digest", String(64), nullable=False),  # the gate's planned spec
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp),
    Column("used_decision", String(16)),
)

notify_timers = Table(
    "notify_timers",
    metadata,
    # remind | escalate, per waiting gate; a due timer fires in one transaction with
    # the messages it writes, so a crash never sends one twice.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("node_id", Integer, nullable=False),
    Column("due_at", Timestamp, nullable=False),
    Column("fired", Integer, nullable=False, server_default=text("0")),
    Column("done", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("kind", "node_id"),
    Index("ix_notify_timers_done_due_at", "done", "due_at"),
)

gate_escalations = Table(
    "gate_escalations",
    metadata,
    # a waiting approval gate escalated to a role or team: its members may approve
    # it too (written with the escalation's audit event, in one transaction).
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # role | team
    Column("group_name", String(128), nullable=False),
    Column("at", Timestamp, nullable=False),
    UniqueConstraint("node_id", "kind", "group_name"),
)

notify_keys = Table(
    "notify_keys",
    metadata,
    # the key approval links are signed with, made on first use (or INTERLOCK_LINK_KEY)
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

slack_replays = Table(
    "slack_replays",
    metadata,
    # Slack request signatures seen within the 5-minute window: a replay is refused.
    Column("signature", String(80), primary_key=True),
    Column("at", Timestamp, nullable=False),
)

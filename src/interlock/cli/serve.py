"""``interlock server`` and ``interlock worker``: the long-running processes.

What they run (the API, the engine, the lifecycle) is imported when they start, not
with this module: ``interlock server --help`` and a refused option answer at once.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from interlock.cli.logs import configure as _logging
from interlock.cli.logs import mask_secrets
from interlock.cli.settings import CONFIG_OPTION, DATABASE_OPTION, default_database_url, home

log = logging.getLogger("interlock")
F = TypeVar("F", bound=Callable[..., Any])


def _check_port(host: str, port: int) -> None:
    import socket

    from interlock.errors import Conflict

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise Conflict(
                f"cannot listen on {host}:{port}: {exc.strerror}; is another server running? "
                "Use --port to pick another port."
            ) from None


def _bootstrap_admin(engine: Any) -> None:
    """On the very first start, create the admin and show its token once."""
    from interlock.engine.identity import Identity

    identity = Identity(engine)
    secret = identity.bootstrap(home())
    if secret is None:
        return
    path = home() / "admin.token"
    kept = (
        f"The admin token that was there (another database's) is kept in {identity.kept_token}.\n"
        if identity.kept_token
        else ""
    )
    click.echo(
        "\nInterlock created the first administrator, 'admin'. Its API token, shown only "
        f"this once:\n\n    {secret}\n\nIt is also in {path} (readable only by you); the CLI "
        f"on this machine uses it when INTERLOCK_TOKEN is unset.\n{kept}Give each person their "
        "own: `interlock user add NAME` and `interlock token create --user NAME`.\n",
        err=True,
    )


LOG_LIMIT_OPTION = click.option(
    "--log-limit",
    default=1024 * 1024,
    show_default=True,
    type=click.IntRange(1024, 1024**3),
    envvar="INTERLOCK_LOG_LIMIT",
    help="Bytes of each step's output kept from its start (its end is kept too).",
)


DRAIN_OPTION = click.option(
    "--drain",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0),
    envvar="INTERLOCK_DRAIN",
    help="On SIGTERM or Ctrl-C, seconds running steps get to finish before they are "
    "stopped (and recovered: run again if idempotent, else left for a person). A second "
    "signal stops them at once. Env: INTERLOCK_DRAIN.",
)


class ByteSize(click.ParamType[int]):
    """A number of bytes: 1048576, 512KiB, 1MiB, 5 MB (pydantic's ByteSize)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from pydantic import ByteSize as Parsed
        from pydantic import TypeAdapter, ValidationError

        try:
            size = int(TypeAdapter(Parsed).validate_python(value))
        except ValidationError:
            self.fail(f"{value!r} is not a size: give bytes or e.g. 512KiB, 1MiB, 5MB", param, ctx)
        if not 1 <= size <= 1 << 30:
            self.fail(f"{value!r} is out of range: between 1 byte and 1GiB", param, ctx)
        return size


def _body_option(flag: str, env: str, default: str, what: str) -> Callable[[F], F]:
    return click.option(
        flag,
        default=default,
        show_default=True,
        type=ByteSize(),
        envvar=env,
        help=f"The largest request body {what} (413 beyond it). Env: {env}.",
    )


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from interlock.domain.durations import parse_positive_duration

    try:
        return parse_positive_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def audit_checkpoint_options(command: Any) -> Any:
    """--audit-checkpoints and --audit-checkpoint-every, on every process that may lead."""
    command = click.option(
        "--audit-checkpoint-every",
        "checkpoint_every",
        default="1h",
        show_default=True,
        callback=_duration,
        envvar="INTERLOCK_AUDIT_CHECKPOINT_EVERY",
        help="How often the scheduler's leader publishes a checkpoint (90s, 15m, 1h). "
        "Env: INTERLOCK_AUDIT_CHECKPOINT_EVERY.",
    )(command)
    return click.option(
        "--audit-checkpoints",
        "checkpoints",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar="INTERLOCK_AUDIT_CHECKPOINTS",
        help="A directory outside the database where the audit chain's head is appended "
        "(audit-checkpoints.jsonl); `audit verify` checks against the newest one. "
        "Env: INTERLOCK_AUDIT_CHECKPOINTS.",
    )(command)


def _log_checkpoints(engine: Any) -> None:
    from interlock.domain.durations import format_duration
    from interlock.engine.checkpoints import checkpoints_path

    path = checkpoints_path(engine)
    if path is not None:
        log.info(
            "audit checkpoints are published to %s every %s (while this process leads)",
            path,
            format_duration(engine.settings.audit_checkpoint_every),
        )


# Open requests (long polls of `release watch`) get this long once the server stops.
HTTP_SHUTDOWN_GRACE = 2


def _engine(
    database_url: str | None,
    lease_ttl: float,
    tick: float,
    pool_size: int = 10,
    log_limit: int = 1024 * 1024,
    checkpoints: Path | None = None,
    checkpoint_every: float = 3600.0,
) -> Any:
    from interlock.engine.core import Engine, Settings
    from interlock.notifications import install
    from interlock.storage.db import Database

    db = Database(database_url or default_database_url(), pool_size=pool_size)
    settings = Settings(
        lease_ttl=lease_ttl,
        tick=tick,
        log_limit=log_limit,
        audit_checkpoints=checkpoints.resolve() if checkpoints else None,
        audit_checkpoint_every=checkpoint_every,
    )
    engine = Engine(db, settings=settings)
    install(engine)  # every event's messages to people are written with it (the outbox)
    return engine


def _load_config(configs: Any, config_path: Path) -> Any:
    """Store the config file as the active one, at start-up.

    Servers starting together on one PostgreSQL database may both try to
    store the same new version; the one that loses the race finds it stored
    when it tries again.
    """
    import time

    from interlock.errors import InterlockError

    for attempt in range(1, 4):
        try:
            return configs.load_file(config_path, actor="server")
        except InterlockError:
            raise
        except Exception:
            if attempt == 3:
                raise
            log.warning("storing the config failed (another server storing it?); retrying")
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


@click.command()
@CONFIG_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, envvar="INTERLOCK_HOST")
@click.option(
    "--port",
    default=8520,
    show_default=True,
    type=click.IntRange(1, 65535),
    envvar="INTERLOCK_PORT",
)
@DATABASE_OPTION
@click.option(
    "--workers",
    default=4,
    show_default=True,
    type=click.IntRange(0, 256),
    help="Embedded worker threads (0: steps run only on `interlock worker`).",
)
@click.option(
    "--lease-ttl",
    default=30.0,
    show_default=True,
    type=float,
    envvar="INTERLOCK_LEASE_TTL",
    help="Seconds before a silent worker's steps are recovered.",
)
@click.option("--tick", default=1.0, show_default=True, type=float, hidden=True)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@LOG_LIMIT_OPTION
@DRAIN_OPTION
@_body_option("--max-body", "INTERLOCK_MAX_BODY", "1MiB", "of an API call")
@_body_option("--max-event-body", "INTERLOCK_MAX_EVENT_BODY", "1MiB", "of a CDEvent (/events)")
@_body_option(
    "--max-hook-body", "INTERLOCK_MAX_HOOK_BODY", "5MiB", "of a GitHub webhook (/hooks/github)"
)
@audit_checkpoint_options
def server(
    config_path: Path,
    host: str,
    port: int,
    database_url: str | None,
    workers: int,
    lease_ttl: float,
    tick: float,
    log_level: str,
    access_log: bool,
    log_limit: int,
    drain: float,
    max_body: int,
    max_event_body: int,
    max_hook_body: int,
    checkpoints: Path | None,
    checkpoint_every: float,
) -> None:
    """Run the API, the scheduler and embedded workers.

    Data lives in INTERLOCK_HOME (default ./.interlock): the SQLite database
    unless --database-url says otherwise. SIGHUP reloads the config. SIGTERM
    or Ctrl-C stops it: running steps get --drain seconds, then their process
    groups are stopped.
    """
    # Start-up builds a heap of long-lived objects (modules, the app, its routes and
    # models) that the collector would walk again and again for nothing: it is off
    # until the lifespan freezes that heap and turns it back on (~0.08 s of CPU a start).
    gc.disable()
    import uvicorn

    from interlock.api.app import create_app
    from interlock.api.bodies import BodyLimits
    from interlock.cli.lifecycle import ServerLifecycle, Shutdown
    from interlock.engine.runtime import Runtime
    from interlock.notifications.delivery import Notifier
    from interlock.storage.migrate import ensure_schema

    _logging(log_level)
    _check_port(host, port)
    home().mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = _engine(
        database_url,
        lease_ttl,
        tick,
        log_limit=log_limit,
        checkpoints=checkpoints,
        checkpoint_every=checkpoint_every,
    )
    mask_secrets(engine.secrets)
    lock = engine.db.hold_exclusive()
    ensure_schema(engine.db, create_if_empty=True)
    configs = engine.configs
    stored, changed = _load_config(configs, config_path)
    log.info(
        "config %s loaded as version %d%s",
        config_path,
        stored.version,
        "" if changed else " (unchanged)",
    )
    _bootstrap_admin(engine)
    runtime = Runtime(engine, workers=workers)
    shutdown = Shutdown(runtime)
    shutdown.install()
    notifier = Notifier(engine)  # sends the outbox and fires the reminders (docs/notifications.md)

    def reload(*_: Any) -> None:
        def work() -> None:
            try:
                found, new = configs.load_file(config_path, actor="server (SIGHUP)")
                log.info(
                    "config reloaded: version %d%s", found.version, "" if new else " (unchanged)"
                )
            except Exception as exc:  # noqa: BLE001 - a bad file must not stop the server
                log.error("config reload refused; the active config stays:\n%s", exc)

        threading.Thread(target=work, name="reload", daemon=True).start()

    signal.signal(signal.SIGHUP, reload)
    limits = BodyLimits(default=max_body, events=max_event_body, hooks=max_hook_body)
    lifecycle = ServerLifecycle(runtime, shutdown, drain=drain, recover_all=lock is not None)
    app = create_app(
        engine,
        configs,
        config_path.resolve(),
        warm_metrics=True,
        body_limits=limits,
        lifespan=lifecycle.lifespan,
    )
    where = engine.db.url if engine.db.dialect == "sqlite" else "PostgreSQL"
    log.info(
        "Interlock listening on http://%s:%d (database: %s, %d workers)", host, port, where, workers
    )
    _log_checkpoints(engine)
    server_ = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=access_log,
            lifespan="on",
            timeout_graceful_shutdown=HTTP_SHUTDOWN_GRACE,
        )
    )
    lifecycle.stop_serving = functools.partial(setattr, server_, "should_exit", True)
    if access_log:
        # uvicorn's own lines stay at warning; its access lines are at info.
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    mask_secrets(engine.secrets)  # uvicorn's handlers too, made with its Config
    notifier.start()
    try:
        server_.run()
        if lifecycle.failure is not None:
            raise lifecycle.failure
    finally:
        lifecycle.stop()  # if the lifespan did not get to it
        notifier.stop()
        engine.db.dispose()
        if lock is not None:
            lock.close()
        # The interpreter's last collection of this heap took most of a second of
        # the shutdown; what is left needs no finalizing.
        gc.freeze()


@click.command()
@DATABASE_OPTION
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Steps this process runs at once.",
)
@click.option(
    "--lease-ttl", default=30.0, show_default=True, type=float, envvar="INTERLOCK_LEASE_TTL"
)
@click.option("--tick", default=1.0, show_default=True, type=float, hidden=True)
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    show_default=True,
    help="Take part in the scheduler election.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@LOG_LIMIT_OPTION
@DRAIN_OPTION
@audit_checkpoint_options
def worker(
    database_url: str | None,
    concurrency: int,
    lease_ttl: float,
    tick: float,
    scheduler: bool,
    log_level: str,
    log_limit: int,
    drain: float,
    checkpoints: Path | None,
    checkpoint_every: float,
) -> None:
    """Run extra workers that claim steps from a shared PostgreSQL database.

    Start as many as you like, on any machines. Each one LISTENs for new work
    and takes part in the scheduler election (exactly one process runs the
    timers and lease recovery; another takes over within seconds of its death).
    Each one also delivers notifications to people (the outbox) and fires their
    reminders, sharing that work safely with the servers and other workers.
    """
    from interlock.cli.lifecycle import Shutdown
    from interlock.engine.runtime import Runtime
    from interlock.errors import InvalidInput, NotFound
    from interlock.notifications.delivery import Notifier
    from interlock.storage.migrate import ensure_schema

    _logging(log_level)
    # A connection for each worker thread, the heartbeat and the scheduler; the
    # LISTEN and election connections are outside the pool.
    engine = _engine(
        database_url,
        lease_ttl,
        tick,
        pool_size=concurrency + 2,
        log_limit=log_limit,
        checkpoints=checkpoints,
        checkpoint_every=checkpoint_every,
    )
    if engine.db.dialect != "postgresql":
        raise InvalidInput(
            "`interlock worker` needs a PostgreSQL database (--database-url postgresql://…); "
            "on SQLite the server's embedded workers run the steps"
        )
    mask_secrets(engine.secrets)
    ensure_schema(engine.db, create_if_empty=False)
    with contextlib.suppress(NotFound):  # the active config is the newest stored one
        engine.configs.active()  # its secrets are masked in this worker's log from the start
    runtime = Runtime(engine, workers=concurrency, scheduler=scheduler)
    shutdown = Shutdown(runtime)
    shutdown.install()
    runtime.start()
    # Sends the outbox and fires the reminders too: the per-channel lease and the
    # guarded timer updates keep it to one sender per message with many processes.
    notifier = Notifier(engine).start()
    _log_checkpoints(engine)
    log.info(
        "worker %s running %d at a time%s",
        engine.instance,
        concurrency,
        "" if scheduler else " (not in the scheduler election)",
    )
    try:
        shutdown.stop.wait()
    finally:
        notifier.stop()
        runtime.stop(drain)
        engine.db.dispose()

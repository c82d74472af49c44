"""What every executor receives and returns."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from interlock.domain.masking import mask, split, variants
from interlock.domain.templating import FILE_PREFIX, map_texts, render_with_env

DEFAULT_LOG_LIMIT = 1024 * 1024  # bytes of a step's output kept from its start
TAIL_LIMIT = 64 * 1024  # bytes kept from its end once the limit is passed


class LogSink:
    """Collects a step's output with a size cap; secrets are masked before storing.

    The first ``limit`` bytes are kept and can be read while the step runs
    (:meth:`take`); past the cap only the last ``TAIL_LIMIT`` bytes are kept,
    and :meth:`finish` adds a truncation marker and that tail. Masking holds
    across writes: a tail that could still become a secret is held back until
    the next write or :meth:`finish`, so a secret split across two reads of a
    pipe is masked as well.
    """

    def __init__(self, limit: int = DEFAULT_LOG_LIMIT, secrets: Iterable[str] = ()) -> None:
        self.limit = limit
        self._secrets = variants(secrets)
        self._lock = threading.Lock()
        self._head: list[str] = []
        self._head_size = 0
        self._new: list[str] = []
        self._tail = ""
        self._dropped = 0
        self._held = ""  # raw output not yet shown: it may be the start of a secret

    def add_secrets(self, values: Iterable[str]) -> None:
        with self._lock:
            self._secrets |= variants(values)

    def mask(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***`` (for errors and details)."""
        with self._lock:
            return mask(text, self._secrets)

    def write(self, text: str) -> None:
        # PostgreSQL stores no NUL in text: shown as an undecodable byte is (U+FFFD).
        text = text.replace("\x00", "\ufffd")
        with self._lock:
            shown, self._held = split(self._held + text, self._secrets)
            self._keep(shown)

    def _keep(self, text: str) -> None:
        room = self.limit - self._head_size
        if room > 0:
            part = text.encode("utf-8")[:room].decode("utf-8", "ignore")
            self._head.append(part)
            self._new.append(part)
            self._head_size += len(part.encode("utf-8"))
            text = text[len(part) :]
        if text:
            self._dropped += len(text.encode("utf-8"))
            self._tail = (self._tail + text)[-TAIL_LIMIT:]

    def take(self) -> str:
        """Output written since the last call (for live viewing)."""
        with self._lock:
            out = "".join(self._new)
            self._new.clear()
            return out

    def finish(self) -> tuple[str, bool]:
        """What is left to store and whether the output was truncated."""
        with self._lock:
            self._keep(mask(self._held, self._secrets))
            self._held = ""
            out = "".join(self._new)
            self._new.clear()
            if not self._dropped:
                return out, False
            kept_tail = self._tail
            skipped = self._dropped - len(kept_tail.encode("utf-8"))
            marker = (
                f"\n[interlock: output truncated: {skipped} bytes left out after the first "
                f"{self.limit} bytes; the last {len(kept_tail.encode('utf-8'))} bytes follow]\n"
            )
            return out + marker + kept_tail, True

    def text(self) -> str:
        """Everything kept so far (head only), for tests and dry runs."""
        with self._lock:
            return "".join(self._head)


class LazyEnviron(MutableMapping[str, str]):
    """A step's environment variables, gathered on first use.

    Copying the process environment costs more than a no-op step itself, and
    most executors (HTTP, plug-ins) never read it. It behaves as the dict it
    used to be (read, change, ``copy()``), but is not a ``dict`` subclass.
    """

    def __init__(self, build: Callable[[], dict[str, str]]) -> None:
        self._build: Callable[[], dict[str, str]] | None = build
        self._values: dict[str, str] = {}

    def _data(self) -> dict[str, str]:
        if self._build is not None:
            self._values, self._build = self._build(), None
        return self._values

    def __getitem__(self, key: str) -> str:
        return self._data()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __setitem__(self, key: str, value: str) -> None:
        self._data()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data()[key]

    def copy(self) -> dict[str, str]:
        return dict(self._data())


@dataclass
class StepContext:
    """Everything a step run may use; ``variables`` fill ``{{ placeholders }}``."""

    variables: dict[str, str]
    environ: MutableMapping[str, str]
    cwd: str
    timeout: float
    log: LogSink
    cancelled: threading.Event = field(default_factory=threading.Event)
    kill_grace: float = 5.0
    # Where ``${VARS}`` in the step's definition are read: the worker's environment
    # (less Interlock's own variables); ``environ`` is what the step's processes
    # inherit, a smaller set. ``None``: ``environ``.
    worker_env: Mapping[str, str] | None = None

    def env_for_references(self) -> Mapping[str, str]:
        """The variables a ``${VAR}`` in the step's definition may name, and the files a
        ``${file:/path}`` may (read when asked, never kept)."""
        return SecretFiles(self.environ if self.worker_env is None else self.worker_env)


MAX_SECRET_FILE_BYTES = 64 * 1024


class SecretFiles(Mapping[str, str]):
    """``environ``, where a name ``file:/path`` is the content of that file.

    The file is read each time it is asked for (a rotated secret is used at once)
    and never kept; line breaks at its end are dropped (``echo`` and editors add
    one). A file that cannot be read raises ``ValueError`` saying why.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, key: str) -> str:
        if not key.startswith(FILE_PREFIX):
            return self._environ[key]
        path = key[len(FILE_PREFIX) :]
        try:
            with open(path, "rb") as stream:
                raw = stream.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as exc:
            raise ValueError(
                f"cannot read the secret file {path} of ${{{key}}} on the worker: "
                f"{exc.strerror or exc}"
            ) from None
        if len(raw) > MAX_SECRET_FILE_BYTES:
            raise ValueError(
                f"the secret file {path} is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB"
            )
        try:
            return raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise ValueError(f"the secret file {path} is not UTF-8 text") from None

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str) and key.startswith(FILE_PREFIX):
            return True  # read (or refused, saying why) when asked for
        return key in self._environ

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


@dataclass(frozen=True)
class StepResult:
    ok: bool
    exit_code: int | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # The executor stopped the run itself (timeout, cancellation): a signal it sent.
    stopped: bool = False


class Executor(Protocol):
    """A plug-in executor: a class with this method, registered as an entry point."""

    def run(self, spec: dict[str, Any], ctx: StepContext) -> StepResult: ...


def fill_templates(value: Any, ctx: StepContext, secrets: list[str] | None = None) -> Any:
    """``value`` (text, or lists and mappings of it) with ``{{ placeholders }}`` and
    ``${VARS}`` filled in one pass; the values of the ``${VARS}`` are masked in the log
    (and added to ``secrets``). Raises ``KeyError`` naming what has no value."""

    def fill(text: str) -> str:
        filled, used = render_with_env(text, ctx.variables, ctx.env_for_references())
        ctx.log.add_secrets(used)
        if secrets is not None:
            secrets.extend(used)
        return filled

    return map_texts(value, fill)

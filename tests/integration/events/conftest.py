"""Fixtures of the events tests: webhook receivers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from tests.support.webhook_receiver import Receiver, serve

SECRET = "hook-secret"


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """Make receivers (real HTTP servers) that check ``SECRET`` signatures; closed after."""
    with ExitStack() as stack:

        def make(**options: Any) -> Receiver:
            options.setdefault("secret", SECRET.encode())
            return stack.enter_context(contextmanager(serve)(Receiver(**options)))

        yield make

"""Interlock: release orchestration that replaces the release call."""

from __future__ import annotations

__version__ = "0.1.0"
SERVER_HEADER = "Interlock-Version"  # on every API answer, so clients know who answered

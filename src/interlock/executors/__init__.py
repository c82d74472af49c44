"""Executors run steps: ``shell``, ``http`` and plug-ins (``interlock.executors`` entry points)."""

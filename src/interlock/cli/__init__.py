"""The ``interlock`` command: a client of the REST API, plus offline commands."""

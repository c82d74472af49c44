"""Alembic migrations for both backends (``interlock db upgrade``)."""

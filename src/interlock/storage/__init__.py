"""Storage: one narrow interface over SQLite and PostgreSQL.

Only this package talks SQL or touches a database driver. The backend is
picked from the URL (``sqlite:///…`` or ``postgresql://…``); both run the
same schema and the same Alembic migrations.
"""

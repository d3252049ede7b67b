"""Persistence: SQLAlchemy 2 tables, Alembic migrations, SQLite (default) and PostgreSQL."""

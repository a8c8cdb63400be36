"""Storage: SQLAlchemy 2 tables, the engine factory (SQLite default, PostgreSQL by URL) and
Alembic migrations."""

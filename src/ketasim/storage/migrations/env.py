"""Alembic environment: migrations run online against the URL given by ketasim."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ketasim.storage.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("ketasim runs migrations with sqlalchemy.url set")
connectable = create_engine(url)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()

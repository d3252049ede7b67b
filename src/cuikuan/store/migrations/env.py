"""Alembic environment: migrations run on the engine cuikuan hands over (see store.engine)."""

from __future__ import annotations

from alembic import context

from cuikuan.store.schema import metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()

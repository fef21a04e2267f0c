"""Alembic environment: runs on the engine handed over by `Database.migrate`."""

from __future__ import annotations

from alembic import context

from ashbox.db.models import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()

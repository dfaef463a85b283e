"""Alembic environment: migrations run on the connection caretwin hands over (`store.upgrade`)."""

from alembic import context

from caretwin.governance.store import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()

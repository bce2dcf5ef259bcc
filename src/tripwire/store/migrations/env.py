"""Alembic environment: migrations run on the connection tripwire hands over (see store.db.migrate)."""

from alembic import context

from tripwire.store.schema import metadata

config = context.config
target_metadata = metadata

connection = config.attributes.get("connection")
if connection is None:  # `alembic` command line with sqlalchemy.url in an ini file
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()

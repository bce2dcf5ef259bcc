"""Alembic environment: migrations run on the connection tripwire hands over (see store.db.migrate)."""

from alembic import context

from tripwire.store.models import Base
import tripwire.banks.models  # noqa: F401  (bank tables join Base.metadata)

config = context.config
target_metadata = Base.metadata

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

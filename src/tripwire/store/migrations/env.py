"""Alembic environment: migrations run on the connection tripwire hands over (see store.db.migrate).

The migrations are op-based, so running them needs no models. ``target_metadata`` (what ``--autogenerate``
and schema comparisons diff against) is ``config.attributes["target_metadata"]`` when the caller supplies it,
else store's ``Base.metadata``, which holds only the tables imported so far. The store sits below the
packages that own the other tables and must not import them: for a complete schema pass
``tripwire.service.schema.all_tables()`` as ``target_metadata``.
"""

from alembic import context

from tripwire.store.models import Base

config = context.config
target_metadata = config.attributes.get("target_metadata", Base.metadata)

connection = config.attributes.get("connection")
if connection is None:  # `alembic` command line with sqlalchemy.url in an ini file
    from sqlalchemy import create_engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("alembic: set sqlalchemy.url in the ini file")
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()

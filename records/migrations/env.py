"""Alembic's entry point for ReportQA's schema: always run on a connection ``records.db.Database`` hands over
(inside its transaction and lock), never from an alembic.ini."""
from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through records.db.Database.upgrade(), which passes a connection")

# render_as_batch: SQLite alters a table by copying it, which batch mode does; PostgreSQL alters in place.
context.configure(connection=connection, target_metadata=None, render_as_batch=True,
                  transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()

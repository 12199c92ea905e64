"""Alembic environment: runs on the connection handed over by ``pixelbot.db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from pixelbot.db.models import Base

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `python bot.py db ...`, not the alembic CLI")

is_sqlite = connection.dialect.name == "sqlite"
if is_sqlite:
    # Batch migrations copy tables; with foreign keys on, the copy fails and leaves
    # _alembic_tmp_* tables behind. The pragma only works outside a transaction, so it goes
    # straight to the driver before SQLAlchemy begins one.
    cursor = connection.connection.cursor()
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()

try:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
finally:
    if is_sqlite:  # the connection goes back to the pool: it must enforce foreign keys again
        connection.rollback()
        cursor = connection.connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

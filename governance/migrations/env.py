"""Alembic environment: runs online against the engine `cofre init` hands over."""

from __future__ import annotations

from alembic import context

import governance.records  # noqa: F401  (registers every table on Base.metadata)
from governance.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()

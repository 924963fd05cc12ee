"""The migrations (every branch off 0001, applied by `cofre init`) build exactly what the
ORM classes declare: any table, column, index or constraint a migration adds, forgets or
shapes differently from its record is a difference here, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import governance.records  # noqa: F401  (every table on the metadata)
from governance.db import Base
from server.container import Container


def test_the_migrated_schema_is_exactly_what_the_records_declare(cofre: Container) -> None:
    with cofre.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    assert diffs == []

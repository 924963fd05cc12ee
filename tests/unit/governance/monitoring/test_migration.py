"""The monitoring migrations (0500_monitoring, 0520_profiles) build exactly what the
ORM classes declare: the rollups and the reference profiles."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import governance.records  # noqa: F401  (every table on the metadata)
from governance.db import Base
from server.container import Container

OURS = {"monitoring_rollups", "monitoring_profiles"}


def _table_of(diff: Any) -> str | None:
    for part in diff if isinstance(diff, tuple) else diff[0]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        if isinstance(part, str) and part in OURS:
            return part
        if name in OURS:
            return str(name)
    return None


def test_the_schema_matches_the_records(cofre: Container) -> None:
    with cofre.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    ours = [d for d in diffs if _table_of(d) in OURS]
    assert ours == []

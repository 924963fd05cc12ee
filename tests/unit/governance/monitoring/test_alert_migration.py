"""The 0530_alerts migration builds exactly what the ORM classes declare (the alert
tables and the retraining plan's `on_alert`), and goes down again."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import governance.records  # noqa: F401  (every table on the metadata)
from governance.db import Base
from governance.migrations import alembic_config
from server.container import Container

OURS = {"alert_rules", "alerts", "alert_deliveries", "retraining_plans"}


def _tables_of(diff: Any) -> set[str]:
    found = set()
    for part in diff if isinstance(diff, tuple) else diff[0]:
        for candidate in (part, getattr(part, "table", None)):
            name = getattr(candidate, "name", None)
            if isinstance(name, str):
                found.add(name)
        if isinstance(part, str):
            found.add(part)
    return found


def test_the_schema_matches_the_records(cofre: Container) -> None:
    with cofre.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    assert [d for d in diffs if _tables_of(d) & OURS] == []


def test_downgrade_removes_the_alert_tables(cofre: Container) -> None:
    command.downgrade(alembic_config(cofre.engine), "alerts@-1")
    tables = set(inspect(cofre.engine).get_table_names())
    assert not tables & {"alert_rules", "alerts", "alert_deliveries"}
    columns = {c["name"] for c in inspect(cofre.engine).get_columns("retraining_plans")}
    assert "on_alert" not in columns

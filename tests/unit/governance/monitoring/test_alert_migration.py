"""The 0530_alerts migration goes down again (that it builds what the records declare:
tests/unit/governance/test_migrations.py)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

import governance.records  # noqa: F401  (every table on the metadata)
from governance.migrations import alembic_config
from server.container import Container


def test_downgrade_removes_the_alert_tables(cofre: Container) -> None:
    command.downgrade(alembic_config(cofre.engine), "alerts@-1")
    tables = set(inspect(cofre.engine).get_table_names())
    assert not tables & {"alert_rules", "alerts", "alert_deliveries"}
    columns = {c["name"] for c in inspect(cofre.engine).get_columns("retraining_plans")}
    assert "on_alert" not in columns

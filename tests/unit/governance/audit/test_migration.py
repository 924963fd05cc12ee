"""The 0310_audit_seals migration builds exactly the MAC columns the ORM declares."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import governance.records  # noqa: F401  (every table on the metadata)
from governance.db import Base
from server.container import Container

OURS = {"audit_records", "audit_head"}


def _tables(diff: Any) -> set[str]:
    parts = diff if isinstance(diff, tuple) else diff[0]
    return {part for part in parts if isinstance(part, str)} | {
        str(part.name) for part in parts if getattr(part, "name", None) in OURS
    }


def test_the_mac_columns_match_the_records(cofre: Container) -> None:
    with cofre.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    assert [d for d in diffs if _tables(d) & OURS] == []
    columns = {c.name for c in Base.metadata.tables["audit_head"].columns}
    assert "mac" in columns

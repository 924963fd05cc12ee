"""The branch migrations (0400_subjects, 0510_feedback, 0600_supply) build exactly what the ORM
classes declare (their tables, the audit data keys' new columns and indexes, the model
card's new columns)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import governance.records  # noqa: F401  (every table on the metadata)
from governance.db import Base
from server.container import Container

OURS = {
    "subject_holds",
    "decision_reviews",
    "audit_data_keys",
    "model_versions",
    "feedback_labels",
    "rollouts",
    "rollout_tallies",
    "promotion_requests",
    "trusted_signers",
    "model_version_signatures",
    "model_version_origins",
}


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

"""Destroying audit data keys (crypto-shredding): the one way erasure, retention and
a restore's re-applied erasures make personal data unreadable.

A destroyed key keeps its row (id, pseudonym, scope facts) so the rows sealed
under it read as erased, and the chain, which covers only ciphertext, still
verifies. Its wrapped material is set to NULL, and its `scope` cleared so the
same subject, model version and day can open a new key.

On SQLite, `secure_delete` makes the page that held the wrapped key be
overwritten rather than left in free space; the WAL keeps the old page until
the next checkpoint. On PostgreSQL the old tuple lives until VACUUM. Either
way the material is useless without the key-encryption key, which backups
never hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, select, text, update
from sqlalchemy.orm import Session

from governance.audit.records import AuditDataKey
from governance.clock import utcnow

_CHUNK = 500  # ids per statement, well under every driver's bound-parameter limit


def live_keys(session: Session, *conditions: ColumnElement[bool]) -> list[str]:
    """Ids of the keys matching `conditions` that still hold key material."""
    stmt = select(AuditDataKey.id).where(AuditDataKey.wrapped.is_not(None), *conditions)
    return list(session.scalars(stmt.order_by(AuditDataKey.id)))


def shred(session: Session, key_ids: Sequence[str], by: str) -> int:
    """Destroy these keys (those not destroyed already); return how many were destroyed."""
    if session.connection().dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete = ON"))
    now, destroyed = utcnow(), 0
    for start in range(0, len(key_ids), _CHUNK):
        chunk = list(key_ids[start : start + _CHUNK])
        result = session.execute(
            update(AuditDataKey)
            .where(AuditDataKey.id.in_(chunk), AuditDataKey.wrapped.is_not(None))
            .values(wrapped=None, kek_id=None, scope=None, destroyed_at=now, destroyed_by=by)
            .execution_options(synchronize_session=False)
        )
        destroyed += cast(CursorResult[Any], result).rowcount
    return destroyed

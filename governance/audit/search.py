"""Searching the audit log for the admin pages: filters, pages, caller names.

Subjects are matched by pseudonym, so the searcher types the real id and it is
pseudonymised exactly as on write. `subjects` is a JSON list column; the SQL
narrows with a text match on the quoted pseudonym (portable to SQLite and
PostgreSQL, and exact because a pseudonym is 64 hex digits) and Python checks
membership again before anything is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, String, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from governance.accounts.actor import Actor
from governance.accounts.records import ApiKey, User
from governance.audit.records import AuditRecord
from governance.audit.scope import check_readable, visible_to
from governance.errors import NotFound

EXPORT_LIMIT = 10_000


@dataclass(frozen=True)
class AuditQuery:
    """Filters of one search; empty fields do not filter."""

    request_id: str = ""
    model_name: str = ""
    model_version: int | None = None
    caller: str = ""  # a username, "key:<prefix>", a key prefix, or a raw actor id
    outcome: str = ""
    kind: str = ""
    subject: str = ""  # a pseudonym, never the raw id
    since: str = ""  # canonical UTC text, inclusive
    until: str = ""  # canonical UTC text, exclusive

    def is_empty(self) -> bool:
        return self == AuditQuery()


@dataclass(frozen=True)
class AuditPage:
    records: list[AuditRecord]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


class AuditSearch:
    """Read-only queries over the audit records (the chain is never written here)."""

    def page(
        self, session: Session, actor: Actor, query: AuditQuery, page: int, per_page: int
    ) -> AuditPage:
        """One page of the records `query` finds among those `actor` may read."""
        stmt = self._filtered(session, query).where(*visible_to(actor))
        total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        pages = max(1, -(-total // per_page))
        page = min(max(1, page), pages)
        rows = session.scalars(
            stmt.order_by(AuditRecord.seq.desc()).offset((page - 1) * per_page).limit(per_page)
        )
        records = [r for r in rows if _subject_matches(r, query.subject)]
        return AuditPage(records, total, page, per_page)

    def matching(
        self, session: Session, actor: Actor, query: AuditQuery, limit: int = EXPORT_LIMIT
    ) -> list[AuditRecord]:
        """Every record the query finds that `actor` may read, oldest first, at most
        `limit` (for exports)."""
        stmt = self._filtered(session, query).where(*visible_to(actor))
        stmt = stmt.order_by(AuditRecord.seq).limit(limit)
        return [r for r in session.scalars(stmt) if _subject_matches(r, query.subject)]

    def record(self, session: Session, actor: Actor, seq: int) -> AuditRecord:
        record = session.get(AuditRecord, seq)
        if record is None:
            raise NotFound(f"no audit record {seq}")
        check_readable(actor, record)
        return record

    def last_seq(self, session: Session) -> int:
        return int(session.scalar(select(func.max(AuditRecord.seq))) or 0)

    def latest_of_kind(self, session: Session, kind: str) -> AuditRecord | None:
        stmt = select(AuditRecord).where(AuditRecord.kind == kind)
        return session.scalars(stmt.order_by(AuditRecord.seq.desc()).limit(1)).first()

    def caller_names(self, session: Session) -> dict[tuple[str, str], str]:
        """(actor_type, actor_id) -> a readable name, for users and API keys."""
        names = {("user", str(i)): n for i, n in session.execute(select(User.id, User.username))}
        keys = session.execute(select(ApiKey.id, ApiKey.prefix, ApiKey.name))
        names |= {("key", str(i)): f"key:{prefix} ({name})" for i, prefix, name in keys}
        return names

    def _filtered(self, session: Session, query: AuditQuery) -> Select[AuditRecord]:
        stmt = select(AuditRecord)
        exact = {
            AuditRecord.request_id: query.request_id,
            AuditRecord.model_name: query.model_name,
            AuditRecord.outcome: query.outcome,
            AuditRecord.kind: query.kind,
        }
        for column, value in exact.items():
            if value:
                stmt = stmt.where(column == value)
        if query.model_version is not None:
            stmt = stmt.where(AuditRecord.model_version == query.model_version)
        if query.since:
            stmt = stmt.where(AuditRecord.at >= query.since)
        if query.until:
            stmt = stmt.where(AuditRecord.at < query.until)
        if query.subject:
            stmt = stmt.where(cast(AuditRecord.subjects, String).contains(f'"{query.subject}"'))
        if query.caller:
            stmt = stmt.where(*self._caller_clause(session, query.caller))
        return stmt

    def _caller_clause(self, session: Session, caller: str) -> list[ColumnElement[bool]]:
        prefix = caller.removeprefix("key:")
        key_id = session.scalars(select(ApiKey.id).where(ApiKey.prefix == prefix)).first()
        user_id = session.scalars(select(User.id).where(User.username == caller)).first()
        if key_id is not None:
            return [AuditRecord.actor_type == "key", AuditRecord.actor_id == str(key_id)]
        if user_id is not None:
            return [AuditRecord.actor_type == "user", AuditRecord.actor_id == str(user_id)]
        return [AuditRecord.actor_id == caller]


def _subject_matches(record: AuditRecord, pseudonym: str) -> bool:
    return not pseudonym or pseudonym in (record.subjects or [])


def with_subject(query: AuditQuery, pseudonym: str) -> AuditQuery:
    return replace(query, subject=pseudonym)

"""Disclosing personal data from the audit log: a record's decrypted rows, exports.

Every disclosure is itself an audit event in the same transaction ("audit.viewed"
for a record's detail, "audit.exported" for a file), so a reader of personal
data leaves a trace even when the reader is an auditor. A subject's export holds
only that subject's rows: a batch request can be about several people.

This module returns the disclosed items; files (names, MIME types, JSON and
CSV) are made at the edge, by server/exports.py, for the API, pages and CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.records import AuditRecord
from governance.audit.service import AuditEvent, AuditLog, row_key_ids
from governance.errors import KeyUnavailable


@dataclass(frozen=True)
class Disclosed:
    """What an export discloses: one item per record, with its (decrypted) rows."""

    items: list[dict[str, Any]]
    subject: str  # the pseudonym whose rows alone were kept, or ""

    @property
    def count(self) -> int:
        return len(self.items)


class Disclosures:
    """Decrypt records for people allowed to read them, and account for every read."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    def view(
        self, session: Session, actor: Actor, record: AuditRecord, request_id: str | None
    ) -> list[dict[str, Any]]:
        """The record's personal rows, decrypted; the viewing is audited."""
        rows = self._rows(session, record)
        if record.payload:
            self._event(session, actor, "audit.viewed", request_id, {"seq": record.seq})
        return rows

    def export(
        self,
        session: Session,
        actor: Actor,
        records: list[AuditRecord],
        fmt: str,
        subject: str = "",
        request_id: str | None = None,
        endpoint: str = "admin",
    ) -> Disclosed:
        """The records (and their rows, only `subject`'s when given); the export, in the
        format `fmt` the caller will render, is audited."""
        items = [self._item(session, record, subject) for record in records]
        details = {
            "count": len(items),
            "format": fmt,
            "subject": subject or None,
            "seqs": seq_ranges([r.seq for r in records]),
        }
        self._event(session, actor, "audit.exported", request_id, details, endpoint)
        return Disclosed(items, subject)

    def _item(self, session: Session, record: AuditRecord, subject: str) -> dict[str, Any]:
        rows = self._rows(session, record)
        subjects = record.subjects or [None] * len(rows)
        wanted = [
            {"row": index, "subject": subjects[index], "data": data}
            for index, data in enumerate(rows)
            if not subject or subjects[index] == subject
        ]
        return {
            "seq": record.seq,
            "at": record.at,
            "request_id": record.request_id,
            "kind": record.kind,
            "outcome": record.outcome,
            "status": record.status,
            "actor_type": record.actor_type,
            "actor_id": record.actor_id,
            "endpoint": record.endpoint,
            "model_name": record.model_name,
            "model_version": record.model_version,
            "artifact_sha256": record.artifact_sha256,
            "purpose": record.purpose,
            "details": record.details,
            "hash": record.hash,
            "rows": wanted,
        }

    def _rows(self, session: Session, record: AuditRecord) -> list[dict[str, Any]]:
        try:
            return self.audit.decrypt_payload(session, record)
        except KeyUnavailable:
            return [{"unavailable": True} for _ in row_key_ids(record)]

    def _event(
        self,
        session: Session,
        actor: Actor,
        kind: str,
        request_id: str | None,
        details: dict[str, Any],
        endpoint: str = "admin",
    ) -> None:
        self.audit.append(
            session,
            AuditEvent(
                kind=kind, actor=actor, endpoint=endpoint, request_id=request_id, details=details
            ),
        )


def seq_ranges(seqs: list[int]) -> list[list[int]]:
    """[1,2,3,7,8] -> [[1,3],[7,8]]: a compact, integer-only record of what left."""
    spans: list[list[int]] = []
    for seq in sorted(seqs):
        if spans and seq == spans[-1][1] + 1:
            spans[-1][1] = seq
        else:
            spans.append([seq, seq])
    return spans

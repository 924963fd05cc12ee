"""Disclosing personal data from the audit log: a record's decrypted rows, exports.

Every disclosure is itself an audit event in the same transaction ("audit.viewed"
for a record's detail, "audit.exported" for a file), so a reader of personal
data leaves a trace even when the reader is an auditor. A subject's export holds
only that subject's rows: a batch request can be about several people.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.records import AuditRecord
from governance.audit.service import AuditEvent, AuditLog
from governance.errors import InvalidInput, KeyUnavailable

FORMATS = ("json", "csv")
CSV_COLUMNS = (
    "seq",
    "at",
    "request_id",
    "kind",
    "outcome",
    "status",
    "actor_type",
    "actor_id",
    "endpoint",
    "model_name",
    "model_version",
    "artifact_sha256",
    "purpose",
    "row",
    "subject",
    "data",
)
# Cells starting with these are formulas to a spreadsheet; exported text is data.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportFile:
    name: str
    mimetype: str
    body: str
    count: int


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
    ) -> ExportFile:
        """The records (and their rows, only `subject`'s when given) as JSON or CSV."""
        if fmt not in FORMATS:
            raise InvalidInput(f"export format must be one of {', '.join(FORMATS)}")
        items = [self._item(session, record, subject) for record in records]
        body = to_json(items) if fmt == "json" else to_csv(items)
        details = {
            "count": len(items),
            "format": fmt,
            "subject": subject or None,
            "seqs": _ranges([r.seq for r in records]),
        }
        self._event(session, actor, "audit.exported", request_id, details, endpoint)
        name = f"cofre-audit-{'subject' if subject else 'records'}.{fmt}"
        mimetype = "application/json" if fmt == "json" else "text/csv"
        return ExportFile(name=name, mimetype=mimetype, body=body, count=len(items))

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
            return [{"unavailable": True} for _ in record.payload or []]

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


def to_json(items: list[dict[str, Any]]) -> str:
    return json.dumps({"records": items}, indent=2, ensure_ascii=False, default=str)


def to_csv(items: list[dict[str, Any]]) -> str:
    """One line per personal row (or one per record without rows)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in items:
        for row in item["rows"] or [{"row": "", "subject": "", "data": ""}]:
            line = item | row
            line["data"] = json.dumps(row["data"], ensure_ascii=False) if row["data"] else ""
            writer.writerow([_cell(line.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _ranges(seqs: list[int]) -> list[list[int]]:
    """[1,2,3,7,8] -> [[1,3],[7,8]]: a compact, integer-only record of what left."""
    spans: list[list[int]] = []
    for seq in sorted(seqs):
        if spans and seq == spans[-1][1] + 1:
            spans[-1][1] = seq
        else:
            spans.append([seq, seq])
    return spans

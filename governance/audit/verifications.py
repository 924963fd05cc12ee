"""Chain verifications run from the admin pages, kept as audit events.

The result of each run is appended to the log itself ("audit.verified"), so the
dashboard's "last verification" needs no table of its own and cannot be edited
without that edit showing up at the next run.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.records import AuditRecord
from governance.audit.service import AuditEvent, AuditLog, VerifyReport

KIND = "audit.verified"


@dataclass(frozen=True)
class Verification:
    """One recorded run: when, by whom, and what it found."""

    seq: int
    at: str
    ok: bool
    checked: int
    first_seq: int | None
    last_seq: int | None
    bad_seq: int | None
    reason: str | None


def record_verification(
    session: Session, audit: AuditLog, actor: Actor, report: VerifyReport, request_id: str | None
) -> AuditRecord:
    details = {
        "ok": report.ok,
        "checked": report.checked,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "bad_seq": report.bad_seq,
        "reason": report.reason,
    }
    event = AuditEvent(
        kind=KIND,
        actor=actor,
        outcome="ok" if report.ok else "failed",
        endpoint="admin",
        request_id=request_id,
        details=details,
    )
    return audit.append(session, event)


def last_verification(session: Session) -> Verification | None:
    stmt = select(AuditRecord).where(AuditRecord.kind == KIND)
    record = session.scalars(stmt.order_by(AuditRecord.seq.desc()).limit(1)).first()
    if record is None:
        return None
    details = record.details or {}
    return Verification(
        seq=record.seq,
        at=record.at,
        ok=bool(details.get("ok")),
        checked=int(details.get("checked") or 0),
        first_seq=details.get("first_seq"),
        last_seq=details.get("last_seq"),
        bad_seq=details.get("bad_seq"),
        reason=details.get("reason"),
    )

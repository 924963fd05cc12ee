"""Erasure and legal holds of one subject: the use cases behind `cofre subjects
erase|hold|release`, `/api/v1/subjects/...` and the Subjects page.

Erasure destroys every data key of the subject's pseudonym (crypto-shredding):
every row sealed under them reads as erased everywhere, the chain still
verifies, and the erasure itself is appended to the chain. It is idempotent (a
second erasure destroys nothing and says so) and refused for an unknown
subject and for one under legal hold. A refusal is an audit event too: it is
committed first, then raised, so the caller's error and the log agree.

The keys an erasure destroyed go into the erasure journal (in the key
directory) before the transaction commits, and come out again if it rolls
back, so no committed erasure is missing from it; restores re-apply it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from governance.audit.records import AuditDataKey, AuditRecord
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import isoformat, utcnow
from governance.db import undo_on_rollback
from governance.errors import CofreError, Conflict, FieldError, InvalidInput, NotFound
from governance.operations.transactions import Transactions
from governance.subjects.caller import Caller
from governance.subjects.journal import ErasureJournal, JournalEntry
from governance.subjects.records import SubjectHold
from governance.subjects.shredding import live_keys, shred

MAX_REASON = 500
ERASED = "subject.erased"
HELD = "subject.held"
RELEASED = "subject.released"


@dataclass(frozen=True)
class Erasure:
    pseudonym: str
    keys_destroyed: int
    already_erased: bool
    seq: int
    at: str


@dataclass(frozen=True)
class SubjectStatus:
    """What the appliance holds about one pseudonym, without decrypting anything."""

    pseudonym: str
    live_keys: int
    destroyed_keys: int
    holds: list[SubjectHold]
    events: list[AuditRecord]

    @property
    def held(self) -> bool:
        return any(h.released_at is None for h in self.holds)

    @property
    def known(self) -> bool:
        return bool(self.live_keys or self.destroyed_keys or self.holds)


class Subjects:
    """Erasure, holds and the subject's own status page; sessions come from `tx`."""

    def __init__(self, audit: AuditLog, journal: ErasureJournal, tx: Transactions) -> None:
        self.audit = audit
        self.journal = journal
        self.tx = tx

    # -- status -------------------------------------------------------------------
    def status(self, session: Session, pseudonym: str) -> SubjectStatus:
        keys = session.execute(
            select(AuditDataKey.wrapped.is_(None)).where(AuditDataKey.pseudonym == pseudonym)
        ).scalars()
        destroyed = [bool(d) for d in keys]
        holds = session.scalars(
            select(SubjectHold).where(SubjectHold.pseudonym == pseudonym).order_by(SubjectHold.id)
        )
        return SubjectStatus(
            pseudonym,
            live_keys=destroyed.count(False),
            destroyed_keys=destroyed.count(True),
            holds=list(holds),
            events=subject_events(session, pseudonym),
        )

    # -- erasure ------------------------------------------------------------------
    def erase(self, caller: Caller, subject_id: str, reason: str) -> Erasure:
        reason = _reason(reason)
        pseudonym = self.audit.pseudonym(_subject(subject_id))
        with self.tx.write() as session:
            refusal = self._erasure_refusal(session, pseudonym)
            if refusal is None:
                return self._erase(session, caller, pseudonym, reason)
            outcome = "denied" if isinstance(refusal, Conflict) else "rejected"
            details = {"pseudonym": pseudonym, "refused": refusal.detail, "reason": reason}
            self._event(session, caller, ERASED, details, outcome)
        raise refusal

    def _erasure_refusal(self, session: Session, pseudonym: str) -> CofreError | None:
        if active_hold(session, pseudonym) is not None:
            return Conflict("the subject is under legal hold; release the hold before erasing")
        known = session.scalars(
            select(AuditDataKey.id).where(AuditDataKey.pseudonym == pseudonym).limit(1)
        ).first()
        return None if known else NotFound("the appliance holds no data about this subject")

    def _erase(self, session: Session, caller: Caller, pseudonym: str, reason: str) -> Erasure:
        keys = live_keys(session, AuditDataKey.pseudonym == pseudonym)
        destroyed = shred(session, keys, "erasure")
        details = {"pseudonym": pseudonym, "keys_destroyed": destroyed, "reason": reason}
        record = self._event(session, caller, ERASED, details)
        if keys:
            entry = JournalEntry(record.at, pseudonym, record.seq, keys)
            self.journal.record(entry)
            undo_on_rollback(session, lambda: self.journal.forget(entry))
        return Erasure(pseudonym, destroyed, not keys, record.seq, record.at)

    # -- holds --------------------------------------------------------------------
    def hold(self, caller: Caller, subject_id: str, reason: str) -> SubjectHold:
        reason = _reason(reason)
        pseudonym = self.audit.pseudonym(_subject(subject_id))
        with self.tx.write() as session:
            current = active_hold(session, pseudonym)
            if current is None:
                hold = SubjectHold(
                    pseudonym=pseudonym,
                    reason=reason,
                    placed_by=caller.actor.name,
                    placed_at=utcnow(),
                )
                session.add(hold)
                session.flush()
                self._event(session, caller, HELD, {"pseudonym": pseudonym, "hold": hold.id})
                return hold
            refusal = Conflict(
                f"the subject is already under legal hold (since {isoformat(current.placed_at)})"
            )
            self._event(
                session, caller, HELD, {"pseudonym": pseudonym, "refused": refusal.detail}, "denied"
            )
        raise refusal

    def release(self, caller: Caller, subject_id: str) -> SubjectHold:
        pseudonym = self.audit.pseudonym(_subject(subject_id))
        with self.tx.write() as session:
            current = active_hold(session, pseudonym)
            if current is not None:
                current.released_at, current.released_by = utcnow(), caller.actor.name
                self._event(session, caller, RELEASED, {"pseudonym": pseudonym, "hold": current.id})
                return current
            refusal = Conflict("the subject is not under legal hold")
            self._event(
                session,
                caller,
                RELEASED,
                {"pseudonym": pseudonym, "refused": refusal.detail},
                "rejected",
            )
        raise refusal

    def _event(
        self,
        session: Session,
        caller: Caller,
        kind: str,
        details: dict[str, Any],
        outcome: str = "ok",
    ) -> AuditRecord:
        return self.audit.append(
            session,
            AuditEvent(
                kind=kind,
                actor=caller.actor,
                outcome=outcome,
                endpoint=caller.endpoint,
                request_id=caller.request_id,
                details=details,
            ),
        )


def active_hold(session: Session, pseudonym: str) -> SubjectHold | None:
    stmt = select(SubjectHold).where(
        SubjectHold.pseudonym == pseudonym, SubjectHold.released_at.is_(None)
    )
    return session.scalars(stmt.limit(1)).first()


def held_pseudonyms(session: Session) -> set[str]:
    return set(
        session.scalars(select(SubjectHold.pseudonym).where(SubjectHold.released_at.is_(None)))
    )


def subject_events(session: Session, pseudonym: str) -> list[AuditRecord]:
    """Audit events about the subject (erasures, holds, exports, reviews), oldest first.

    The pseudonym is 64 hex digits, so a text match on the JSON details is exact
    enough to narrow in SQL; membership is checked again in Python.
    """
    stmt = (
        select(AuditRecord)
        .where(AuditRecord.details.is_not(None))
        .where(cast(AuditRecord.details, String).contains(f'"{pseudonym}"'))
        .order_by(AuditRecord.seq)
    )
    return [r for r in session.scalars(stmt) if (r.details or {}).get("pseudonym") == pseudonym]


def _subject(subject_id: str) -> str:
    if not isinstance(subject_id, str) or not subject_id.strip() or len(subject_id) > 128:
        raise InvalidInput("subject_id is required", [FieldError("subject_id", "1-128 characters")])
    return subject_id


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a reason is required", [FieldError("reason", "is required")])
    if len(reason) > MAX_REASON:
        raise InvalidInput(
            "the reason is too long", [FieldError("reason", f"at most {MAX_REASON} characters")]
        )
    return reason.strip()

"""Contested automated decisions (LGPD Art. 20, GDPR Art. 22): open, list, show, decide.

A review is opened on one row of one prediction, by the client system relaying
the person's request (a predictor key) or by an auditor or admin. It is decided
by a person who is neither the publisher of the version that decided nor the
one who opened the review (separation of duties). The original record is
never changed: the opening and the outcome are appended to the chain and point
at it. Each review has an age and a due date (`due_days` after opening, 15 by
default after LGPD Art. 19). Reasons and a corrected output are personal data:
they are sealed under the reviewed row's data key (governance/subjects/sealing.py),
and the chain records only their SHA-256. Refusals are audited like the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.records import AuditRecord
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import isoformat, utcnow
from governance.errors import (
    CofreError,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from governance.operations.transactions import Transactions
from governance.subjects.caller import Caller
from governance.subjects.decisions import Decisions
from governance.subjects.records import DecisionReview
from governance.subjects.sealing import RowSealer

OPENED = "review.opened"
DECIDED = "review.decided"
VIEWED = "review.viewed"
STATUSES = ("open", "decided")
OUTCOMES = ("upheld", "overturned")
MAX_TEXT = 2000
T = TypeVar("T")


@dataclass(frozen=True)
class ReviewView:
    """A review as people read it: its facts, the unsealed texts, its age and due date."""

    review: DecisionReview
    opened: dict[str, Any] = field(default_factory=dict)
    decided: dict[str, Any] = field(default_factory=dict)
    now: datetime = field(default_factory=utcnow)

    @property
    def age_days(self) -> int:
        return (self.now - self.review.opened_at).days

    @property
    def overdue(self) -> bool:
        return self.review.status == "open" and self.now > self.review.due_at

    def as_dict(self) -> dict[str, Any]:
        r = self.review
        return {
            "id": r.id,
            "status": r.status,
            "request_id": r.request_id,
            "row": r.row,
            "prediction_seq": r.prediction_seq,
            "model": r.model_name,
            "version": r.model_version,
            "sha256": r.artifact_sha256,
            "subject": r.pseudonym,
            "opened_by": r.opened_by,
            "opened_at": isoformat(r.opened_at),
            "due_at": isoformat(r.due_at),
            "age_days": self.age_days,
            "overdue": self.overdue,
            "reason": self.opened.get("reason"),
            "decided_by": r.decided_by,
            "decided_at": isoformat(r.decided_at) if r.decided_at else None,
            "outcome": r.outcome,
            "decision_reason": self.decided.get("reason"),
            "corrected_output": self.decided.get("corrected_output"),
            "erased": bool(self.opened.get("erased")),
        }


class Reviews:
    """Review use cases; write use cases open their own transactions (see module doc)."""

    def __init__(
        self,
        audit: AuditLog,
        decisions: Decisions,
        sealer: RowSealer,
        due_days: int,
        tx: Transactions,
    ) -> None:
        self.audit = audit
        self.decisions = decisions
        self.sealer = sealer
        self.due = timedelta(days=due_days)
        self.tx = tx

    # -- opening ------------------------------------------------------------------------
    def open(self, caller: Caller, request_id: str, row: Any, reason: str) -> ReviewView:
        facts = {"request_id": str(request_id)[:64], "row": row}
        return self._refusals_audited(
            caller, OPENED, facts, lambda s: self._open(s, caller, request_id, row, reason)
        )

    def _open(
        self, session: Session, caller: Caller, request_id: str, row: Any, reason: str
    ) -> ReviewView:
        text = _text(reason, "reason")
        decision = self.decisions.locate(session, caller.actor, request_id, row)
        if decision.erased:
            raise Conflict("the row was erased; it can no longer be reviewed")
        if self._open_review(session, request_id, decision.row) is not None:
            raise Conflict("this decision already has an open review")
        now = utcnow()
        opened = {"reason": text}
        sealed = self.sealer.seal(
            session, decision.key_id, f"review-opened:{request_id}:{decision.row}", opened
        )
        record = decision.record
        review = DecisionReview(
            request_id=record.request_id,
            row=decision.row,
            prediction_seq=record.seq,
            model_name=record.model_name or "",
            model_version=record.model_version or 0,
            artifact_sha256=record.artifact_sha256 or "",
            pseudonym=decision.pseudonym,
            key_id=decision.key_id,
            status="open",
            opened_by=caller.actor.name[:64],
            opened_by_id=_identity(caller.actor),
            opened_at=now,
            due_at=now + self.due,
            opened_sealed=sealed,
            opened_seq=0,
        )
        session.add(review)
        session.flush()
        event = self._event(session, caller, OPENED, review, {"sealed_sha256": _digest(sealed)})
        review.opened_seq = event.seq
        return ReviewView(review, opened, {}, now)

    # -- reading ------------------------------------------------------------------------
    def listing(
        self, session: Session, actor: Actor, status: str | None = None
    ) -> list[ReviewView]:
        stmt = select(DecisionReview).order_by(DecisionReview.id.desc())
        if status is not None:
            if status not in STATUSES:
                raise InvalidInput("unknown status", [FieldError("status", "open or decided")])
            stmt = stmt.where(DecisionReview.status == status)
        now = utcnow()
        return [
            ReviewView(r, now=now)
            for r in session.scalars(stmt)
            if actor.may_use_model(r.model_name)
        ]

    def show(self, session: Session, caller: Caller, review_id: int) -> ReviewView:
        """The review with its texts unsealed (a disclosure: audited)."""
        review = self._review(session, caller.actor, review_id)
        view = self._unsealed(session, review)
        self._event(session, caller, VIEWED, review, {})
        return view

    def for_rows(
        self, session: Session, rows: list[tuple[str, int]]
    ) -> dict[tuple[str, int], list[ReviewView]]:
        """Every review of these (request id, row) pairs, unsealed (for a subject's export)."""
        found: dict[tuple[str, int], list[ReviewView]] = {}
        request_ids = sorted({request_id for request_id, _ in rows})
        wanted = set(rows)
        for start in range(0, len(request_ids), 500):
            stmt = select(DecisionReview).where(
                DecisionReview.request_id.in_(request_ids[start : start + 500])
            )
            for review in session.scalars(stmt.order_by(DecisionReview.id)):
                if (review.request_id, review.row) in wanted:
                    found.setdefault((review.request_id, review.row), []).append(
                        self._unsealed(session, review)
                    )
        return found

    # -- deciding -----------------------------------------------------------------------
    def decide(
        self,
        caller: Caller,
        review_id: int,
        outcome: str,
        reason: str,
        corrected_output: Any = None,
    ) -> ReviewView:
        facts = {"review": review_id, "outcome": outcome if outcome in OUTCOMES else None}
        return self._refusals_audited(
            caller,
            DECIDED,
            facts,
            lambda s: self._decide(s, caller, review_id, outcome, reason, corrected_output),
        )

    def _decide(
        self,
        session: Session,
        caller: Caller,
        review_id: int,
        outcome: str,
        reason: str,
        corrected_output: Any,
    ) -> ReviewView:
        if outcome not in OUTCOMES:
            raise InvalidInput("unknown outcome", [FieldError("outcome", "upheld or overturned")])
        text = _text(reason, "reason")
        if corrected_output is not None and outcome != "overturned":
            raise InvalidInput(
                "only an overturned decision has a corrected output",
                [FieldError("corrected_output", "give it only with outcome 'overturned'")],
            )
        review = self._review(session, caller.actor, review_id)
        if review.status != "open":
            raise Conflict(f"review {review.id} was already decided")
        self._check_separation(session, caller.actor, review)
        decided = {"reason": text, "corrected_output": corrected_output}
        sealed = self.sealer.seal(session, review.key_id, f"review-decided:{review.id}", decided)
        now = utcnow()
        review.status, review.outcome, review.decided_at = "decided", outcome, now
        review.decided_by, review.decided_by_id = caller.actor.name[:64], _identity(caller.actor)
        review.decided_sealed = sealed
        details = {"outcome": outcome, "sealed_sha256": _digest(sealed)}
        review.decided_seq = self._event(session, caller, DECIDED, review, details).seq
        session.flush()
        return ReviewView(review, self._unsealed(session, review).opened, decided, now)

    def _check_separation(self, session: Session, actor: Actor, review: DecisionReview) -> None:
        version = self.decisions.registry.resolve(
            session, review.model_name, version=review.model_version
        )
        if actor.name == version.published_by:
            raise PermissionDenied(
                "separation of duties: the publisher of the version that decided "
                "may not decide its review"
            )
        if _same_person(actor, review.opened_by_id, review.opened_by):
            raise PermissionDenied("separation of duties: who opened a review may not decide it")

    # -- helpers ------------------------------------------------------------------------
    def _refusals_audited(
        self, caller: Caller, kind: str, facts: dict[str, Any], work: Callable[[Session], T]
    ) -> T:
        """Run `work` in a transaction; a refusal is recorded and committed, then raised."""
        with self.tx.write() as session:
            try:
                return work(session)
            except (Conflict, InvalidInput, NotFound, PermissionDenied) as exc:
                refusal: CofreError = exc
                outcome = "denied" if isinstance(exc, PermissionDenied | Conflict) else "rejected"
                self.audit.append(
                    session,
                    AuditEvent(
                        kind=kind,
                        actor=caller.actor,
                        outcome=outcome,
                        endpoint=caller.endpoint,
                        request_id=caller.request_id,
                        details=facts | {"refused": exc.detail},
                    ),
                )
        raise refusal

    def _review(self, session: Session, actor: Actor, review_id: int) -> DecisionReview:
        review = session.get(DecisionReview, review_id)
        if review is None or not actor.may_use_model(review.model_name):
            raise NotFound(f"no review {review_id}")
        return review

    def _open_review(self, session: Session, request_id: str, row: int) -> DecisionReview | None:
        stmt = select(DecisionReview).where(
            DecisionReview.request_id == request_id,
            DecisionReview.row == row,
            DecisionReview.status == "open",
        )
        return session.scalars(stmt.limit(1)).first()

    def _unsealed(self, session: Session, review: DecisionReview) -> ReviewView:
        opened = self.sealer.open(
            session,
            review.key_id,
            f"review-opened:{review.request_id}:{review.row}",
            review.opened_sealed,
        )
        decided: dict[str, Any] = {}
        if review.decided_sealed is not None:
            decided = self.sealer.open(
                session, review.key_id, f"review-decided:{review.id}", review.decided_sealed
            )
        return ReviewView(review, opened, decided)

    def _event(
        self,
        session: Session,
        caller: Caller,
        kind: str,
        review: DecisionReview,
        extra: dict[str, Any],
    ) -> AuditRecord:
        details = {
            "review": review.id,
            "request_id": review.request_id,
            "row": review.row,
            "prediction_seq": review.prediction_seq,
            "pseudonym": review.pseudonym,
            "due_at": isoformat(review.due_at),
        } | extra
        return self.audit.append(
            session,
            AuditEvent(
                kind=kind,
                actor=caller.actor,
                endpoint=caller.endpoint,
                request_id=caller.request_id,
                model_name=review.model_name,
                model_version=review.model_version,
                artifact_sha256=review.artifact_sha256,
                details=details,
            ),
        )


def _identity(actor: Actor) -> str:
    return f"{actor.type}:{actor.id}"[:96]


def _same_person(actor: Actor, opened_by_id: str, opened_by: str) -> bool:
    """The same account, or the same human name across a user and a terminal login
    (API keys are systems, not people: only the same key counts as the same)."""
    if _identity(actor) == opened_by_id:
        return True
    humans = actor.type != "key" and not opened_by_id.startswith("key:")
    return humans and actor.name == opened_by


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} is required", [FieldError(name, "is required")])
    if len(value) > MAX_TEXT:
        raise InvalidInput(
            f"{name} is too long", [FieldError(name, f"at most {MAX_TEXT} characters")]
        )
    return value.strip()


def _digest(sealed: bytes) -> str:
    return hashlib.sha256(sealed).hexdigest()

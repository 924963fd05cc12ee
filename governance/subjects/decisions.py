"""One automated decision: a row of a prediction record, its recorded input and
output, the version that made it, and its explanation by that very version.

The version is found by name and number and must carry the artifact SHA-256
the record names: an alias may have moved since, but the record says which
artifact decided, and that one explains. Reading the input is a disclosure
of personal data, so an explanation is an audit event ("prediction.explained").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.records import AuditRecord
from governance.audit.service import AuditEvent, AuditLog, row_key_ids
from governance.errors import (
    Conflict,
    FieldError,
    IntegrityError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from governance.registry.records import ModelVersion
from governance.registry.service import Registry
from governance.subjects.explanations import Baseline, RowExplanation, explain

EXPLAINED = "prediction.explained"


@dataclass(frozen=True)
class Decision:
    record: AuditRecord
    row: int
    data: dict[str, Any]  # {"input", "output", "proba"?} or {"erased": True}
    pseudonym: str | None
    key_id: str
    version: ModelVersion

    @property
    def erased(self) -> bool:
        return bool(self.data.get("erased")) or "input" not in self.data


@dataclass(frozen=True)
class DecisionExplanation:
    decision: Decision
    explanation: RowExplanation

    def as_dict(self) -> dict[str, Any]:
        record = self.decision.record
        return {
            "request_id": record.request_id,
            "row": self.decision.row,
            "model": record.model_name,
            "version": record.model_version,
            "sha256": record.artifact_sha256,
            "decided_at": record.at,
            "input": self.decision.data.get("input"),
            "recorded_output": self.decision.data.get("output"),
        } | self.explanation.as_dict()


class Decisions:
    """Finds decisions in the log and explains them with the version that made them."""

    def __init__(self, audit: AuditLog, registry: Registry) -> None:
        self.audit = audit
        self.registry = registry

    def locate(self, session: Session, actor: Actor, request_id: str, row: int) -> Decision:
        record = self._prediction(session, request_id)
        if not actor.may_use_model(record.model_name or ""):
            raise PermissionDenied("this caller is limited to other models")
        keys = row_key_ids(record)
        if not isinstance(row, int) or isinstance(row, bool) or not 0 <= row < len(keys):
            raise InvalidInput(
                "no such row in that prediction",
                [FieldError("row", f"an index from 0 to {len(keys) - 1}")],
            )
        data = self.audit.decrypt_payload(session, record)[row]
        subjects = record.subjects or [None] * len(keys)
        version = self._deciding_version(session, record)
        return Decision(record, row, data, subjects[row], keys[row], version)

    def explain(
        self,
        session: Session,
        decision: Decision,
        actor: Actor,
        endpoint: str,
        request_id: str | None,
        baseline: Baseline | None = None,
    ) -> DecisionExplanation:
        """Recompute the row's explanation with its version; the disclosure is audited."""
        if decision.erased:
            raise Conflict("the row was erased; its input can no longer be explained")
        estimator = self.registry.load_estimator(decision.version)
        names = [f["name"] for f in decision.version.features]
        explained = explain(estimator, names, [decision.data["input"]], baseline)[0]
        record = decision.record
        details = {
            "request_id": record.request_id,
            "row": decision.row,
            "seq": record.seq,
            "pseudonym": decision.pseudonym,
            "method": explained.method,
        }
        self.audit.append(
            session,
            AuditEvent(
                kind=EXPLAINED,
                actor=actor,
                endpoint=endpoint,
                request_id=request_id,
                model_name=record.model_name,
                model_version=record.model_version,
                artifact_sha256=record.artifact_sha256,
                details=details,
            ),
        )
        return DecisionExplanation(decision, explained)

    @staticmethod
    def _prediction(session: Session, request_id: str) -> AuditRecord:
        stmt = select(AuditRecord).where(
            AuditRecord.request_id == request_id,
            AuditRecord.kind == "prediction",
            AuditRecord.outcome == "ok",
            AuditRecord.payload.is_not(None),
        )
        record = session.scalars(stmt.order_by(AuditRecord.seq).limit(1)).first()
        if record is None or record.model_name is None or record.model_version is None:
            raise NotFound(f"no served prediction with request id {request_id[:64]}")
        return record

    def _deciding_version(self, session: Session, record: AuditRecord) -> ModelVersion:
        version = self.registry.resolve(
            session, record.model_name or "", version=record.model_version
        )
        if version.sha256 != record.artifact_sha256:
            raise IntegrityError(
                f"model {record.model_name!r} version {record.model_version} is not the artifact "
                "the record names (SHA-256 differs)"
            )
        return version

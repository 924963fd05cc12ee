"""A subject's access request (LGPD Art. 18, GDPR Art. 15 and 20): everything the
appliance holds about one person, as items the edge renders (server/exports.py).

Every prediction row about them (input, output, probabilities, the model,
version and artifact SHA-256, purpose, time, and the legal basis, retention
and recipients from the version's card), what other parts of the appliance
hold about those rows (each a `RowSource`: reviews here, ground-truth labels
from governance/monitoring/feedback.py), their legal holds and the record of their
erasures and other requests. Erased rows are listed as erased. The export is an
audit event ("subject.exported", with the pseudonym, never the clear id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.audit.disclosures import seq_ranges
from governance.audit.records import AuditRecord
from governance.audit.search import AuditQuery, AuditSearch
from governance.audit.service import AuditEvent, AuditLog, row_key_ids
from governance.clock import isoformat, utcnow
from governance.registry.records import ModelVersion, RegisteredModel
from governance.subjects.caller import Caller
from governance.subjects.erasure import subject_events
from governance.subjects.records import SubjectHold
from governance.subjects.reviews import Reviews

KIND = "subject.exported"
FORMAT = "cofre-subject-export-1"
MAX_RECORDS = 100_000


@dataclass(frozen=True)
class RowRef:
    """One prediction row about the subject, for the row sources to look up."""

    request_id: str
    row: int
    key_id: str


class RowSource(Protocol):
    """Something that holds per-row items about a subject's rows (reviews, feedback)."""

    name: str  # the key its items get in each decision item

    def collect(self, session: Session, rows: Sequence[RowRef]) -> dict[tuple[str, int], list[Any]]:
        """Items by (request id, row); rows without items may be left out."""
        ...


class ReviewSource:
    """Reviews of the subject's decisions, their reasons and outcomes unsealed."""

    name = "reviews"

    def __init__(self, reviews: Reviews) -> None:
        self.reviews = reviews

    def collect(self, session: Session, rows: Sequence[RowRef]) -> dict[tuple[str, int], list[Any]]:
        found = self.reviews.for_rows(session, [(r.request_id, r.row) for r in rows])
        return {ref: [view.as_dict() for view in views] for ref, views in found.items()}


@dataclass(frozen=True)
class Controller:
    name: str
    contact: str


@dataclass
class SubjectExport:
    """The whole answer to one access request, as plain data."""

    subject_id: str
    pseudonym: str
    generated_at: str
    controller: Controller
    decisions: list[dict[str, Any]] = field(default_factory=list)
    processing: list[dict[str, Any]] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "generated_at": self.generated_at,
            "subject": {"id": self.subject_id, "pseudonym": self.pseudonym},
            "controller": {"name": self.controller.name, "contact": self.controller.contact},
            "processing": self.processing,
            "decisions": self.decisions,
            "legal_holds": self.holds,
            "requests": self.requests,
        }


class SubjectExports:
    """Gathers a subject's export; `sources` add per-row items (see RowSource)."""

    def __init__(
        self,
        audit: AuditLog,
        search: AuditSearch,
        sources: Sequence[RowSource],
        controller: Controller,
    ) -> None:
        self.audit = audit
        self.search = search
        self.sources = list(sources)
        self.controller = controller

    def export(self, session: Session, caller: Caller, subject_id: str, fmt: str) -> SubjectExport:
        pseudonym = self.audit.pseudonym(subject_id)
        records = self.search.matching(
            session, caller.actor, AuditQuery(subject=pseudonym), MAX_RECORDS
        )
        out = SubjectExport(subject_id, pseudonym, isoformat(utcnow()), self.controller)
        cards = _cards(session, records)
        refs: list[RowRef] = []
        for record in records:
            keys = row_key_ids(record)
            for index, data in _rows_about(
                self.audit.decrypt_payload(session, record), record, pseudonym
            ):
                out.decisions.append(_decision(record, index, data, cards))
                refs.append(RowRef(record.request_id, index, keys[index]))
        self._add_row_items(session, out.decisions, refs)
        out.processing = [_card(v) for v in cards.values()]
        out.holds = [_hold(h) for h in _holds(session, pseudonym)]
        out.requests = [_request(r) for r in subject_events(session, pseudonym)]
        details = {
            "pseudonym": pseudonym,
            "format": fmt,
            "decisions": len(out.decisions),
            "seqs": seq_ranges([r.seq for r in records]),
        }
        self.audit.append(
            session,
            AuditEvent(
                kind=KIND,
                actor=caller.actor,
                endpoint=caller.endpoint,
                request_id=caller.request_id,
                details=details,
            ),
        )
        return out

    def _add_row_items(
        self, session: Session, decisions: list[dict[str, Any]], refs: list[RowRef]
    ) -> None:
        for source in self.sources:
            found = source.collect(session, refs)
            for decision, ref in zip(decisions, refs, strict=True):
                decision[source.name] = found.get((ref.request_id, ref.row), [])


def _rows_about(
    rows: list[dict[str, Any]], record: AuditRecord, pseudonym: str
) -> list[tuple[int, dict[str, Any]]]:
    subjects = record.subjects or []
    return [
        (i, data) for i, data in enumerate(rows) if i < len(subjects) and subjects[i] == pseudonym
    ]


def _decision(
    record: AuditRecord,
    index: int,
    data: dict[str, Any],
    cards: dict[tuple[str, int], ModelVersion],
) -> dict[str, Any]:
    card = cards.get((record.model_name or "", record.model_version or 0))
    erased = bool(data.get("erased")) or "input" not in data
    return {
        "request_id": record.request_id,
        "row": index,
        "seq": record.seq,
        "at": record.at,
        "model": record.model_name,
        "version": record.model_version,
        "sha256": record.artifact_sha256,
        "purpose": record.purpose or (card.purpose if card else None),
        "legal_basis": card.legal_basis if card else None,
        "endpoint": record.endpoint,
        "erased": erased,
        "input": None if erased else data.get("input"),
        "output": None if erased else data.get("output"),
        "probabilities": None if erased else data.get("proba"),
    }


def _cards(session: Session, records: list[AuditRecord]) -> dict[tuple[str, int], ModelVersion]:
    wanted = {(r.model_name, r.model_version) for r in records if r.model_name and r.model_version}
    if not wanted:
        return {}
    names = sorted({name for name, _ in wanted})
    stmt = (
        select(RegisteredModel.name, ModelVersion)
        .join(ModelVersion, ModelVersion.model_id == RegisteredModel.id)
        .where(RegisteredModel.name.in_(names))
    )
    return {
        (name, version.version): version
        for name, version in session.execute(stmt)
        if (name, version.version) in wanted
    }


def _card(version: ModelVersion) -> dict[str, Any]:
    return {
        "model": version.model.name,
        "version": version.version,
        "sha256": version.sha256,
        "purpose": version.purpose,
        "legal_basis": version.legal_basis,
        "decision_mode": version.decision_mode,
        "retention_days": version.retention_days,
        "recipients": version.recipients,
        "owner": version.owner,
        "data_categories": [f["name"] for f in version.features],
    }


def _holds(session: Session, pseudonym: str) -> list[SubjectHold]:
    stmt = select(SubjectHold).where(SubjectHold.pseudonym == pseudonym).order_by(SubjectHold.id)
    return list(session.scalars(stmt))


def _hold(hold: SubjectHold) -> dict[str, Any]:
    return {
        "placed_at": isoformat(hold.placed_at),
        "reason": hold.reason,
        "released_at": isoformat(hold.released_at) if hold.released_at else None,
    }


def _request(record: AuditRecord) -> dict[str, Any]:
    details = {k: v for k, v in (record.details or {}).items() if k != "pseudonym"}
    return {
        "seq": record.seq,
        "at": record.at,
        "kind": record.kind,
        "outcome": record.outcome,
        "details": details,
    }

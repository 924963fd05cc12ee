"""Retention: shredding the data keys of prediction rows older than their version's period.

Every version's model card names a retention period in days. A subject's key
covers one model version and one UTC day (governance/audit/keyscopes.py), so a
key can go once that whole day is older than the period: rows are kept at
least their period and at most one day more. Keys of subjects under legal hold,
and of rows under an open review, are never shredded. What one run would shred
is listed by `plan` (`cofre subjects retention --dry-run`); `run` shreds it and
appends one record saying how many keys per version. Keys made before scoped
keys existed have no window and are left to erasure. The same run shreds the
artifact data keys of retired versions whose retention after retirement has passed
(governance/registry/retirement.py), each its own audited step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.records import AuditDataKey
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import isoformat, utcnow
from governance.registry.records import ModelVersion, RegisteredModel
from governance.registry.retirement import Retirements
from governance.subjects.erasure import held_pseudonyms
from governance.subjects.records import DecisionReview
from governance.subjects.shredding import live_keys, shred

KIND = "retention.shredded"
# A row is written a moment after the key's scope is chosen (the chain's head lock
# sits between); this margin keeps every row at least its full period.
GRACE = timedelta(minutes=5)


@dataclass(frozen=True)
class Expiry:
    """The expired keys of one model version (or of rows with no version: model None)."""

    model_name: str | None
    model_version: int | None
    retention_days: int
    cutoff: datetime
    key_ids: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "version": self.model_version,
            "retention_days": self.retention_days,
            "cutoff": isoformat(self.cutoff),
            "keys": len(self.key_ids),
        }


@dataclass(frozen=True)
class RetentionReport:
    at: datetime
    expiries: list[Expiry]
    shredded: int
    artifacts: list[str] = field(default_factory=list)  # "NAME:V" of shredded artifacts

    @property
    def due(self) -> int:
        return sum(len(e.key_ids) for e in self.expiries)


class Retention:
    """Plans and runs retention; `default_days` covers rows that name no model version."""

    def __init__(
        self, audit: AuditLog, default_days: int, retirements: Retirements | None = None
    ) -> None:
        self.audit = audit
        self.default_days = default_days
        self.retirements = retirements

    def plan(self, session: Session) -> RetentionReport:
        """What a run now would shred (nothing is changed)."""
        now = utcnow()
        periods = _periods(session)
        spared = _spared(session)
        expiries = []
        for name, version in _scopes_with_windows(session):
            days = periods.get((name, version), self.default_days)
            cutoff = now - timedelta(days=days) - GRACE
            keys = live_keys(
                session,
                _same(AuditDataKey.model_name, name),
                _same(AuditDataKey.model_version, version),
                AuditDataKey.window_end <= cutoff,
            )
            keys = [k for k in keys if k not in spared]
            if keys:
                expiries.append(Expiry(name, version, days, cutoff, keys))
        return RetentionReport(now, expiries, 0, self._artifacts_due(session))

    def _artifacts_due(self, session: Session) -> list[str]:
        if self.retirements is None:
            return []
        return [f"{v.model.name}:{v.version}" for v in self.retirements.due(session)]

    def run(self, session: Session, actor: Actor) -> RetentionReport:
        """Shred what `plan` lists and record the run in the chain."""
        planned = self.plan(session)
        shredded = sum(shred(session, e.key_ids, "retention") for e in planned.expiries)
        details = {"shredded": shredded, "versions": [e.as_dict() for e in planned.expiries]}
        self.audit.append(session, AuditEvent(kind=KIND, actor=actor, details=details))
        artifacts = []
        if self.retirements is not None:
            artifacts = [
                f"{v.model.name}:{v.version}" for v in self.retirements.shred_due(session, actor)
            ]
        return RetentionReport(planned.at, planned.expiries, shredded, artifacts)


def _periods(session: Session) -> dict[tuple[str | None, int | None], int]:
    rows = session.execute(
        select(RegisteredModel.name, ModelVersion.version, ModelVersion.retention_days).join(
            ModelVersion, ModelVersion.model_id == RegisteredModel.id
        )
    )
    return {(name, version): days for name, version, days in rows}


def _scopes_with_windows(session: Session) -> list[tuple[str | None, int | None]]:
    stmt = (
        select(AuditDataKey.model_name, AuditDataKey.model_version)
        .where(AuditDataKey.wrapped.is_not(None), AuditDataKey.window_end.is_not(None))
        .distinct()
    )
    return [(name, version) for name, version in session.execute(stmt)]


def _spared(session: Session) -> set[str]:
    """Keys retention must not touch: held subjects' and open reviews' rows."""
    held = held_pseudonyms(session)
    spared = set(
        session.scalars(select(DecisionReview.key_id).where(DecisionReview.status == "open"))
    )
    if held:
        spared |= set(live_keys(session, AuditDataKey.pseudonym.in_(sorted(held))))
    return spared


def _same(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value

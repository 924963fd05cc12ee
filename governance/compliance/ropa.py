"""The record of processing activities, generated from the model cards and the config.

One activity per registered model, described by the version that serves it
(the `production` alias, else the newest): purpose, legal basis, decision
mode, the data categories it reads (its feature names), recipients, retention.
Then the security measures in force: encryption, the master key and when it
was last rotated, the audit chain's last verification and checkpoint, the last
verified backup. Facts that live outside the database (the backups) are
handed in by the caller; rendering (JSON, Markdown) is done at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.audit.records import AuditRecord
from governance.audit.service import AuditLog
from governance.audit.verifications import last_verification
from governance.clock import isoformat, utcnow
from governance.registry.records import ModelVersion, RegisteredModel
from governance.registry.service import DEFAULT_ALIAS

ENCRYPTION = (
    "Model artifacts and personal data in the audit log are encrypted at rest with "
    "AES-256-GCM under data keys wrapped by a master key kept outside the database and "
    "outside backups; subject ids are stored only as keyed HMAC-SHA256 pseudonyms."
)
ERASURE = (
    "Erasure and retention destroy the data keys of a subject's rows (crypto-shredding); "
    "an erasure journal outside the database is re-applied on every restore."
)
AUDIT = (
    "Every prediction and admin action is in a SHA-256 hash chain with Ed25519-signed checkpoints."
)


@dataclass(frozen=True)
class Facts:
    """What the caller knows that the database does not."""

    controller_name: str
    controller_contact: str
    master_key_id: str
    last_verified_backup: str | None  # "<id> at <time>" or None


@dataclass
class RecordOfProcessing:
    generated_at: str
    controller: dict[str, str]
    activities: list[dict[str, Any]] = field(default_factory=list)
    security: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "format": "cofre-ropa-1",
            "generated_at": self.generated_at,
            "controller": self.controller,
            "activities": self.activities,
            "security_measures": self.security,
        }


def record_of_processing(session: Session, audit: AuditLog, facts: Facts) -> RecordOfProcessing:
    ropa = RecordOfProcessing(
        generated_at=isoformat(utcnow()),
        controller={"name": facts.controller_name, "contact": facts.controller_contact},
    )
    for model in session.scalars(select(RegisteredModel).order_by(RegisteredModel.name)):
        version = _serving(model)
        if version is not None:
            ropa.activities.append(_activity(model, version))
    ropa.security = _security(session, audit, facts)
    return ropa


def _serving(model: RegisteredModel) -> ModelVersion | None:
    production = next((a.version for a in model.aliases if a.name == DEFAULT_ALIAS), None)
    chosen = next((v for v in model.versions if v.version == production), None)
    return chosen or (model.versions[-1] if model.versions else None)


def _activity(model: RegisteredModel, version: ModelVersion) -> dict[str, Any]:
    return {
        "model": model.name,
        "version": version.version,
        "serving": "production alias"
        if any(a.name == DEFAULT_ALIAS and a.version == version.version for a in model.aliases)
        else "newest version (no production alias)",
        "purpose": version.purpose,
        "legal_basis": version.legal_basis,
        "decision_mode": version.decision_mode,
        "data_categories": [f["name"] for f in version.features],
        "recipients": version.recipients or "not stated on the model card",
        "retention_days": version.retention_days,
        "owner": version.owner,
        "published_by": version.published_by,
        "published_at": isoformat(version.published_at),
    }


def _security(session: Session, audit: AuditLog, facts: Facts) -> dict[str, Any]:
    verified = last_verification(session)
    checkpoint = audit.latest_checkpoint(session)
    rotated = _latest(session, "keys.master_rotated")
    return {
        "encryption": ENCRYPTION,
        "erasure": ERASURE,
        "audit_log": AUDIT,
        "master_key": facts.master_key_id,
        "master_key_last_rotated": rotated.at if rotated else "never (the first master key)",
        "audit_chain_last_verification": (
            f"{'intact' if verified.ok else 'FAILED'} at {verified.at} ({verified.checked} records)"
            if verified
            else "never verified from the admin pages"
        ),
        "audit_last_checkpoint": (
            f"record {checkpoint.seq} signed at {checkpoint.at}" if checkpoint else "none yet"
        ),
        "last_verified_backup": facts.last_verified_backup or "none",
    }


def _latest(session: Session, kind: str) -> AuditRecord | None:
    stmt = select(AuditRecord).where(AuditRecord.kind == kind).order_by(AuditRecord.seq.desc())
    return session.scalars(stmt.limit(1)).first()

"""Provenance use cases: a signature checked at publish, recorded with the version, and
checked again before every load of the version into a worker.

Policy: with `require_signed` an unsigned artifact is refused at publish, and an
unsigned version (say, one whose signature row was deleted) refuses to load.
A signature given is always checked, whatever the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import utcnow
from governance.errors import IntegrityError, UntrustedArtifact
from governance.provenance import signatures
from governance.provenance.records import TrustedSigner, VersionOrigin, VersionSignature
from governance.provenance.signers import Signers
from governance.registry.records import ModelVersion


@dataclass(frozen=True)
class SignatureCheck:
    """A signature that verified at publish, by the trusted signer named."""

    signer: str
    fingerprint: str
    signature: bytes


@dataclass(frozen=True)
class Origin:
    """Where an artifact comes from, as told at publish (MLflow) or import (bundle)."""

    source: str
    reference: str
    run_id: str | None = None
    link: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    training_data_sha256: str | None = None  # of the file the model learnt from
    source_commit: str | None = None  # of the code that trained it

    def facts(self) -> dict[str, str]:
        """The training data's digest and the source commit, where known."""
        known = {"training_data_sha256": self.training_data_sha256}
        known["source_commit"] = self.source_commit
        return {k: v for k, v in known.items() if v}


class Provenance:
    """Checks and records who vouches for each version."""

    def __init__(self, signers: Signers, audit: AuditLog, require_signed: bool = False) -> None:
        self.signers = signers
        self.audit = audit
        self.require_signed = require_signed

    def check_publish(
        self, session: Session, sha256: str, signature: bytes | None
    ) -> SignatureCheck | None:
        """The verified signature of an artifact about to be published, or a refusal."""
        if signature is None:
            if self.require_signed:
                raise UntrustedArtifact(
                    "this appliance requires signed models: sign the file with "
                    "`cofre models sign` and publish it with --signature"
                )
            return None
        signer, digest = self._verified(session, signature)
        if digest != sha256:
            raise UntrustedArtifact(
                f"the signature by {signer.name!r} is over another file (SHA-256 differs)"
            )
        return SignatureCheck(signer.name, signer.fingerprint, signature)

    def _verified(self, session: Session, signature: bytes) -> tuple[TrustedSigner, str]:
        hint = signatures.key_hint(signature)
        candidates = (
            self.signers.by_fingerprint(session, hint, "artifact")
            if hint
            else self.signers.all(session, "artifact")
        )
        for signer in candidates:
            self.signers.check_seal(signer)
            try:
                return signer, signatures.signed_digest(signature, signer.public_key)
            except UntrustedArtifact:
                if hint:
                    raise
        raise UntrustedArtifact(
            "the signature is not by a trusted signer (an admin adds one with `cofre signers add`)"
        )

    def record(
        self, session: Session, actor: Actor, version: ModelVersion, check: SignatureCheck
    ) -> None:
        session.add(
            VersionSignature(
                version_id=version.id,
                signer=check.signer,
                fingerprint=check.fingerprint,
                format=signatures.FORMAT,
                signature=check.signature,
                verified_at=utcnow(),
            )
        )
        session.flush()
        self.audit.append(
            session,
            AuditEvent(
                kind="model.signature_verified",
                actor=actor,
                model_name=version.model.name,
                model_version=version.version,
                artifact_sha256=version.sha256,
                details={"signer": check.signer, "fingerprint": check.fingerprint},
            ),
        )

    def record_origin(
        self, session: Session, actor: Actor, version: ModelVersion, origin: Origin
    ) -> None:
        session.add(
            VersionOrigin(
                version_id=version.id,
                source=origin.source,
                reference=origin.reference,
                run_id=origin.run_id,
                link=origin.link,
                params=origin.params,
                metrics=origin.metrics,
                details=origin.details | origin.facts(),
            )
        )
        session.flush()
        self.audit.append(
            session,
            AuditEvent(
                kind="model.origin_recorded",
                actor=actor,
                model_name=version.model.name,
                model_version=version.version,
                artifact_sha256=version.sha256,
                details={
                    "source": origin.source,
                    "reference": origin.reference[:200],
                    "run_id": origin.run_id,
                }
                | origin.facts(),
            ),
        )

    def verify_for_load(self, session: Session, version: ModelVersion) -> str | None:
        """The signer that still vouches for `version`, checked now; IntegrityError when
        its signature no longer verifies (signer removed, record changed) or, under the
        policy, when it has none. None for an unsigned version without the policy."""
        what = f"model {version.model.name!r} version {version.version}"
        row: VersionSignature | None = getattr(version, "signature", None)
        if row is None:
            if self.require_signed:
                raise IntegrityError(f"{what} is unsigned and this appliance requires signatures")
            return None
        signer = self.signers.trusted(session, row.signer, "artifact")
        if signer is None or signer.fingerprint != row.fingerprint:
            raise IntegrityError(f"{what}: its signer {row.signer!r} is no longer trusted")
        try:
            digest = signatures.signed_digest(row.signature, signer.public_key)
        except UntrustedArtifact:
            raise IntegrityError(f"{what}: its signature no longer verifies") from None
        if digest != version.sha256:
            raise IntegrityError(f"{what}: its signature is over another artifact")
        return signer.name

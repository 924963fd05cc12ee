"""ORM classes of provenance: the trusted signers, the signature each version carries and
where each version came from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from governance.db import Base, UTCDateTime
from governance.registry.records import ModelVersion


class TrustedSigner(Base):
    """A public key the appliance trusts: a data scientist's (`artifact`) or another
    appliance's (`appliance`, for bundles). `seal` is an HMAC under a key-directory
    key, so a row written by someone who can only write the database is refused."""

    __tablename__ = "trusted_signers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(Text)  # PEM, SubjectPublicKeyInfo
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seal: Mapped[bytes] = mapped_column(LargeBinary)


class VersionSignature(Base):
    """The detached signature a version was published with, kept to verify it again
    at every load into a worker."""

    __tablename__ = "model_version_signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), unique=True)
    signer: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # The version reads its signature as `version.signature` (None when unsigned),
    # declared here so that the registry's records need not know of provenance.
    version: Mapped[ModelVersion] = relationship(
        backref=backref("signature", uselist=False, lazy="selectin")
    )


class VersionOrigin(Base):
    """Where a version came from: an MLflow run (its id, a link, the training run's
    parameters and metrics) or another appliance's bundle (`details`: the exporting
    appliance, its version, aliases and attestation)."""

    __tablename__ = "model_version_origins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), unique=True)
    source: Mapped[str] = mapped_column(Text)  # "mlflow", "bundle"
    reference: Mapped[str] = mapped_column(Text)  # models:/N/V, a directory, a bundle
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    link: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)

    version: Mapped[ModelVersion] = relationship(
        backref=backref("origin", uselist=False, lazy="selectin")
    )

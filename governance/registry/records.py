"""ORM classes of the registry: models, versions, their compiled form, what each version
records of how it was made and where it was verified, aliases and history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from governance.db import Base, UTCDateTime


class RegisteredModel(Base):
    """A named model; its versions are immutable once published."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.version", lazy="selectin"
    )
    aliases: Mapped[list[Alias]] = relationship(
        back_populates="model", lazy="selectin", order_by="Alias.name"
    )


class ModelVersion(Base):
    """One published artifact with everything needed to serve and account for it."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    artifact_file: Mapped[str] = mapped_column(String(255))
    kek_id: Mapped[str] = mapped_column(String(64))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    # [{"name": ..., "dtype": ...}] in the estimator's column order.
    features: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    named_features: Mapped[bool] = mapped_column(Boolean)
    has_proba: Mapped[bool] = mapped_column(Boolean)
    classes: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    allow_missing: Mapped[bool] = mapped_column(Boolean, default=False)
    estimator_type: Mapped[str] = mapped_column(String(255))
    sklearn_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    published_by: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    description: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    decision_mode: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(128), default="")
    # How long personal data in this version's audit rows is kept (days), and who
    # receives its decisions: the card's answers to GDPR Art. 30 / LGPD Art. 37.
    retention_days: Mapped[int] = mapped_column(Integer, default=365)
    recipients: Mapped[str] = mapped_column(Text, default="")

    model: Mapped[RegisteredModel] = relationship(back_populates="versions")
    compilation: Mapped[Compilation | None] = relationship(
        back_populates="model_version", lazy="selectin", uselist=False
    )
    # Loaded when read (not with every resolve on the serving path); verifications
    # come along: whether the version may load depends on them.
    facts: Mapped[VersionFacts | None] = relationship(back_populates="model_version", uselist=False)
    verifications: Mapped[list[VersionVerification]] = relationship(
        back_populates="model_version", lazy="selectin", order_by="VersionVerification.id"
    )
    # Read with every resolve: serving answers differently once a version is on its
    # way out (headers before the sunset, 410 after it or once retired).
    retirement: Mapped[VersionRetirement | None] = relationship(
        back_populates="model_version", lazy="selectin", uselist=False
    )

    @property
    def runtime(self) -> str:
        """The runtime that answers for this version: "onnx" only once proven equal."""
        return self.compilation.runtime if self.compilation is not None else "sklearn"


class Compilation(Base):
    """A version's estimator compiled to ONNX, or why it was not (one per version).

    The ONNX model is stored encrypted like the skops artifact, under its own data
    key; `proof` holds the figures of its comparison with the estimator. A version
    serves from it only when `runtime` is "onnx".
    """

    __tablename__ = "model_compilations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), unique=True)
    requested: Mapped[str] = mapped_column(String(16))  # "auto" | "sklearn" | "onnx"
    runtime: Mapped[str] = mapped_column(String(16))  # "onnx" | "sklearn"
    reason: Mapped[str] = mapped_column(Text, default="")  # why sklearn, when it is
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    artifact_file: Mapped[str | None] = mapped_column(String(255), nullable=True)
    kek_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    proof: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    compiled_by: Mapped[str] = mapped_column(String(64))
    compiled_at: Mapped[datetime] = mapped_column(UTCDateTime)

    model_version: Mapped[ModelVersion] = relationship(back_populates="compilation")


class VersionFacts(Base):
    """How a version was made, recorded at publish (one per version; versions published
    before it existed have none): the estimator's hyper-parameters, the library
    versions it was trained with, the publisher's note, and what changed against the
    version it was to replace (`compared_with`: production's target, else the latest)."""

    __tablename__ = "model_version_facts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), unique=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # get_params(deep=True), JSON-safe
    libraries: Mapped[dict[str, str]] = mapped_column(JSON)  # distribution name -> version
    note: Mapped[str] = mapped_column(Text, default="")
    compared_with: Mapped[int | None] = mapped_column(Integer, nullable=True)
    changelog: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Generated rows and the estimator's answers on them (`lifecycle.reference_sample`):
    # what `cofre models verify` compares its answers under a new scikit-learn with.
    # Deferred: tens of kilobytes for a wide schema, read by verification only.
    sample: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, deferred=True)

    model_version: Mapped[ModelVersion] = relationship(back_populates="facts")


class VersionVerification(Base):
    """A version checked again under the scikit-learn version then running (`cofre
    models verify`): the publish checks passed and, where there was a reference to
    compare with, its outputs matched. It lets a version trained under another
    scikit-learn minor version load under this one."""

    __tablename__ = "model_version_verifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    sklearn_version: Mapped[str] = mapped_column(String(32))
    comparison: Mapped[dict[str, Any]] = mapped_column(JSON)
    verified_by: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime)

    model_version: Mapped[ModelVersion] = relationship(back_populates="verifications")


class VersionRetirement(Base):
    """A version on its way out of serving (one per version, each step once, none undone):
    deprecated (it serves until `sunset_at`, its answers saying so), retired (out of
    serving at once), and its artifact's data key shredded once the card's retention
    after retirement has passed (the encrypted file is kept until then, for the audit)."""

    __tablename__ = "model_version_retirements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), unique=True)
    deprecated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deprecated_by: Mapped[str] = mapped_column(String(64), default="")
    sunset_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_by: Mapped[str] = mapped_column(String(64), default="")
    shredded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    model_version: Mapped[ModelVersion] = relationship(back_populates="retirement")


class VersionEvent(Base):
    """One step of a version's life after its publish (deprecated, retired, shredded):
    with the versions' publishes and the alias moves, the history a model's page lists."""

    __tablename__ = "model_version_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # deprecated | retired | shredded
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Alias(Base):
    """A movable name (`production`, `staging`, ...) pointing at one version."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))

    model: Mapped[RegisteredModel] = relationship(back_populates="aliases")


class AliasHistory(Base):
    """Every move of an alias, so a rollback knows where it pointed before."""

    __tablename__ = "model_alias_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # "set" | "rollback"
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ArtifactBlob(Base):
    """An encrypted artifact kept in the database (artifact_store = "database"), so
    that every application host reads it with no shared file system. `sealed` is the
    same AES-GCM framing a file holds, under the same file name: which place holds the
    bytes changes nothing of how they are sealed or checked (registry/artifacts.py).
    Rows are written once and never updated; a retired version's row is deleted when
    its key is shredded."""

    __tablename__ = "artifact_blobs"

    file_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime)

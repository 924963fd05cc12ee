"""ORM classes of the audit log: records, the chain head, data keys and checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, UTCDateTime


class AuditRecord(Base):
    """One link of the chain. Every column but `hash` and `mac` is covered by `hash`."""

    __tablename__ = "audit_records"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32), index=True)  # canonical UTC text
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(48), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64), index=True)
    actor_role: Mapped[str] = mapped_column(String(16))
    endpoint: Mapped[str] = mapped_column(String(128))
    model_name: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(256), nullable=True)
    # Pseudonyms (keyed HMAC) of the subjects the request is about, one per row.
    subjects: Mapped[list[str | None] | None] = mapped_column(JSON, nullable=True)
    # Encrypted inputs/outputs: [{"k": data key id, "c": base64 ciphertext}, ...], one
    # entry per row, or one entry {"k", "c", "rows": n} sealing n rows together.
    payload: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # Non-personal facts about the event (alias moved from/to, error summary, rows).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # Keyed MAC of (seq, hash) on the newest record of each committed batch, null on
    # the others and on records written before MACs existed (governance/audit/macs.py).
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditHead(Base):
    """Single row holding the newest (seq, hash); appenders lock it to stay gapless."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    # Keyed MAC of (seq, hash): only the appliance can move the head.
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditDataKey(Base):
    """A data key that encrypts personal data in the log, wrapped by a KEK.

    Kept outside the hashed records so that re-wrapping (master rotation) and
    destruction (erasure, retention) leave the chain intact. `pseudonym` is set
    for a subject's key and null for a per-record key.

    A subject's key covers one scope: that subject's rows for one model version
    on one UTC day (see governance/audit/keyscopes.py). `scope` is the digest of
    that triple while the key is live and null once it is destroyed, so the
    same scope can open a new key (a new epoch) after an erasure; `model_name`,
    `model_version` and `window_end` tell retention when every row under the key
    is past its model's period.
    """

    __tablename__ = "audit_data_keys"
    __table_args__ = (
        Index("ix_audit_data_keys_retention", "model_name", "model_version", "window_end"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pseudonym: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    kek_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    scope: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    model_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    destroyed_by: Mapped[str | None] = mapped_column(String(16), nullable=True)


class AuditCheckpoint(Base):
    """A signed statement of the head at a moment (Ed25519)."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(32))
    public_key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)

"""Master-key rotation: a new KEK; every data key (artifact, compiled, audit) re-wrapped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.records import AuditDataKey
from governance.audit.service import AuditEvent, AuditLog, data_key_context
from governance.crypto.keyring import KeyRing, WrappedKey
from governance.registry.artifacts import ONNX, key_context
from governance.registry.records import Compilation, ModelVersion
from governance.registry.retirement import is_shredded


@dataclass(frozen=True)
class RotationResult:
    old_kek: str
    new_kek: str
    rewrapped: int


def rotate_master_key(
    session: Session,
    keyring: KeyRing,
    audit: AuditLog,
    actor: Actor,
    progress: Callable[[int], None] | None = None,
) -> RotationResult:
    """Re-wrap artifact and audit data keys under a new KEK, in one transaction.

    The new KEK file is written before the transaction; if re-wrapping fails the
    transaction rolls back and the old KEK still opens everything (both files stay).
    """
    old, new = keyring.rotate_master()
    count = 0
    for version in session.scalars(select(ModelVersion)):
        if is_shredded(version):  # its key is gone for good: nothing to re-wrap
            continue
        context = key_context(version.model.name, version.version, version.sha256)
        plain = keyring.unwrap(WrappedKey(version.kek_id, version.wrapped_key), context)
        wrapped = keyring.wrap(plain, context)
        version.kek_id, version.wrapped_key = wrapped.kek_id, wrapped.blob
        count += _tick(progress)
    for row in session.scalars(select(Compilation).where(Compilation.wrapped_key.is_not(None))):
        owner = row.model_version
        context = key_context(owner.model.name, owner.version, row.sha256 or "", ONNX)
        plain = keyring.unwrap(WrappedKey(row.kek_id or "", row.wrapped_key or b""), context)
        wrapped = keyring.wrap(plain, context)
        row.kek_id, row.wrapped_key = wrapped.kek_id, wrapped.blob
        count += _tick(progress)
    for data_key in session.scalars(select(AuditDataKey).where(AuditDataKey.wrapped.is_not(None))):
        context = data_key_context(data_key.id)
        plain = keyring.unwrap(WrappedKey(data_key.kek_id or "", data_key.wrapped or b""), context)
        wrapped = keyring.wrap(plain, context)
        data_key.kek_id, data_key.wrapped = wrapped.kek_id, wrapped.blob
        count += _tick(progress)
    audit.append(
        session,
        AuditEvent(
            kind="keys.master_rotated",
            actor=actor,
            details={"old_kek": old, "new_kek": new, "rewrapped": count},
        ),
    )
    return RotationResult(old, new, count)


def _tick(progress: Callable[[int], None] | None) -> int:
    if progress:
        progress(1)
    return 1

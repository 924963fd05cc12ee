"""Sealing what is said about a decision under the data key of the row it is about.

A review's reason, its decision's reason, a corrected output and a ground-truth
label are personal data about the same person as the row; sealed under that
row's key they are erased together with it (erasure, retention) and need no keys
of their own.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from governance.audit.chain import plain_bytes
from governance.audit.records import AuditDataKey
from governance.audit.service import data_key_context
from governance.crypto.envelope import open_sealed, seal
from governance.crypto.keyring import KeyRing, WrappedKey
from governance.errors import Conflict

ERASED: dict[str, Any] = {"erased": True}


class RowSealer:
    """Seals and opens small JSON documents under an audit row's data key."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def seal(self, session: Session, key_id: str, context: str, document: dict[str, Any]) -> bytes:
        key = self.key(session, key_id)
        if key is None:
            raise Conflict("the row this is about was erased")
        return self.seal_with(key, key_id, context, document)

    def open(self, session: Session, key_id: str, context: str, sealed: bytes) -> dict[str, Any]:
        """The document, or {"erased": true} once the row's key is destroyed."""
        return self.open_with(self.key(session, key_id), key_id, context, sealed)

    def key(self, session: Session, key_id: str) -> bytes | None:
        """The row's data key, or None once it is destroyed."""
        row = session.get(AuditDataKey, key_id)
        return None if row is None else self.unwrap(row.id, row.kek_id, row.wrapped)

    def unwrap(self, key_id: str, kek_id: str | None, wrapped: bytes | None) -> bytes | None:
        """A data key from its stored material (read in bulk by a caller that caches
        the keys of many rows), or None once it is destroyed."""
        if wrapped is None or kek_id is None:
            return None
        return self.keyring.unwrap(WrappedKey(kek_id, wrapped), data_key_context(key_id))

    @staticmethod
    def seal_with(key: bytes, key_id: str, context: str, document: dict[str, Any]) -> bytes:
        return seal(key, plain_bytes(document), _aad(context, key_id))

    @staticmethod
    def open_with(key: bytes | None, key_id: str, context: str, sealed: bytes) -> dict[str, Any]:
        """Like `open`, with the key already at hand (None: destroyed)."""
        if key is None:
            return dict(ERASED)
        document: dict[str, Any] = json.loads(
            open_sealed(key, sealed, _aad(context, key_id), context)
        )
        return document


def _aad(context: str, key_id: str) -> bytes:
    return f"cofre-row-note\x00{context}\x00{key_id}".encode()

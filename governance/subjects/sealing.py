"""Sealing what is said about a decision under the data key of the row it is about.

A review's reason, its decision's reason and a corrected output are personal
data about the same person as the row; sealed under that row's key they are
erased together with it (erasure, retention) and need no keys of their own.
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
        key = self._key(session, key_id)
        if key is None:
            raise Conflict("the row this is about was erased")
        plain = plain_bytes(document)
        return seal(key, plain, _aad(context, key_id))

    def open(self, session: Session, key_id: str, context: str, sealed: bytes) -> dict[str, Any]:
        """The document, or {"erased": true} once the row's key is destroyed."""
        key = self._key(session, key_id)
        if key is None:
            return dict(ERASED)
        document: dict[str, Any] = json.loads(
            open_sealed(key, sealed, _aad(context, key_id), context)
        )
        return document

    def _key(self, session: Session, key_id: str) -> bytes | None:
        row = session.get(AuditDataKey, key_id)
        if row is None or row.wrapped is None or row.kek_id is None:
            return None
        return self.keyring.unwrap(WrappedKey(row.kek_id, row.wrapped), data_key_context(row.id))


def _aad(context: str, key_id: str) -> bytes:
    return f"cofre-row-note\x00{context}\x00{key_id}".encode()

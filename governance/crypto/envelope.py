"""AES-256-GCM envelopes: a fresh data key per object, bound to its context by AAD."""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from governance.crypto.keyring import KEY_BYTES, NONCE_BYTES
from governance.errors import IntegrityError

MAGIC = b"COFRE-AEAD-1\x00"


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def seal(data_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """MAGIC + nonce + ciphertext-with-tag."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad)


def open_sealed(data_key: bytes, sealed: bytes, aad: bytes, what: str) -> bytes:
    """Inverse of seal; `what` names the object in the error (never its content)."""
    if not sealed.startswith(MAGIC):
        raise IntegrityError(f"{what}: not a cofre envelope")
    body = sealed[len(MAGIC) :]
    try:
        return AESGCM(data_key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], aad)
    except InvalidTag:
        raise IntegrityError(
            f"{what}: failed authentication (modified, swapped or wrong key)"
        ) from None

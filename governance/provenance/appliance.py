"""This appliance's identity: an Ed25519 key that signs bundles and an X25519 key that
bundles sent to it are encrypted to, both kept in the key directory.

`public_keys()` is what `cofre appliance key` prints: the two public keys as PEM
blocks, signing key first. Another appliance trusts it with `cofre signers add
--appliance NAME FILE`.
"""

from __future__ import annotations

import hashlib
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from governance.crypto.keyring import KeyRing
from governance.errors import InvalidInput

SIGNING_KEY = "appliance-signing.key"
ENCRYPTION_KEY = "appliance-encryption.key"

_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)


def _spki(key: Ed25519PublicKey | X25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def check_appliance_key(text: bytes) -> str:
    """The canonical PEM of an appliance key file: its Ed25519 signing key, then its
    X25519 encryption key when the file has one; InvalidInput otherwise."""
    signing: Ed25519PublicKey | None = None
    encryption: X25519PublicKey | None = None
    for block in _PEM_BLOCK.findall(text):
        try:
            key = serialization.load_pem_public_key(block)
        except (ValueError, TypeError):
            raise InvalidInput("the appliance key file holds an unreadable PEM block") from None
        if isinstance(key, Ed25519PublicKey) and signing is None:
            signing = key
        elif isinstance(key, X25519PublicKey) and encryption is None:
            encryption = key
    if signing is None:
        raise InvalidInput(
            "an appliance key file holds an Ed25519 public key (the output of "
            "`cofre appliance key`)"
        )
    return _spki(signing) + (_spki(encryption) if encryption is not None else "")


def signing_key(keyring: KeyRing) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(keyring.secret(SIGNING_KEY))


def encryption_key(keyring: KeyRing) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(keyring.secret(ENCRYPTION_KEY))


def public_keys(keyring: KeyRing) -> str:
    """What `cofre appliance key` prints: signing key, then encryption key (PEM)."""
    return _spki(signing_key(keyring).public_key()) + _spki(encryption_key(keyring).public_key())


def appliance_id(signing_pem: str) -> str:
    """A short, stable name for an appliance: its signing key's fingerprint."""
    return hashlib.sha256(signing_pem.encode()).hexdigest()[:16]


def identity(keyring: KeyRing) -> str:
    """This appliance's id (see appliance_id)."""
    return appliance_id(_spki(signing_key(keyring).public_key()))


def parts(canonical: str) -> tuple[Ed25519PublicKey, X25519PublicKey | None]:
    """The keys of a canonical appliance key text (see check_appliance_key)."""
    blocks = [serialization.load_pem_public_key(b) for b in _PEM_BLOCK.findall(canonical.encode())]
    signing = blocks[0]
    assert isinstance(signing, Ed25519PublicKey)
    encryption = blocks[1] if len(blocks) > 1 else None
    assert encryption is None or isinstance(encryption, X25519PublicKey)
    return signing, encryption

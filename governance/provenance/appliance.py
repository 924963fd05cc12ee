"""This appliance's identity: an Ed25519 key that signs bundles and an X25519 key that
bundles sent to it are encrypted to, both kept in the key directory.

`public_keys()` is what `cofre appliance key` prints: the two public keys as PEM
blocks, signing key first. Another appliance trusts it with `cofre signers add
--appliance NAME FILE`.
"""

from __future__ import annotations

import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from governance.errors import InvalidInput

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

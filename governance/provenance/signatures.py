"""Detached artifact signatures in the OpenSSF model-signing format, made and checked.

A signature is a Sigstore bundle (v0.3) holding a DSSE envelope over an in-toto
statement whose one resource is the artifact file's SHA-256, signed offline with
an elliptic-curve private key (P-256, P-384 or P-521): `model_signing` with its
private-key signer, no Sigstore service, no network.

model-signing's public `verify` hashes a path on disk. Artifacts are never on
disk in plaintext here, so the bundle's envelope is verified with the library's
own key verifier and the digest it vouches for is compared with the SHA-256 of
the bytes in memory (or the one the registry recorded and the artifact store
checks on every decryption).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from governance.errors import InvalidInput, UntrustedArtifact

FORMAT = "model-signing/1.0"
CURVES = ("secp256r1", "secp384r1", "secp521r1")
MAX_SIGNATURE_BYTES = 64 * 1024


class _Blob:
    """Bytes that model_signing can read as if they were a file (it asks for a path)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read_bytes(self) -> bytes:
        return self.data

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.data.decode(encoding)


def sign_file(artifact: Path, private_key: Path, out: Path) -> None:
    """Sign `artifact` with the PEM EC private key in `private_key`, writing `out`."""
    from model_signing import signing  # heavy (sigstore); only the signing command needs it

    try:
        config = signing.Config().use_elliptic_key_signer(private_key=private_key)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{private_key} is not a usable EC private key: {exc}") from None
    config.sign(artifact, out)


def sign_bytes(artifact: bytes, private_key_pem: bytes) -> bytes:
    """The signature of `artifact`, made as `sign_file` makes it: model-signing reads
    files, so both pass through a private temporary directory, removed at once. For
    artifacts that are not secret (the demo models, made from public data sets)."""
    with tempfile.TemporaryDirectory(prefix="cofre-sign-") as scratch:
        root = Path(scratch)
        (root / "model.skops").write_bytes(artifact)
        (root / "signer.key").write_bytes(private_key_pem)
        sign_file(root / "model.skops", root / "signer.key", root / "model.sig")
        return (root / "model.sig").read_bytes()


def fingerprint(public_key_pem: bytes) -> str:
    """SHA-256 of the key's PEM SubjectPublicKeyInfo: model-signing's key hint."""
    key = serialization.load_pem_public_key(public_key_pem)
    canonical = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(canonical).hexdigest()


def check_signing_key(public_key_pem: bytes) -> str:
    """The canonical PEM of an EC public key model-signing accepts, or InvalidInput."""
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError):
        raise InvalidInput("the file is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in CURVES:
        raise InvalidInput("an artifact signer's key must be an EC key on P-256, P-384 or P-521")
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_hint(signature: bytes) -> str | None:
    """The signer's key fingerprint the bundle names, if it names one."""
    bundle = _json(signature)
    material = bundle.get("verificationMaterial")
    key = material.get("publicKey") if isinstance(material, dict) else None
    hint = key.get("hint") if isinstance(key, dict) else None
    return hint if isinstance(hint, str) else None


def signed_digest(signature: bytes, public_key_pem: str) -> str:
    """The SHA-256 (hex) the signature vouches for, once it verifies under the key.

    Raises UntrustedArtifact with a one-line reason when it does not verify or does
    not sign exactly one file with SHA-256.
    """
    from model_signing._signing import sign_ec_key, sign_sigstore_pb

    _json(signature)
    try:
        bundle = sign_sigstore_pb.Signature.read(cast(Any, _Blob(signature)))
        verifier = sign_ec_key.Verifier(cast(Any, _Blob(public_key_pem.encode())))
        manifest = verifier.verify(bundle)
    except Exception as exc:  # the library raises ValueError, InvalidSignature, KeyError...
        raise UntrustedArtifact(
            f"the signature does not verify under the signer's key ({type(exc).__name__})"
        ) from None
    resources = list(manifest.resource_descriptors())
    if len(resources) != 1 or resources[0].digest.algorithm != "sha256":
        raise UntrustedArtifact("the signature does not sign exactly one artifact file (SHA-256)")
    return str(resources[0].digest.digest_value.hex())


def _json(signature: bytes) -> dict[str, Any]:
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise UntrustedArtifact("the signature file is too large to be a model signature")
    try:
        value = json.loads(signature)
    except (ValueError, UnicodeDecodeError):
        raise UntrustedArtifact("the signature is not a model-signing bundle (not JSON)") from None
    if not isinstance(value, dict) or "dsseEnvelope" not in value:
        raise UntrustedArtifact("the signature is not a model-signing bundle (no DSSE envelope)")
    return value

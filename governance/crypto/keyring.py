"""The key ring: key-encryption keys and the appliance's other secrets, on disk.

Layout of `COFRE_KEY_DIR` (directory 0700, every file 0600):
  kek-<id>.key        32 random bytes, a master key-encryption key (KEK)
  kek.current         the id of the KEK that wraps new data keys
  pseudonym.key       HMAC key that pseudonymises subject ids in the audit log
  audit-signing.key   Ed25519 private key that signs audit checkpoints
  audit-mac.key       HMAC key of the audit chain's head MACs (governance/audit/macs.py)
  session.key         signs admin session cookies
  backup.key          encrypts backup archives (kept here, never inside a backup)
  provenance.key      seals the rows of trusted signers (governance/provenance)
  appliance-signing.key     Ed25519 seed: this appliance signs the bundles it exports
  appliance-encryption.key  X25519 private key: bundles sent to it are sealed to it
Only data keys wrapped by a KEK ever reach the database; KEKs never leave this
directory (and backups never contain it).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from governance.clock import utcnow
from governance.errors import IntegrityError, KeyUnavailable, NotInitialised

KEY_BYTES = 32
NONCE_BYTES = 12
NAMED_SECRETS = (
    "pseudonym.key",
    "audit-signing.key",
    "audit-mac.key",
    "session.key",
    "backup.key",
    "provenance.key",
    "appliance-signing.key",
    "appliance-encryption.key",
)
_WRAP_LABEL = b"cofre-wrapped-data-key\x00"


@dataclass(frozen=True)
class WrappedKey:
    """A data key encrypted under the KEK `kek_id`; `context` was bound as AAD."""

    kek_id: str
    blob: bytes


class KeyRing:
    """Reads and writes the key directory; safe to share between threads."""

    def __init__(self, key_dir: Path) -> None:
        self.key_dir = Path(key_dir)
        self._lock = threading.Lock()
        self._keks: dict[str, bytes] = {}
        self._current: tuple[float, str] | None = None

    # -- creation -------------------------------------------------------------
    def ensure(self) -> list[str]:
        """Create the directory and any missing key; return the names created."""
        from governance.crypto.signing import generate_signing_key  # avoids a cycle

        created: list[str] = []
        missing = [name for name in NAMED_SECRETS if not (self.key_dir / name).exists()]
        needs_kek = not (self.key_dir / "kek.current").exists()
        if not missing and not needs_kek:
            _tighten_if_writable(self.key_dir)
            return created
        self.key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.key_dir, 0o700)
        if needs_kek:
            created.append(self._write_new_kek())
        for name in missing:
            material = generate_signing_key() if name == "audit-signing.key" else None
            _write_secret(self.key_dir / name, material or secrets.token_bytes(KEY_BYTES))
            created.append(name)
        return created

    def rotate_master(self) -> tuple[str, str]:
        """Make a new KEK current; return (old id, new id). Callers re-wrap data keys."""
        old = self.current_kek_id()
        new_name = self._write_new_kek()
        return old, new_name.removeprefix("kek-").removesuffix(".key")

    def _write_new_kek(self) -> str:
        kek_id = utcnow().strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(4)
        name = f"kek-{kek_id}.key"
        _write_secret(self.key_dir / name, secrets.token_bytes(KEY_BYTES))
        tmp = self.key_dir / "kek.current.tmp"
        tmp.write_text(kek_id + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.key_dir / "kek.current")
        return name

    # -- reading --------------------------------------------------------------
    def current_kek_id(self) -> str:
        """The current KEK id, re-read when another process rotated it."""
        path = self.key_dir / "kek.current"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            raise NotInitialised("no master key in the key directory; run `cofre init`") from None
        with self._lock:
            if self._current is None or self._current[0] != mtime:
                self._current = (mtime, path.read_text().strip())
            return self._current[1]

    def kek(self, kek_id: str) -> bytes:
        with self._lock:
            if kek_id not in self._keks:
                self._keks[kek_id] = self._read_secret(f"kek-{kek_id}.key")
            return self._keks[kek_id]

    def secret(self, name: str) -> bytes:
        """One of NAMED_SECRETS (or another key file), checked for safe permissions."""
        return self._read_secret(name)

    def has_kek(self, kek_id: str) -> bool:
        return (self.key_dir / f"kek-{kek_id}.key").exists()

    def _read_secret(self, name: str) -> bytes:
        path = self.key_dir / name
        try:
            info = path.stat()
        except FileNotFoundError:
            raise KeyUnavailable(f"key file {name} is missing from the key directory") from None
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise KeyUnavailable(f"key file {name} is readable by group or others; chmod 600 it")
        return path.read_bytes()

    # -- wrapping -------------------------------------------------------------
    def wrap(self, data_key: bytes, context: str) -> WrappedKey:
        kek_id = self.current_kek_id()
        nonce = secrets.token_bytes(NONCE_BYTES)
        blob = nonce + AESGCM(self.kek(kek_id)).encrypt(nonce, data_key, _aad(context))
        return WrappedKey(kek_id, blob)

    def unwrap(self, wrapped: WrappedKey, context: str) -> bytes:
        kek = self.kek(wrapped.kek_id)
        try:
            return AESGCM(kek).decrypt(
                wrapped.blob[:NONCE_BYTES], wrapped.blob[NONCE_BYTES:], _aad(context)
            )
        except InvalidTag:
            raise IntegrityError(
                f"data key for {context} does not open with its master key"
            ) from None


def _aad(context: str) -> bytes:
    return _WRAP_LABEL + context.encode()


def _tighten_if_writable(key_dir: Path) -> None:
    """Make a complete key directory 0700 where it can be changed; one mounted
    read-only (a container's secret) is left as it is, so `cofre init` still passes."""
    if stat.S_IMODE(key_dir.stat().st_mode) == 0o700:
        return
    try:
        os.chmod(key_dir, 0o700)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EPERM):
            raise


def _write_secret(path: Path, material: bytes) -> None:
    """Create a key file 0600 from the start (never briefly world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(material)
        handle.flush()
        os.fsync(handle.fileno())

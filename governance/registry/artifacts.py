"""Encrypted artifact storage: AES-256-GCM under a per-version data key, wrapped by a KEK.

The associated data binds model name, version and plaintext SHA-256 (and, for a
version's compiled ONNX model, the kind "onnx"), so a file copied over another
version's or over the other kind, a flipped bit or a wrong key all fail to open.
Files are written to a temporary name, fsynced and renamed: a crash never
leaves a half-written artifact under a real name.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from pathlib import Path

from governance.crypto.envelope import new_data_key, open_sealed, seal
from governance.crypto.keyring import KeyRing, WrappedKey
from governance.errors import IntegrityError, KeyUnavailable
from governance.files import write_atomically

SKOPS = ""  # the published artifact; its framing predates kinds and stays as it was
ONNX = "onnx"  # the version's compiled model


def artifact_aad(name: str, version: int, sha256: str, kind: str = SKOPS) -> bytes:
    parts = (name, str(version), sha256, kind) if kind else (name, str(version), sha256)
    return b"cofre-artifact\x00" + "\x00".join(parts).encode()


def key_context(name: str, version: int, sha256: str, kind: str = SKOPS) -> str:
    return f"artifact:{name}:{version}:{sha256}" + (f":{kind}" if kind else "")


# What `check` remembers of a file it authenticated: (device, inode, size, mtime,
# ctime) and the record it was checked against. Any write to the file changes its
# ctime, which (unlike mtime) cannot be set back by its owner.
_Identity = tuple[int, int, int, int, int, str, int, str, str, bytes]
MAX_REMEMBERED = 4096


class ArtifactStore:
    """Puts and gets encrypted artifacts under one directory."""

    def __init__(self, directory: Path, keyring: KeyRing) -> None:
        self.directory = Path(directory)
        self.keyring = keyring
        self._authenticated: dict[str, _Identity] = {}
        self._lock = threading.Lock()

    def put(
        self, name: str, version: int, plaintext: bytes, kind: str = SKOPS
    ) -> tuple[str, str, WrappedKey]:
        """Encrypt and store; return (file name, plaintext sha256, wrapped data key)."""
        sha = hashlib.sha256(plaintext).hexdigest()
        data_key = new_data_key()
        sealed = seal(data_key, plaintext, artifact_aad(name, version, sha, kind))
        wrapped = self.keyring.wrap(data_key, key_context(name, version, sha, kind))
        file_name = f"{secrets.token_hex(16)}.cofre"
        self._write_atomically(file_name, sealed)
        return file_name, sha, wrapped

    def get(
        self,
        name: str,
        version: int,
        sha256: str,
        file_name: str,
        wrapped: WrappedKey,
        kind: str = SKOPS,
    ) -> bytes:
        """Decrypt and check; errors name the model and version, never the content."""
        what = f"model {name!r} version {version}" + (f" ({kind})" if kind else "")
        try:
            sealed = (self.directory / file_name).read_bytes()
        except FileNotFoundError:
            raise IntegrityError(f"{what}: the artifact file is missing") from None
        try:
            data_key = self.keyring.unwrap(wrapped, key_context(name, version, sha256, kind))
        except KeyUnavailable as exc:
            raise KeyUnavailable(f"{what}: {exc.detail}") from None
        except IntegrityError:
            raise IntegrityError(
                f"{what}: its data key does not open with the master key "
                "(wrong key or tampered key record)"
            ) from None
        plaintext = open_sealed(data_key, sealed, artifact_aad(name, version, sha256, kind), what)
        if hashlib.sha256(plaintext).hexdigest() != sha256:
            raise IntegrityError(f"{what}: the artifact does not match its recorded SHA-256")
        return plaintext

    def check(
        self,
        name: str,
        version: int,
        sha256: str,
        file_name: str,
        wrapped: WrappedKey,
        kind: str = SKOPS,
    ) -> None:
        """Authenticate the stored artifact as `get` does (open the data key, decrypt,
        compare the SHA-256), once per state of the file: while its identity and its
        record are unchanged, a readiness probe costs one stat()."""
        what = f"model {name!r} version {version}" + (f" ({kind})" if kind else "")
        try:
            stat = os.stat(self.directory / file_name)
        except FileNotFoundError:
            raise IntegrityError(f"{what}: the artifact file is missing") from None
        identity: _Identity = (
            stat.st_dev,
            stat.st_ino,
            stat.st_size,
            stat.st_mtime_ns,
            stat.st_ctime_ns,
            name,
            version,
            sha256,
            wrapped.kek_id,
            wrapped.blob,
        )
        with self._lock:
            if self._authenticated.get(file_name) == identity:
                return
        self.get(name, version, sha256, file_name, wrapped, kind)
        with self._lock:
            if len(self._authenticated) >= MAX_REMEMBERED:
                self._authenticated.clear()
            self._authenticated[file_name] = identity

    def remove(self, file_name: str) -> None:
        (self.directory / file_name).unlink(missing_ok=True)

    def _write_atomically(self, file_name: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.directory / file_name, data)

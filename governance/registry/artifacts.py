"""Encrypted artifact storage: AES-256-GCM under a per-version data key, wrapped by a KEK.

The associated data binds model name, version and plaintext SHA-256 (and, for a
version's compiled ONNX model, the kind "onnx"), so a file copied over another
version's or over the other kind, a flipped bit or a wrong key all fail to open.

Where the sealed bytes live is the store's place, chosen by `artifact_store`:
- `ArtifactFiles`, one file each under the artifact directory (the default on
  SQLite: one host). Files are written to a temporary name, fsynced and renamed, so
  a crash never leaves a half-written artifact under a real name.
- `ArtifactTable`, one row each in `artifact_blobs` (the default on PostgreSQL), so
  that application hosts share nothing but the database: no NFS mount to provide,
  and a backup's database snapshot holds the artifacts with the versions.
Both are written before the version that names them commits (the registry removes
them again if it rolls back) and never change afterwards.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, func, insert, literal_column, select
from sqlalchemy.engine import Engine

from governance.clock import utcnow
from governance.crypto.envelope import new_data_key, open_sealed, seal
from governance.crypto.keyring import KeyRing, WrappedKey
from governance.errors import IntegrityError, KeyUnavailable
from governance.files import write_atomically
from governance.registry.records import ArtifactBlob

SKOPS = ""  # the published artifact; its framing predates kinds and stays as it was
ONNX = "onnx"  # the version's compiled model


def artifact_aad(name: str, version: int, sha256: str, kind: str = SKOPS) -> bytes:
    parts = (name, str(version), sha256, kind) if kind else (name, str(version), sha256)
    return b"cofre-artifact\x00" + "\x00".join(parts).encode()


def key_context(name: str, version: int, sha256: str, kind: str = SKOPS) -> str:
    return f"artifact:{name}:{version}:{sha256}" + (f":{kind}" if kind else "")


# What `check` remembers of an artifact it authenticated: its place's identity of the
# stored bytes and the record it was checked against.
_Identity = tuple[tuple[object, ...], str, int, str, str, bytes]
MAX_REMEMBERED = 4096


class ArtifactPlace(Protocol):
    """Where sealed artifacts are kept, by file name."""

    def read(self, file_name: str) -> bytes | None: ...
    def write(self, file_name: str, sealed: bytes) -> None: ...
    def remove(self, file_name: str) -> None: ...
    def identity(self, file_name: str) -> tuple[object, ...] | None:
        """Something that changes whenever the stored bytes do (None: not there)."""
        ...

    def names(self) -> Iterator[str]: ...


class ArtifactFiles:
    """Sealed artifacts as files in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def read(self, file_name: str) -> bytes | None:
        try:
            return (self.directory / file_name).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, file_name: str, sealed: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.directory / file_name, sealed)

    def remove(self, file_name: str) -> None:
        (self.directory / file_name).unlink(missing_ok=True)

    def identity(self, file_name: str) -> tuple[object, ...] | None:
        """Device, inode, size, mtime and ctime: any write to the file changes its
        ctime, which (unlike mtime) its owner cannot set back."""
        try:
            stat = os.stat(self.directory / file_name)
        except FileNotFoundError:
            return None
        return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)

    def names(self) -> Iterator[str]:
        return (path.name for path in sorted(self.directory.glob("*.cofre")))


class ArtifactTable:
    """Sealed artifacts as rows of `artifact_blobs` in a PostgreSQL database. Each write
    and removal is a transaction of its own, as a file's would be."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("artifacts are kept in the database on PostgreSQL only")
        self.engine = engine

    def read(self, file_name: str) -> bytes | None:
        with self.engine.connect() as conn:
            sealed = conn.scalar(
                select(ArtifactBlob.sealed).where(ArtifactBlob.file_name == file_name)
            )
        return None if sealed is None else bytes(sealed)

    def write(self, file_name: str, sealed: bytes) -> None:
        row = {"file_name": file_name, "sealed": sealed, "stored_at": utcnow()}
        with self.engine.begin() as conn:
            conn.execute(insert(ArtifactBlob).values(row))

    def remove(self, file_name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(ArtifactBlob).where(ArtifactBlob.file_name == file_name))

    def identity(self, file_name: str) -> tuple[object, ...] | None:
        """PostgreSQL's row version (xmin, new at every UPDATE) and the length: one
        index lookup, no transfer of the bytes."""
        query = select(literal_column("xmin::text"), func.octet_length(ArtifactBlob.sealed))
        with self.engine.connect() as conn:
            found = conn.execute(query.where(ArtifactBlob.file_name == file_name)).first()
        return None if found is None else tuple(found)

    def names(self) -> Iterator[str]:
        with self.engine.connect() as conn:
            return iter(conn.scalars(select(ArtifactBlob.file_name).order_by("file_name")).all())


class ArtifactStore:
    """Puts and gets encrypted artifacts in one place (files or the database)."""

    def __init__(self, place: ArtifactPlace, keyring: KeyRing) -> None:
        self.place = place
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
        self.place.write(file_name, sealed)
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
        sealed = self.place.read(file_name)
        if sealed is None:
            raise IntegrityError(f"{what}: the artifact file is missing")
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
        record are unchanged, a readiness probe costs one stat() (or one index lookup)."""
        what = f"model {name!r} version {version}" + (f" ({kind})" if kind else "")
        stored = self.place.identity(file_name)
        if stored is None:
            raise IntegrityError(f"{what}: the artifact file is missing")
        identity: _Identity = (stored, name, version, sha256, wrapped.kek_id, wrapped.blob)
        with self._lock:
            if self._authenticated.get(file_name) == identity:
                return
        self.get(name, version, sha256, file_name, wrapped, kind)
        with self._lock:
            if len(self._authenticated) >= MAX_REMEMBERED:
                self._authenticated.clear()
            self._authenticated[file_name] = identity

    def remove(self, file_name: str) -> None:
        self.place.remove(file_name)

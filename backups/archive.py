"""The encrypted backup archive: a plaintext header, then AES-256-GCM chunks.

Layout: MAGIC, a 4-byte header length, the header (JSON: id, creation time,
cofre version, the archive's data key wrapped by `backup.key`, a nonce prefix),
then chunks of [4-byte length][ciphertext]. Each chunk is sealed with AESGCM
under the archive's own random data key, with nonce = prefix (7 bytes) +
chunk counter (4 bytes) + last-chunk flag (1 byte) and the header's SHA-256 as
associated data (the STREAM construction): reordering, dropping or
truncating chunks, or editing the header, fails authentication, and an archive
without its flagged last chunk is reported as incomplete, never as valid.

Writing is atomic: the stream goes to `<name>.partial` (0600), is fsynced and
only then renamed to its real name, so a killed backup leaves at most a
`.partial` file that the catalog ignores and that cannot verify.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import struct
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from governance.errors import IntegrityError
from governance.files import fsync_directory

MAGIC = b"COFRE-BACKUP-1\n\x00"
CHUNK_BYTES = 1024 * 1024
_LENGTH = struct.Struct(">I")
_KEY_AAD = b"cofre-backup-archive-key\x00"
PARTIAL_SUFFIX = ".partial"


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class ArchiveWriter:
    """A write-only binary stream that encrypts into `<final>.partial`; commit() publishes it."""

    def __init__(self, final: Path, backup_key: bytes, header: dict[str, Any]) -> None:
        self.final = final
        self.partial = final.with_name(final.name + PARTIAL_SUFFIX)
        file_key = AESGCM.generate_key(bit_length=256)
        key_nonce = secrets.token_bytes(12)
        wrapped = key_nonce + AESGCM(backup_key).encrypt(
            key_nonce, file_key, _KEY_AAD + str(header["id"]).encode()
        )
        self._prefix = secrets.token_bytes(7)
        header = dict(
            header, wrapped_key=base64.b64encode(wrapped).decode(), nonce=self._prefix.hex()
        )
        header_bytes = json.dumps(header, sort_keys=True).encode()
        self._aad = hashlib.sha256(header_bytes).digest()
        self._aead = AESGCM(file_key)
        self._counter = 0
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._emit(MAGIC + _LENGTH.pack(len(header_bytes)) + header_bytes)

    # tarfile's stream mode needs only write(); the rest keeps it a good file citizen.
    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > CHUNK_BYTES:
            self._seal(bytes(self._buffer[:CHUNK_BYTES]), last=False)
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def flush(self) -> None:
        """Nothing to do: data is sealed in whole chunks; commit() ends the stream."""

    def _seal(self, plain: bytes, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._counter, last), plain, self._aad)
        self._counter += 1
        self._emit(_LENGTH.pack(len(sealed)) + sealed)

    def _emit(self, data: bytes) -> None:
        self._file.write(data)
        self._digest.update(data)

    def commit(self) -> tuple[int, str]:
        """Seal the last chunk, fsync, rename into place; return (size, sha256 of the file)."""
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        self._file.flush()
        os.fsync(self._file.fileno())
        size = self._file.tell()
        self._file.close()
        os.replace(self.partial, self.final)
        fsync_directory(self.final.parent)
        return size, self._digest.hexdigest()

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.partial.unlink(missing_ok=True)


class ArchiveReader:
    """A read-only binary stream of an archive's plaintext; every chunk is authenticated."""

    def __init__(self, path: Path, backup_key: bytes) -> None:
        self.path = path
        self._file: IO[bytes] = path.open("rb")
        try:
            self.header = self._read_header()
            self._aead = AESGCM(self._file_key(backup_key))
        except BaseException:
            self._file.close()
            raise
        self._counter = 0
        self._buffer = bytearray()
        self._done = False

    def _read_header(self) -> dict[str, Any]:
        if self._file.read(len(MAGIC)) != MAGIC:
            raise IntegrityError(f"{self.path.name}: not a cofre backup archive")
        raw_length = self._file.read(_LENGTH.size)
        if len(raw_length) != _LENGTH.size:
            raise IntegrityError(f"{self.path.name}: the header is cut short")
        header_bytes = self._file.read(_LENGTH.unpack(raw_length)[0])
        try:
            header: dict[str, Any] = json.loads(header_bytes)
            self._prefix = bytes.fromhex(header["nonce"])
        except (ValueError, KeyError):
            raise IntegrityError(f"{self.path.name}: the header is unreadable") from None
        self._aad = hashlib.sha256(header_bytes).digest()
        return header

    def _file_key(self, backup_key: bytes) -> bytes:
        wrapped = base64.b64decode(self.header.get("wrapped_key", ""))
        try:
            return AESGCM(backup_key).decrypt(
                wrapped[:12], wrapped[12:], _KEY_AAD + str(self.header.get("id")).encode()
            )
        except (InvalidTag, ValueError):
            raise IntegrityError(
                f"{self.path.name}: the archive key does not open with backup.key "
                "(another appliance's backup, or the header was edited)"
            ) from None

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            self._buffer += self._next_chunk()
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def _next_chunk(self) -> bytes:
        raw_length = self._file.read(_LENGTH.size)
        if len(raw_length) != _LENGTH.size:
            raise IntegrityError(
                f"{self.path.name}: the archive ends before its last chunk (incomplete backup)"
            )
        sealed = self._file.read(_LENGTH.unpack(raw_length)[0])
        for last in (False, True):
            try:
                plain = self._aead.decrypt(
                    _nonce(self._prefix, self._counter, last), sealed, self._aad
                )
            except InvalidTag:
                continue
            self._counter += 1
            if last:
                self._finish()
            return plain
        raise IntegrityError(
            f"{self.path.name}: chunk {self._counter} failed authentication (modified or truncated)"
        )

    def _finish(self) -> None:
        self._done = True
        if self._file.read(1):
            raise IntegrityError(f"{self.path.name}: data after the last chunk")

    def drain(self) -> None:
        """Read to the authenticated end (a tar reader may stop at its end-of-archive blocks)."""
        while not self._done:
            self._next_chunk()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def read_header(path: Path) -> dict[str, Any]:
    """The plaintext header (no key needed): id, creation time, cofre version."""
    with path.open("rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise IntegrityError(f"{path.name}: not a cofre backup archive")
        length = _LENGTH.unpack(handle.read(_LENGTH.size))[0]
        header: dict[str, Any] = json.loads(handle.read(length))
    header.pop("wrapped_key", None)
    header.pop("nonce", None)
    return header


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()

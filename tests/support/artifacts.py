"""Reaching the stored (sealed) artifacts of a test appliance, in whichever place its
artifact_store keeps them, as an attacker with access to that place would."""

from __future__ import annotations

import os

from sqlalchemy import delete, update

from governance.registry.artifacts import ArtifactFiles, ArtifactTable
from governance.registry.records import ArtifactBlob
from server.container import Container


def stored(cofre: Container, file_name: str) -> bytes:
    sealed = cofre.artifact_place.read(file_name)
    assert sealed is not None, f"no stored artifact {file_name}"
    return sealed


def names(cofre: Container) -> list[str]:
    return sorted(cofre.artifact_place.names())


def overwrite(cofre: Container, file_name: str, sealed: bytes) -> None:
    """Change the stored bytes in place, as stealthily as the place allows: the file
    rewritten through the same inode with its modification time put back, or the
    row updated."""
    place = cofre.artifact_place
    if isinstance(place, ArtifactFiles):
        path = place.directory / file_name
        before = path.stat()
        with path.open("r+b") as handle:
            handle.write(sealed)
            handle.truncate()
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        return
    assert isinstance(place, ArtifactTable)
    with place.engine.begin() as conn:
        change = update(ArtifactBlob).where(ArtifactBlob.file_name == file_name)
        conn.execute(change.values(sealed=sealed))


def flip_a_byte(cofre: Container, file_name: str) -> None:
    data = bytearray(stored(cofre, file_name))
    data[len(data) // 2] ^= 0x01
    overwrite(cofre, file_name, bytes(data))


def drop(cofre: Container, file_name: str) -> None:
    place = cofre.artifact_place
    if isinstance(place, ArtifactFiles):
        (place.directory / file_name).unlink()
        return
    assert isinstance(place, ArtifactTable)
    with place.engine.begin() as conn:
        conn.execute(delete(ArtifactBlob).where(ArtifactBlob.file_name == file_name))

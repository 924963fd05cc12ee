"""The encrypted archive: round trip, and every way of damaging it is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backups.archive import CHUNK_BYTES, ArchiveReader, ArchiveWriter, read_header
from governance.errors import IntegrityError

KEY = bytes(range(32))


def _write(path: Path, payload: bytes) -> None:
    writer = ArchiveWriter(path, KEY, {"id": "x", "created_at": "now"})
    writer.write(payload)
    writer.commit()


def _read(path: Path, key: bytes = KEY) -> bytes:
    with ArchiveReader(path, key) as reader:
        data = reader.read()
        reader.drain()
        return data


def test_round_trip_over_several_chunks(tmp_path: Path) -> None:
    payload = os.urandom(CHUNK_BYTES * 2 + 123)
    path = tmp_path / "a.cofre-backup"
    _write(path, payload)
    assert _read(path) == payload
    assert payload[:64] not in path.read_bytes()  # encrypted, not stored
    assert read_header(path) == {"id": "x", "created_at": "now"}


def test_a_truncated_archive_is_incomplete_not_valid(tmp_path: Path) -> None:
    path = tmp_path / "a.cofre-backup"
    _write(path, os.urandom(CHUNK_BYTES * 2))
    data = path.read_bytes()
    # Cut exactly at a chunk boundary: every remaining chunk still authenticates.
    boundary = len(data) - (CHUNK_BYTES // 2 + 4 + 16)  # not a boundary: a cut mid-chunk
    for cut in (boundary, _first_chunks_end(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(IntegrityError, match=r"incomplete|failed authentication"):
            _read(path)


def _first_chunks_end(data: bytes) -> int:
    """Offset just after the first chunk (a clean boundary)."""
    import struct

    offset = 16
    (header_len,) = struct.unpack(">I", data[offset : offset + 4])
    offset += 4 + header_len
    (chunk_len,) = struct.unpack(">I", data[offset : offset + 4])
    return offset + 4 + chunk_len


def test_a_flipped_bit_or_a_wrong_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.cofre-backup"
    _write(path, b"governed state" * 1000)
    data = bytearray(path.read_bytes())
    with pytest.raises(IntegrityError, match=r"backup\.key"):
        _read(path, os.urandom(32))
    data[-40] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="failed authentication"):
        _read(path)


def test_an_aborted_write_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "a.cofre-backup"
    writer = ArchiveWriter(final, KEY, {"id": "x", "created_at": "now"})
    writer.write(b"half")
    assert writer.partial.exists() and not final.exists()
    writer.abort()
    assert list(tmp_path.iterdir()) == []

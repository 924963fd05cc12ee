"""Durable files: the one way cofre writes a file whole or not at all.

A file is written under a temporary name in the same directory, fsynced,
renamed over its final name, and the directory fsynced, so a crash leaves the
old content or the new one, never a mixture; private (0600) from its creation.
A large file's digest is read here too, in blocks.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data`, durably and atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` survive a power loss."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of_file(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks (training data can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""Free space where the governed state lives, and the database's size.

The audit log must never stop for lack of space without warning: an append that
cannot be written refuses the prediction (fail closed), so a full disk is an
outage. `Storage` reads the free space of each directory the appliance writes
(the home with its SQLite database, the artifacts, the backups and their mirror)
and the database's size, for /readyz, the Prometheus gauges and the `storage`
job that raises a `disk` alert before a file system fills.

Directories on one file system share its free space, so a low disk is judged
once per file system (`low_disks`), naming every directory on it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class Space:
    """One directory's file system: its size and what is left of it."""

    directory: str  # a label: home, artifacts, backups, backup_mirror
    path: Path
    device: int  # st_dev of the file system: directories on one disk share it
    total_bytes: int
    free_bytes: int  # available to this (unprivileged) process, as `df` shows

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class StoragePolicy:
    """A file system is low when under either floor (0 turns that floor off)."""

    min_free_percent: float = 10.0
    min_free_bytes: int = 1024**3

    def is_low(self, space: Space) -> bool:
        return (self.min_free_percent > 0 and space.free_percent < self.min_free_percent) or (
            self.min_free_bytes > 0 and space.free_bytes < self.min_free_bytes
        )


@dataclass(frozen=True)
class LowDisk:
    """One file system under the policy's floor, and the directories it holds."""

    directories: tuple[str, ...]
    space: Space

    @property
    def key(self) -> str:
        return "disk-" + "+".join(self.directories)

    def evidence(self, policy: StoragePolicy) -> dict[str, object]:
        return {
            "directories": list(self.directories),
            "path": str(self.space.path),
            "free_bytes": self.space.free_bytes,
            "total_bytes": self.space.total_bytes,
            "free_percent": round(self.space.free_percent, 2),
            "min_free_percent": policy.min_free_percent,
            "min_free_bytes": policy.min_free_bytes,
        }


class Storage:
    """The appliance's directories, its database and the floor of free space."""

    def __init__(self, directories: Mapping[str, Path], engine: Engine, policy: StoragePolicy):
        self.directories = dict(directories)
        self.engine = engine
        self.policy = policy

    def spaces(self) -> list[Space]:
        return [space_of(label, path) for label, path in self.directories.items()]

    def low_disks(self, spaces: list[Space] | None = None) -> list[LowDisk]:
        """File systems under the floor, each once with every directory on it."""
        by_device: dict[int, list[Space]] = {}
        for space in spaces if spaces is not None else self.spaces():
            by_device.setdefault(space.device, []).append(space)
        return [
            LowDisk(tuple(s.directory for s in group), group[0])
            for group in by_device.values()
            if self.policy.is_low(group[0])
        ]

    def database_bytes(self) -> int | None:
        """The database's size on disk (SQLite: the file with its WAL), None if unknown."""
        url = self.engine.url
        if url.get_backend_name() == "postgresql":
            with self.engine.connect() as connection:
                size = connection.execute(text("SELECT pg_database_size(current_database())"))
                return int(size.scalar_one())
        if url.database and url.database != ":memory:":
            files = [Path(url.database + suffix) for suffix in ("", "-wal", "-shm")]
            return sum(f.stat().st_size for f in files if f.exists())
        return None


def space_of(label: str, path: Path) -> Space:
    """The file system holding `path`, or its nearest existing parent (a backup
    directory not made yet will be made on that file system)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    usage = shutil.disk_usage(existing)
    return Space(label, path, os.stat(existing).st_dev, usage.total, usage.free)


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB': for log lines, readiness details and job messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")

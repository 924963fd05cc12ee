"""The backups in one directory: `<id>.cofre-backup` archives and their state files.

The state file (`<id>.state.json`, not secret) records the manifest summary,
the latest verification, drill and mirror copy. It is a convenience for
listing and retention; verify and restore trust only the archive itself.
Leftovers of an interrupted backup (`*.partial`, `.staging-*`) are never listed.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backups.archive import PARTIAL_SUFFIX, read_header
from governance.errors import CofreError, InvalidInput, NotFound
from governance.files import fsync_directory, write_atomically

ARCHIVE_SUFFIX = ".cofre-backup"
STATE_SUFFIX = ".state.json"
STAGING_PREFIX = ".staging-"
LOCK_NAME = ".catalog.lock"
_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
STALE_SECONDS = 6 * 3600


@dataclass
class BackupEntry:
    id: str
    path: Path
    created_at: datetime
    size: int
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return bool(self.state.get("verification", {}).get("ok"))

    @property
    def drilled(self) -> bool:
        """Its latest restore drill passed."""
        return bool(self.state.get("drill", {}).get("ok"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "size": self.size,
            "verified": self.verified,
            **{k: v for k, v in self.state.items() if k != "id"},
        }


def new_id(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def check_id(backup_id: str) -> str:
    if not _ID.match(backup_id):
        raise InvalidInput(f"{backup_id!r} is not a backup id (like 20260101T020000Z-a1b2c3)")
    return backup_id


class Catalog:
    """Lists, reads and updates the backups of one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def archive_path(self, backup_id: str) -> Path:
        return self.directory / f"{check_id(backup_id)}{ARCHIVE_SUFFIX}"

    def state_path(self, backup_id: str) -> Path:
        return self.directory / f"{check_id(backup_id)}{STATE_SUFFIX}"

    def ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        """Readers (verify, restore, drill) share the catalog; pruning has it alone, so a
        backup is never deleted while another process or thread is reading it."""
        self.ensure()
        with (self.directory / LOCK_NAME).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def entries(self) -> list[BackupEntry]:
        """Complete archives only, newest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob(f"*{ARCHIVE_SUFFIX}"):
            backup_id = path.name.removesuffix(ARCHIVE_SUFFIX)
            if _ID.match(backup_id):
                found.append(self._entry(backup_id, path))
        return sorted(found, key=lambda e: (e.created_at, e.id), reverse=True)

    def _entry(self, backup_id: str, path: Path) -> BackupEntry:
        state = self.read_state(backup_id)
        created = state.get("created_at")
        if not created:
            try:
                created = read_header(path).get("created_at")
            except (CofreError, ValueError, OSError):
                created = None
        moment = (
            datetime.fromisoformat(created)
            if created
            else datetime.fromtimestamp(path.stat().st_mtime, UTC)
        )
        return BackupEntry(backup_id, path, moment, path.stat().st_size, state)

    def get(self, backup_id: str) -> BackupEntry:
        path = self.archive_path(backup_id)
        if not path.is_file():
            raise NotFound(f"no backup {backup_id} in {self.directory}")
        return self._entry(backup_id, path)

    def read_state(self, backup_id: str) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.state_path(backup_id).read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return state

    def update_state(self, backup_id: str, **changes: Any) -> dict[str, Any]:
        """Merge `changes` into the state file, atomically."""
        state = self.read_state(backup_id) | changes
        text = json.dumps(state, indent=2, sort_keys=True)
        write_atomically(self.state_path(backup_id), text.encode("utf-8"))
        return state

    def remove(self, backup_id: str) -> None:
        self.archive_path(backup_id).unlink(missing_ok=True)
        self.state_path(backup_id).unlink(missing_ok=True)

    def copy_in(self, source: Path, backup_id: str) -> Path:
        """Copy an archive here atomically (tmp + fsync + rename): the mirror copy."""
        self.ensure()
        final = self.archive_path(backup_id)
        partial = final.with_name(final.name + PARTIAL_SUFFIX)
        with source.open("rb") as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
            dst.flush()
            os.fsync(dst.fileno())
        os.chmod(partial, 0o600)
        os.replace(partial, final)
        fsync_directory(self.directory)
        return final

    def staging(self, backup_id: str) -> Path:
        path = self.directory / f"{STAGING_PREFIX}{check_id(backup_id)}"
        path.mkdir(mode=0o700)
        return path

    def clean_leftovers(self) -> list[str]:
        """Remove interrupted backups' partial files and staging dirs older than a few hours
        (younger ones may belong to a backup still running in another process)."""
        removed: list[str] = []
        if not self.directory.is_dir():
            return removed
        cutoff = time.time() - STALE_SECONDS
        for path in self.directory.iterdir():
            stale = path.stat().st_mtime < cutoff
            if stale and path.name.endswith(PARTIAL_SUFFIX):
                path.unlink(missing_ok=True)
                removed.append(path.name)
            elif stale and path.name.startswith(STAGING_PREFIX):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        return removed

"""The erasure journal: which data keys each erasure destroyed, kept beside the keys.

A restore puts back the database as it was when the backup was taken, data keys
included, so a backup older than an erasure would bring the erased rows back.
The journal lives in the key directory, which backups never contain and
restores never touch; restore and the restore drill destroy again every key it
names (backups/service.py). It lists key ids, not subjects: exactly what the
erasure destroyed, so keys the same person got later (a new epoch) survive.

The file is JSON, rewritten atomically (0600) under an flock, so concurrent
erasures on one host never lose each other's entries. On several app hosts
each host keeps its own journal: restore where the erasures were made, or
give the hosts one shared key directory.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from governance.errors import IntegrityError
from governance.files import write_atomically

JOURNAL_NAME = "erasures.json"
FORMAT = "cofre-erasures-1"


@dataclass(frozen=True)
class JournalEntry:
    """One erasure: when, of which pseudonym, its record in the chain, the keys destroyed."""

    at: str
    pseudonym: str
    seq: int
    keys: list[str]


class ErasureJournal:
    """Reads and appends to `<key dir>/erasures.json`."""

    def __init__(self, key_dir: Path) -> None:
        self.path = Path(key_dir) / JOURNAL_NAME

    def entries(self) -> list[JournalEntry]:
        try:
            raw: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except ValueError:
            raise IntegrityError(
                f"{self.path.name} is not valid JSON; restore it from a copy"
            ) from None
        if raw.get("format") != FORMAT:
            raise IntegrityError(f"{self.path.name} is not a cofre erasure journal")
        try:
            return [JournalEntry(**entry) for entry in raw["erasures"]]
        except (KeyError, TypeError):
            raise IntegrityError(f"{self.path.name} holds an unreadable entry") from None

    def key_ids(self) -> list[str]:
        """Every key any erasure destroyed, each once."""
        return sorted({key for entry in self.entries() for key in entry.keys})

    def record(self, entry: JournalEntry) -> None:
        with self._locked():
            self._write([*self.entries(), entry])

    def forget(self, entry: JournalEntry) -> None:
        """Take back an entry whose erasure did not commit (its transaction rolled back)."""
        with self._locked():
            self._write([e for e in self.entries() if e != entry])

    def _write(self, entries: list[JournalEntry]) -> None:
        document = {"format": FORMAT, "erasures": [asdict(e) for e in entries]}
        write_atomically(self.path, json.dumps(document, indent=1).encode())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.path.with_name(f".{self.path.name}.lock")
        with lock.open("a") as handle:
            lock.chmod(0o600)
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

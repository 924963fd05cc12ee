"""Telling every worker process that some shared state changed, within milliseconds.

A worker may cache what it read from the database (a verified API key, the rollout
of a model) only if a change reaches every worker before its next request. The
signal has two parts, one per deployment shape:

* **this host**: a generation file in the data directory, rewritten (a new inode)
  after the changing transaction commits; a worker compares one `stat()` per
  request with what it saw when it cached. A change made through any door on this
  host (API, admin page, CLI) is seen by the next request of every worker.
* **other hosts** (PostgreSQL, several app hosts): the changing transaction also
  sends `NOTIFY <channel>`; each worker listens on a connection of its own and
  counts notifications into the generation. Delivery takes as long as PostgreSQL
  takes to pass a notification on (milliseconds). While a worker's listener is not
  connected the generation is None: nothing may be served from a cache.

The key revocations (governance/accounts/revocations.py) and the rollouts
(governance/rollouts/) are two broadcasts on two files and two channels.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from governance.db import after_commit
from governance.files import write_atomically

log = logging.getLogger("cofre.broadcasts")
Generation = tuple[int, int, int]  # (file inode, file mtime, notifications heard)
_CHANNEL = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Broadcast:
    """The generation of one kind of change in this process, and the signal that moves it."""

    def __init__(self, path: Path, database_url: str, channel: str) -> None:
        if not _CHANNEL.match(channel):
            raise ValueError(f"not a channel name: {channel!r}")
        self.path = Path(path)
        self.database_url = database_url
        self.channel = channel
        self._heard = 0
        self._listening_pid: int | None = None
        self._connected = not database_url.startswith("postgresql")
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def generation(self) -> Generation | None:
        """The current generation, or None when it cannot be trusted (then nothing
        may be served from a cache)."""
        self._ensure_listener()
        if not self._connected:
            return None
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return (0, 0, self._heard)
        return (info.st_ino, info.st_mtime_ns, self._heard)

    def announce(self, session: Session) -> None:
        """Signal a change made in this transaction, once it has committed."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"NOTIFY {self.channel}"))  # delivered at commit
        after_commit(session, self._touch)

    def _touch(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.path, secrets.token_hex(8).encode("ascii"))

    # -- PostgreSQL: a listener thread per process, started on first use ----------------
    def _ensure_listener(self) -> None:
        if not self.database_url.startswith("postgresql"):
            return
        with self._lock:
            if self._listening_pid == os.getpid():
                return
            self._listening_pid, self._connected = os.getpid(), False
        threading.Thread(target=self._listen, name=f"cofre-{self.channel}", daemon=True).start()

    def close(self) -> None:
        """Stop listening (the app is shutting down)."""
        self._stop.set()
        self._connected = False

    def _listen(self) -> None:
        import psycopg

        dsn = self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {self.channel}")
                    self._heard += 1  # whatever was missed while disconnected
                    self._connected = not self._stop.is_set()
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=1.0):
                            self._heard += 1
            except Exception as exc:  # reconnect; meanwhile nothing is served from cache
                self._connected = False
                if not self._stop.is_set():
                    log.warning(
                        "%s listener lost its connection: %s", self.channel, type(exc).__name__
                    )
                    self._stop.wait(1.0)
        self._connected = False

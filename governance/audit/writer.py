"""Group commit for the audit log: many requests' records, one transaction, one fsync.

A record must be durable before its prediction is answered, and a durable
commit costs one fsync (milliseconds). Committing each record alone would cap
the whole appliance at one fsync per request, serialised by the chain's head
lock. Instead, request threads hand their events to one writer thread per
process, which appends everything queued in a single transaction and then
wakes each caller with its record or with the failure (fail closed: the
caller answers 503). The thread is started on first use, in the process that
uses it, so nothing crosses a fork.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from governance.audit.service import AuditEvent, AuditLog
from governance.db import write_transaction
from governance.errors import AuditUnavailable, CofreError

log = logging.getLogger("cofre.audit")


@dataclass(frozen=True)
class Appended:
    """What a caller learns once its record is durable."""

    seq: int
    hash: str


class AuditWriter:
    """Appends events in batches from one background thread per process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditLog,
        max_batch: int = 128,
        wait_seconds: float = 30.0,
    ) -> None:
        self.sessions = sessions
        self.audit = audit
        self.max_batch = max_batch
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[AuditEvent, Future[Appended]]] = queue.SimpleQueue()
        self._owner_pid: int | None = None

    def append(self, event: AuditEvent) -> Appended:
        """Block until `event` is committed; AuditUnavailable if it cannot be."""
        done: Future[Appended] = Future()
        self._ensure_thread()
        self._queue.put((event, done))
        try:
            return done.result(timeout=self.wait_seconds)
        except TimeoutError:
            raise AuditUnavailable(
                "the audit log did not confirm the record in time; nothing was served"
            ) from None

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            # First use in this process (or a forked child holding a copy of the
            # parent's state): a fresh queue and a thread of our own.
            self._queue = queue.SimpleQueue()
            self._owner_pid = os.getpid()
            threading.Thread(target=self._run, name="cofre-audit-writer", daemon=True).start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[tuple[AuditEvent, Future[Appended]]]) -> None:
        try:
            with write_transaction(self.sessions) as session:
                records = self.audit.append_many(session, [event for event, _ in batch])
                appended = [Appended(r.seq, r.hash) for r in records]
        except CofreError as exc:
            self._fail(batch, exc)
            return
        except (SQLAlchemyError, OSError) as exc:
            log.error(
                "audit batch of %d failed, nothing served: %s", len(batch), type(exc).__name__
            )
            self._fail(
                batch,
                AuditUnavailable(
                    "the audit record could not be written; the prediction was not served"
                ),
            )
            return
        except Exception as exc:  # never let the writer thread die
            log.exception("audit batch failed unexpectedly")
            self._fail(batch, AuditUnavailable(f"audit write failed ({type(exc).__name__})"))
            return
        for (_, done), result in zip(batch, appended, strict=True):
            done.set_result(result)

    @staticmethod
    def _fail(batch: list[tuple[AuditEvent, Future[Appended]]], error: Exception) -> None:
        for _, done in batch:
            done.set_exception(error)

"""Group commit for the audit log: many requests' records, one transaction, one fsync.

A record must be durable before its prediction is answered, and a durable
commit costs one fsync (milliseconds). Committing each record alone would cap
the whole appliance at one fsync per request, serialised by the chain's head
lock. Instead, request threads hand their events to one writer thread per
process, which appends everything queued in a single transaction and then
wakes each caller with its record or with the failure (fail closed: the
caller answers 503). The thread is started on first use, in the process that
uses it, so nothing crosses a fork.

Each event is prepared in its caller's thread before it is queued (rows sealed,
texts cut, the canonical form built: AuditLog.prepare), because the writer's
transaction holds the database's write lock, which on SQLite every worker
process waits for: under it only the chaining and the commit remain.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from governance.audit.service import AuditEvent, AuditLog, PreparedRecord
from governance.db import write_transaction
from governance.errors import AuditUnavailable, CofreError

log = logging.getLogger("cofre.audit")

# An event waiting for the writer (prepared when it could be), and its caller's answer.
_Queued = tuple[AuditEvent | PreparedRecord, Future["Appended"]]


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
        self._queue: queue.SimpleQueue[_Queued] = queue.SimpleQueue()
        self._owner_pid: int | None = None

    def append(self, event: AuditEvent) -> Appended:
        """Block until `event` is committed; AuditUnavailable if it cannot be."""
        done = self.submit(event)
        try:
            return done.result(timeout=self.wait_seconds)
        except TimeoutError:
            raise AuditUnavailable(
                "the audit log did not confirm the record in time; nothing was served"
            ) from None

    def submit(self, event: AuditEvent) -> Future[Appended]:
        """Queue `event` without waiting: it is committed with the next batch. For work
        off a request's path (shadow scoring), whose record then shares the requests'
        commit instead of costing one of its own. `event` is the writer's from here
        on: its canonical form is taken now, so the caller must not change it."""
        done: Future[Appended] = Future()
        try:
            # In the caller's thread, outside the chain's lock: what the writer then
            # does under it is only the chaining and the commit (see AuditLog.prepare).
            item: AuditEvent | PreparedRecord = self.audit.prepare(event) or event
        except Exception as exc:
            done.set_exception(_unavailable(exc, 1))
            return done
        self._ensure_thread()
        self._queue.put((item, done))
        return done

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

    def _commit(self, batch: list[_Queued]) -> None:
        failure = self._try_commit(batch)
        if failure is None:
            return
        if len(batch) > 1 and not isinstance(failure, OperationalError | AuditUnavailable):
            # One event the database refuses (a value it cannot store, a bug) must
            # not fail the others that shared its transaction: each alone, then.
            for item in batch:
                self._commit([item])
            return
        self._fail(batch, _unavailable(failure, len(batch)))

    def _try_commit(self, batch: list[_Queued]) -> Exception | None:
        """Append and commit the batch, wake its callers; or the failure, nobody woken."""
        try:
            with write_transaction(self.sessions) as session:
                records = self.audit.chain(session, [item for item, _ in batch])
                appended = [Appended(r["seq"], r["hash"]) for r in records]
        except Exception as exc:  # the writer thread must never die
            return exc
        for (_, done), result in zip(batch, appended, strict=True):
            done.set_result(result)
        return None

    @staticmethod
    def _fail(batch: list[_Queued], error: Exception) -> None:
        for _, done in batch:
            done.set_exception(error)


def _unavailable(failure: Exception, size: int) -> CofreError:
    """What the callers of a failed batch learn: the domain's reason, else 503."""
    if isinstance(failure, CofreError):
        return failure
    if isinstance(failure, SQLAlchemyError | OSError):
        log.error("audit batch of %d failed, nothing served: %s", size, type(failure).__name__)
        return AuditUnavailable(
            "the audit record could not be written; the prediction was not served"
        )
    log.error("audit batch failed unexpectedly", exc_info=failure)
    return AuditUnavailable(f"audit write failed ({type(failure).__name__})")
